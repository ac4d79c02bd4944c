//! The README's built-in catalogue table, generated from the catalogue: each built-in's name,
//! category, severity, trigger, the record types it reads, and its documented variants (covered
//! or not). A test compares it with README.md so the table cannot go stale; run that test with
//! `VIGIL_UPDATE_README=1` to rewrite the table after changing the catalogue.

use super::{Variant, builtin_definitions, builtin_variants};
use crate::policy::model::{Aggregation, PolicyDefinition, Trigger};
use std::fmt::Write;

/// The line before the generated table in README.md.
pub const TABLE_START: &str =
    "<!-- builtin-catalogue:start (generated from shared/src/policy/builtins; see shared/src/policy/catalogue/table.rs) -->";
/// The line after it.
pub const TABLE_END: &str = "<!-- builtin-catalogue:end -->";

/// The catalogue table in Markdown, one row per built-in in catalogue order, between
/// [`TABLE_START`] and [`TABLE_END`] (both included).
#[must_use]
pub fn readme_table() -> String {
    let mut out = format!("{TABLE_START}\n");
    out.push_str("| id | Name | Category | Severity | Trigger | Record types | Variants covered (each proved by a fixture) | Not covered (reasons in `variants.json`) |\n");
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    let none = Vec::new();
    for definition in builtin_definitions() {
        let variants = builtin_variants().get(definition.id.as_str()).unwrap_or(&none);
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
            definition.id.as_str(),
            cell(&definition.name),
            definition.category.as_str(),
            definition.severity.as_str(),
            trigger(definition),
            record_types(&definition.activity.record_types),
            hows(variants, true),
            hows(variants, false),
        );
    }
    out.push_str(TABLE_END);
    out.push('\n');
    out
}

/// README.md with its table replaced by [`readme_table`]; `None` when the markers are missing.
#[must_use]
pub fn with_table(readme: &str) -> Option<String> {
    let start = readme.find(TABLE_START)?;
    let end = readme[start..].find(TABLE_END)? + start + TABLE_END.len();
    let end = if readme[end..].starts_with('\n') { end + 1 } else { end };
    Some(format!("{}{}{}", &readme[..start], readme_table(), &readme[end..]))
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn hows(variants: &[Variant], covered: bool) -> String {
    let list: Vec<String> = variants.iter().filter(|v| v.fixture.is_some() == covered).map(|v| cell(&v.how)).collect();
    if list.is_empty() { "—".to_owned() } else { list.join("; ") }
}

fn record_types(types: &[i64]) -> String {
    if types.is_empty() {
        return "any".to_owned();
    }
    types.iter().map(|t| format!("RT{t}")).collect::<Vec<_>>().join(", ")
}

/// An aggregation window, after "per": "hour", "day", "15 min".
fn minutes(window: u32) -> String {
    match window {
        60 => "hour".to_owned(),
        1440 => "day".to_owned(),
        w => format!("{w} min"),
    }
}

/// A sliding window's length: "an hour", "a day", "30 min".
fn span(window: u32) -> String {
    match window {
        60 => "an hour".to_owned(),
        1440 => "a day".to_owned(),
        w => format!("{w} min"),
    }
}

fn keys(group_by: &[String]) -> String {
    if group_by.is_empty() { "tenant".to_owned() } else { group_by.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(" and ") }
}

fn trigger(definition: &PolicyDefinition) -> String {
    let mut text = match &definition.trigger {
        Trigger::EveryTime => {
            let Aggregation { window_minutes, group_by } = &definition.aggregation;
            if *group_by == Aggregation::default().group_by && *window_minutes == Aggregation::default().window_minutes {
                "every time".to_owned()
            } else {
                format!("every time, one alert per {} per {}", keys(group_by), minutes(*window_minutes))
            }
        }
        Trigger::Threshold { count, window_minutes, group_by, distinct } => {
            let group = if group_by.is_empty() { &definition.aggregation.group_by } else { group_by };
            let what = distinct.as_ref().map_or_else(String::new, |field| format!(" distinct `{field}`"));
            format!("threshold: {count}{what} within {} per {}", span(*window_minutes), keys(group))
        }
        Trigger::UnusualActivity { group_by, min_count } => {
            let group = if group_by.is_empty() { &definition.aggregation.group_by } else { group_by };
            format!("unusual activity per {} (≥ {min_count} an hour)", keys(group))
        }
    };
    if !definition.resolve_operations.is_empty() {
        text.push_str("; resolves itself");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readme_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")
    }

    #[test]
    fn the_readme_catalogue_table_is_the_one_generated_from_the_catalogue() {
        let readme = std::fs::read_to_string(readme_path()).unwrap();
        let updated = with_table(&readme).expect("README.md has the catalogue table markers");
        if std::env::var_os("VIGIL_UPDATE_README").is_some() {
            std::fs::write(readme_path(), &updated).unwrap();
            return;
        }
        assert!(
            updated == readme,
            "README.md's built-in catalogue table differs from the catalogue; run \
             `VIGIL_UPDATE_README=1 cargo test -p vigil --lib catalogue::table` and commit README.md"
        );
    }

    #[test]
    fn the_table_has_one_row_per_builtin_with_its_record_types_and_variants() {
        let table = readme_table();
        let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| `builtin.")).collect();
        assert_eq!(rows.len(), builtin_definitions().len());
        let row = rows.iter().find(|r| r.starts_with("| `builtin.audit-log-disabled` |")).unwrap();
        assert!(row.contains("| RT1, RT18 |"), "{row}");
        assert!(row.contains("with -Parameter:$false syntax"), "{row}");
        assert!(row.ends_with("| Purview portal |"), "{row}");
        let spray = rows.iter().find(|r| r.starts_with("| `builtin.password-spray` |")).unwrap();
        assert!(spray.contains("| threshold: 10 distinct `UserId` within 30 min per `ClientIP` |"), "{spray}");
    }

    #[test]
    fn replacing_the_table_keeps_the_text_around_it_and_needs_both_markers() {
        let readme = format!("before\n{TABLE_START}\nold\n{TABLE_END}\nafter\n");
        let updated = with_table(&readme).unwrap();
        assert!(updated.starts_with("before\n") && updated.ends_with(&format!("{TABLE_END}\nafter\n")), "{updated}");
        assert!(updated.contains("| `builtin.forwarding-rule` |"));
        assert_eq!(with_table("no markers"), None);
        assert_eq!(with_table(&format!("{TABLE_START}\nno end")), None);
    }
}
