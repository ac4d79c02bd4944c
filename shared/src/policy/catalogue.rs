//! The built-in policy catalogue: Vigil's policies as data (`builtins/*.json`, one file per
//! family: the core set, Threat Intelligence, identity and mail, access and submissions, admin
//! relationships, licences, billing, self-monitoring),
//! shipped with every deployment and on for every tenant unless an MSP turns one off. Each
//! built-in has positive and negative fixture records (`builtins/*fixtures.json`, one beside each
//! family, plus `variant-fixtures.json` for variants of built-ins in other families), written
//! from the documented record schemas; the tests below run every fixture through its policy.
//!
//! Each built-in also lists its documented variants (`builtins/variants.json`): the ways to make
//! the same change (portal, cmdlet parameters, Graph, record types), each either proved by a
//! positive fixture or marked not covered with the reason. The README's catalogue table is
//! generated from both ([`table`]).

use super::CompiledPolicy;
use super::model::PolicyDefinition;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

pub mod table;

/// The catalogue's families, each a JSON array of policy definitions.
const POLICY_FILES: [&str; 8] = [
    include_str!("builtins/policies.json"),
    include_str!("builtins/threat-intelligence.json"),
    include_str!("builtins/identity-and-mail.json"),
    include_str!("builtins/access-and-submissions.json"),
    include_str!("builtins/admin-relationships.json"),
    include_str!("builtins/licences.json"),
    include_str!("builtins/billing.json"),
    include_str!("builtins/self-monitoring.json"),
];

/// One documented way to make the change a built-in watches for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// The way, as an admin or attacker would do it (tool, cmdlet and parameters, operation).
    pub how: String,
    /// The positive fixture of the built-in that proves the variant is covered.
    #[serde(default)]
    pub fixture: Option<String>,
    /// Why the variant is not covered (set exactly when `fixture` is not).
    #[serde(default)]
    pub not_covered: Option<String>,
}

/// Every built-in's documented variants, by built-in id (kept beside the definitions, not in
/// them, so the policy model MSPs write stays as it is).
///
/// # Panics
/// Never in a tested build: the file is parsed by the tests.
#[must_use]
pub fn builtin_variants() -> &'static BTreeMap<String, Vec<Variant>> {
    static VARIANTS: OnceLock<BTreeMap<String, Vec<Variant>>> = OnceLock::new();
    VARIANTS.get_or_init(|| {
        #[allow(clippy::expect_used)]
        let variants = serde_json::from_str(include_str!("builtins/variants.json")).expect("the variants file is valid (tested)");
        variants
    })
}

/// The built-in definitions, parsed once.
///
/// # Panics
/// Never in a tested build: the catalogue is parsed and compiled by the tests.
#[must_use]
pub fn builtin_definitions() -> &'static [Arc<PolicyDefinition>] {
    static DEFINITIONS: OnceLock<Vec<Arc<PolicyDefinition>>> = OnceLock::new();
    DEFINITIONS.get_or_init(|| {
        POLICY_FILES
            .iter()
            .flat_map(|file| {
                #[allow(clippy::expect_used)]
                let list: Vec<PolicyDefinition> = serde_json::from_str(file).expect("the built-in catalogue is valid (tested)");
                list
            })
            .map(Arc::new)
            .collect()
    })
}

/// The built-ins, compiled once per container.
#[must_use]
pub fn compiled_builtins() -> &'static [CompiledPolicy] {
    static COMPILED: OnceLock<Vec<CompiledPolicy>> = OnceLock::new();
    COMPILED.get_or_init(|| builtin_definitions().iter().filter_map(|d| CompiledPolicy::compile(d.clone()).ok()).collect())
}

/// One built-in by id.
#[must_use]
pub fn builtin(id: &str) -> Option<&'static Arc<PolicyDefinition>> {
    builtin_definitions().iter().find(|d| d.id.as_str() == id)
}

/// Whether a policy id names a built-in.
#[must_use]
pub fn is_builtin(id: &str) -> bool {
    id.starts_with("builtin.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditRecord;
    use crate::ids::{MspId, TenantId};
    use crate::policy::condition::TenantContext;
    use crate::policy::model::Trigger;
    use crate::policy::trigger::{Observation, ThresholdState};
    use crate::policy::{CompiledTrigger, TenantScope};
    use serde::Deserialize;
    use serde_json::Value;

    const FIXTURE_FILES: [&str; 9] = [
        include_str!("builtins/fixtures.json"),
        include_str!("builtins/threat-intelligence-fixtures.json"),
        include_str!("builtins/identity-and-mail-fixtures.json"),
        include_str!("builtins/access-and-submissions-fixtures.json"),
        include_str!("builtins/variant-fixtures.json"),
        include_str!("builtins/admin-relationships-fixtures.json"),
        include_str!("builtins/licences-fixtures.json"),
        include_str!("builtins/billing-fixtures.json"),
        include_str!("builtins/self-monitoring-fixtures.json"),
    ];

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Fixture {
        policy: String,
        name: String,
        records: Vec<Value>,
        #[serde(default)]
        tenant_domains: Vec<String>,
        #[serde(default)]
        break_glass_accounts: Vec<String>,
        /// Every-time: some record matches. Threshold: the trigger fires. Unusual activity: the
        /// records match the activity and conditions (the baseline is tested in `trigger`).
        alert: bool,
        /// Expected alert title, when given.
        #[serde(default)]
        title: Option<String>,
        /// Expected severity when given (pass-through alerts).
        #[serde(default)]
        severity: Option<String>,
        /// Facts that must be on the alert (name → value).
        #[serde(default)]
        facts: std::collections::BTreeMap<String, String>,
    }

    fn fixtures() -> Vec<Fixture> {
        FIXTURE_FILES.iter().flat_map(|file| serde_json::from_str::<Vec<Fixture>>(file).unwrap()).collect()
    }

    #[test]
    fn every_builtin_parses_compiles_and_has_a_unique_id() {
        let definitions = builtin_definitions();
        assert_eq!(compiled_builtins().len(), definitions.len(), "every built-in compiles");
        let mut ids: Vec<&str> = definitions.iter().map(|d| d.id.as_str()).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), before, "ids are unique");
        for definition in definitions {
            assert!(is_builtin(definition.id.as_str()), "{}", definition.id);
            assert!(!definition.description.is_empty(), "{} has a description", definition.id);
            if let Err(problems) = definition.validate() {
                panic!("{}: {problems:?}", definition.id);
            }
        }
    }

    #[test]
    fn every_builtin_has_a_positive_and_a_negative_fixture() {
        let fixtures = fixtures();
        for definition in builtin_definitions() {
            let mine: Vec<&Fixture> = fixtures.iter().filter(|f| f.policy == definition.id.as_str()).collect();
            assert!(mine.iter().any(|f| f.alert), "{} has a positive fixture", definition.id);
            assert!(mine.iter().any(|f| !f.alert), "{} has a negative fixture", definition.id);
        }
        for fixture in &fixtures {
            assert!(builtin(&fixture.policy).is_some(), "fixture {:?} names an unknown policy {}", fixture.name, fixture.policy);
        }
    }

    #[test]
    fn every_fixture_alerts_exactly_when_it_should() {
        let msp = MspId::parse("acme").unwrap();
        let tenant = TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap();
        let mut failures = Vec::new();
        for fixture in fixtures() {
            let policy = compiled_builtins().iter().find(|p| p.id().as_str() == fixture.policy).unwrap();
            let domains: Vec<String> = fixture.tenant_domains.iter().map(|d| d.to_lowercase()).collect();
            let accounts: Vec<String> = fixture.break_glass_accounts.iter().map(|d| d.to_lowercase()).collect();
            let scope = TenantScope {
                msp_id: &msp,
                tenant_id: &tenant,
                tenant_name: "Contoso",
                context: TenantContext { domains: &domains, break_glass_accounts: &accounts },
            };
            let matches: Vec<_> = fixture
                .records
                .iter()
                .map(|r| AuditRecord::from_value(r.clone()).unwrap_or_else(|e| panic!("{}: {e}", fixture.name)))
                .filter_map(|r| policy.evaluate_described(&scope, &r))
                .filter(|m| !m.resolves)
                .collect();
            let alerted = match &policy.trigger {
                CompiledTrigger::EveryTime | CompiledTrigger::UnusualActivity { .. } => !matches.is_empty(),
                CompiledTrigger::Threshold { count, window, distinct, .. } => {
                    let mut by_key: std::collections::BTreeMap<String, Vec<Observation>> = Default::default();
                    for m in &matches {
                        by_key.entry(m.trigger_key.clone().unwrap_or_default()).or_default().push(Observation {
                            record_id: m.record_id.clone(),
                            at: m.event_time,
                            distinct: m.distinct.clone(),
                        });
                    }
                    by_key.values().any(|obs| !ThresholdState::default().observe(obs, *count, *window, distinct.is_some()).is_empty())
                }
            };
            if alerted != fixture.alert {
                failures.push(format!("{} / {}: expected alert={}, got {}", fixture.policy, fixture.name, fixture.alert, alerted));
                continue;
            }
            if let Some(first) = matches.first().filter(|_| fixture.alert) {
                if let Some(title) = &fixture.title
                    && &first.title != title
                {
                    failures.push(format!("{} / {}: title {:?}, expected {title:?}", fixture.policy, fixture.name, first.title));
                }
                if let Some(severity) = &fixture.severity
                    && first.severity.as_str() != severity
                {
                    failures.push(format!("{} / {}: severity {:?}, expected {severity}", fixture.policy, fixture.name, first.severity));
                }
                for (name, value) in &fixture.facts {
                    if !first.facts.iter().any(|f| &f.name == name && &f.value == value) {
                        failures.push(format!("{} / {}: no fact {name} = {value:?} in {:?}", fixture.policy, fixture.name, first.facts));
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{} fixture(s) failed:\n{}", failures.len(), failures.join("\n"));
    }

    #[test]
    fn every_builtin_lists_its_variants_and_each_covered_one_names_a_positive_fixture_of_that_builtin() {
        let fixtures = fixtures();
        let variants = builtin_variants();
        let mut problems = Vec::new();
        for definition in builtin_definitions() {
            let id = definition.id.as_str();
            let Some(list) = variants.get(id).filter(|list| !list.is_empty()) else {
                problems.push(format!("{id}: no variants listed"));
                continue;
            };
            if !list.iter().any(|v| v.fixture.is_some()) {
                problems.push(format!("{id}: no variant is covered"));
            }
            for variant in list {
                match (&variant.fixture, &variant.not_covered) {
                    (Some(name), None) => {
                        let proof = fixtures.iter().find(|f| f.policy == id && &f.name == name);
                        match proof {
                            None => problems.push(format!("{id} / {:?}: no fixture {name:?} of this built-in", variant.how)),
                            Some(f) if !f.alert => problems.push(format!("{id} / {:?}: fixture {name:?} is a negative one", variant.how)),
                            Some(_) => {}
                        }
                    }
                    (None, Some(why)) if !why.trim().is_empty() => {}
                    _ => problems.push(format!("{id} / {:?}: give either a fixture or why it is not covered", variant.how)),
                }
            }
        }
        for id in variants.keys() {
            if builtin(id).is_none() {
                problems.push(format!("variants listed for an unknown built-in {id}"));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn fixture_names_are_unique_per_builtin_so_a_variant_names_one_fixture() {
        let fixtures = fixtures();
        let mut names: Vec<(&str, &str)> = fixtures.iter().map(|f| (f.policy.as_str(), f.name.as_str())).collect();
        names.sort_unstable();
        let duplicates: Vec<_> = names.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0]).collect();
        assert!(duplicates.is_empty(), "{duplicates:?}");
    }

    /// Every `in` list a definition's conditions hold for `field`.
    fn lists_for(definition: &PolicyDefinition, field: &str) -> Vec<Value> {
        fn walk(node: &Value, field: &str, found: &mut Vec<Value>) {
            match node {
                Value::Object(map) => {
                    if map.get("field").and_then(Value::as_str) == Some(field) && map.get("op").and_then(Value::as_str) == Some("in") {
                        found.extend(map.get("value").cloned());
                    }
                    map.values().for_each(|v| walk(v, field, found));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, field, found)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        walk(&serde_json::to_value(&definition.conditions).unwrap(), field, &mut found);
        found
    }

    #[test]
    fn the_role_policies_share_one_list_of_privileged_roles() {
        let reference = builtin("builtin.privileged-role-added").unwrap();
        for field in ["ModifiedProperties.Role.DisplayName", "ModifiedProperties.Role.TemplateId"] {
            let expected = lists_for(reference, field);
            assert_eq!(expected.len(), 1, "{field}");
            for id in ["builtin.new-user-privileged-role", "builtin.guest-privileged-role"] {
                assert_eq!(lists_for(builtin(id).unwrap(), field), expected, "{id}: {field}");
            }
        }
    }

    #[test]
    fn the_catalogue_covers_every_trigger_kind() {
        let kinds = |f: fn(&Trigger) -> bool| builtin_definitions().iter().any(|d| f(&d.trigger));
        assert!(kinds(|t| matches!(t, Trigger::EveryTime)));
        assert!(kinds(|t| matches!(t, Trigger::Threshold { distinct: None, .. })));
        assert!(kinds(|t| matches!(t, Trigger::Threshold { distinct: Some(_), .. })));
        assert!(kinds(|t| matches!(t, Trigger::UnusualActivity { .. })));
    }
}
