//! The text of a ticket and its notes, rendered once and PSA-neutrally. Connectors only map a
//! [`RenderedTicket`] to their wire format and cut it to their limits with
//! [`RenderedTicket::title_within`] and [`RenderedTicket::text_within`] (which never cut the
//! alert reference at the end).

use crate::alert::{Alert, AlertStatus, Category, Severity};
use crate::ticket::{EarlierTicket, TicketNote, note_marker, resolution_marker};
use chrono::{DateTime, Utc};
use std::fmt::Write as _;

/// How many activities a ticket lists.
pub const ACTIVITIES_SHOWN: usize = 10;

/// One titled block of a ticket's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub heading: String,
    pub lines: Vec<String>,
}

/// A ticket's content, independent of any PSA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedTicket {
    /// One line: `[Vigil] {policy}: {title} ({tenant})`.
    pub title: String,
    /// Without the tenant, for PSAs whose title is short.
    pub short_title: String,
    /// The opening paragraph.
    pub summary: String,
    pub sections: Vec<Section>,
    /// The line that ends every rendering (alert id and reference); never cut.
    pub footer: String,
    pub severity: Severity,
    pub category: Category,
    /// The affected user's e-mail address (the alert's group key when it is one), to link the
    /// ticket to the PSA contact.
    pub affected_user: Option<String>,
}

impl RenderedTicket {
    /// The title within `max` characters: the full title, else the short one, else the short
    /// one cut with `…`. One line.
    #[must_use]
    pub fn title_within(&self, max: usize) -> String {
        if self.title.chars().count() <= max { self.title.clone() } else { cut(&self.short_title, max) }
    }

    /// The whole text (summary, sections, footer) within `max` characters: sections are dropped
    /// from the end (with a line saying so) before anything else is cut, and the footer always
    /// stays.
    #[must_use]
    pub fn text_within(&self, max: usize) -> String {
        let omitted_line = "(More in Vigil: this PSA's field is too short for the whole alert.)";
        let mut kept = self.sections.len();
        loop {
            let mut text = String::new();
            text.push_str(&self.summary);
            text.push('\n');
            for section in &self.sections[..kept] {
                let _ = write!(text, "\n{}:\n", section.heading);
                for line in &section.lines {
                    let _ = writeln!(text, "{line}");
                }
            }
            if kept < self.sections.len() {
                let _ = write!(text, "\n{omitted_line}\n");
            }
            let _ = write!(text, "\n{}", self.footer);
            if text.chars().count() <= max {
                return text;
            }
            if kept == 0 {
                let footer = format!("\n{}", self.footer);
                let room = max.saturating_sub(footer.chars().count());
                return format!("{}{footer}", cut(&self.summary, room));
            }
            kept -= 1;
        }
    }
}

/// `text` within `max` characters, cut with `…` when it does not fit.
#[must_use]
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Renders the ticket for `alert`. `api_base` (e.g. `https://vigil.example/` ) adds a link to
/// the alert in Vigil's API; `earlier` names the ticket a technician closed before this one.
#[must_use]
pub fn render_ticket(alert: &Alert, api_base: Option<&str>, earlier: Option<&EarlierTicket>) -> RenderedTicket {
    let short_title = format!("[Vigil] {}: {}", one_line(&alert.policy_name), one_line(&alert.title));
    let title =
        if alert.tenant_name.trim().is_empty() { short_title.clone() } else { format!("{short_title} ({})", one_line(&alert.tenant_name)) };
    let mut summary =
        format!("Vigil raised a {} alert for {}: {}.", alert.severity.as_str().to_lowercase(), alert.tenant_name, one_line(&alert.title));
    if let Some(earlier) = earlier {
        let _ = write!(
            summary,
            " It happened again after ticket {} was {} on {}; this ticket continues it.",
            earlier.ticket,
            if earlier.ended == "gone" { "removed" } else { "closed" },
            time(earlier.at)
        );
    }
    if !alert.detail.description.trim().is_empty() {
        let _ = write!(summary, "\n{}", alert.detail.description.trim());
    }
    let mut sections = vec![Section {
        heading: "Alert".into(),
        lines: vec![
            format!("Policy: {} ({})", alert.policy_name, alert.policy_id),
            format!("Category: {}", alert.category.as_str()),
            format!("Severity: {}", alert.severity.as_str()),
            format!("Tenant: {} ({})", alert.tenant_name, alert.tenant_id),
            format!("Hits: {}", alert.hit_count),
            format!("First seen: {}", time(alert.first_seen)),
            format!("Last seen: {}", time(alert.last_seen)),
            format!("Window: {} to {}", time(alert.window_start), time(alert.window_end)),
        ],
    }];
    if !alert.facts.is_empty() {
        sections
            .push(Section { heading: "Details".into(), lines: alert.facts.iter().map(|f| format!("{}: {}", f.name, f.value)).collect() });
    }
    if !alert.detail.activities.is_empty() {
        let mut lines: Vec<String> = alert
            .detail
            .activities
            .iter()
            .take(ACTIVITIES_SHOWN)
            .map(|a| {
                let ip = a.client_ip.as_deref().map(|ip| format!(" from {ip}")).unwrap_or_default();
                format!("{} {} by {}{ip}: {}", time(a.time), a.operation, a.user, one_line(&a.summary))
            })
            .collect();
        let more = alert.hit_count.saturating_sub(lines.len() as u64);
        if more > 0 {
            lines.push(format!("… and {more} more"));
        }
        sections.push(Section { heading: "Activity".into(), lines });
    }
    let entities = &alert.detail.entities;
    let mut entity_lines = Vec::new();
    for (name, values) in [
        ("Users", &entities.users),
        ("IP addresses", &entities.ips),
        ("Mailboxes", &entities.mailboxes),
        ("Files", &entities.files),
        ("URLs", &entities.urls),
    ] {
        if !values.is_empty() {
            entity_lines.push(format!("{name}: {}", values.join(", ")));
        }
    }
    if !entity_lines.is_empty() {
        sections.push(Section { heading: "Involved".into(), lines: entity_lines });
    }
    if alert.detail.truncated {
        sections.push(Section {
            heading: "Note".into(),
            lines: vec![
                "This alert was too large to keep whole; long values and later activities were cut (the hit count is complete).".into(),
            ],
        });
    }
    if let Some(base) = api_base {
        sections
            .push(Section { heading: "In Vigil".into(), lines: vec![format!("{}/v1/alerts/{}", base.trim_end_matches('/'), alert.id)] });
    }
    RenderedTicket {
        title,
        short_title,
        summary,
        sections,
        footer: format!("Alert id: {}", alert.id),
        severity: alert.severity,
        category: alert.category,
        affected_user: affected_user(alert),
    }
}

/// The alert's affected user, when its group key or first user entity is an e-mail address.
fn affected_user(alert: &Alert) -> Option<String> {
    let looks_like_mail = |text: &str| {
        let text = text.trim();
        text.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !text.contains(char::is_whitespace))
    };
    std::iter::once(alert.group_key.as_str())
        .chain(alert.detail.entities.users.iter().map(String::as_str))
        .find(|candidate| looks_like_mail(candidate))
        .map(|mail| mail.trim().to_lowercase())
}

/// The note added when an alert gains hits after its ticket was created.
#[must_use]
pub fn hits_note(alert: &Alert, previously_notified: u64) -> TicketNote {
    let marker = note_marker(&alert.id, alert.hit_count);
    let text = format!(
        "Vigil: \"{}\" matched again for {}.\nHits: {} (+{} since the last update). Last seen: {}.\n{}",
        alert.policy_name,
        alert.group_key,
        alert.hit_count,
        alert.hit_count.saturating_sub(previously_notified),
        time(alert.last_seen),
        marker
    );
    TicketNote { text, marker }
}

/// The note that tells a ticket its alert is resolved, and why, before Vigil closes it.
#[must_use]
pub fn resolution_note(alert: &Alert) -> TicketNote {
    let marker = resolution_marker(&alert.id);
    let when = alert.resolved_at.map_or_else(String::new, |t| format!(" at {}", time(t)));
    let who = alert
        .triage
        .history
        .iter()
        .rev()
        .find(|change| change.field == "status" && change.to.as_deref() == Some("Resolved"))
        .map(|change| change.author.clone());
    let text = match (alert.status, who) {
        (AlertStatus::Resolved, Some(author)) if author != "vigil" => {
            format!("Vigil: {author} resolved the alert \"{}\"{when}. Vigil closes this ticket.\n{marker}", alert.policy_name)
        }
        _ => format!(
            "Vigil: the condition behind \"{}\" cleared{when}; the alert is resolved. Vigil closes this ticket.\n{marker}",
            alert.policy_name
        ),
    };
    TicketNote { text, marker }
}

/// The resolution text a PSA's close carries (where it has a resolution field).
#[must_use]
pub fn resolution_text(alert: &Alert) -> String {
    format!("Resolved in Vigil: \"{}\" ({}).", alert.policy_name, alert.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::sample_alert;
    use crate::ticket::TicketRef;

    #[test]
    fn the_title_drops_the_tenant_before_cutting_and_the_text_keeps_its_footer_within_any_limit() {
        let mut alert = sample_alert(Utc::now());
        alert.tenant_name = "A tenant with a rather long display name".into();
        alert.facts = (0..200).map(|i| crate::alert::Fact { name: format!("fact {i}"), value: "v".repeat(80) }).collect();
        let rendered = render_ticket(&alert, Some("https://vigil.example"), None);
        assert!(rendered.title.contains(&alert.tenant_name));
        let short = rendered.title_within(rendered.short_title.chars().count());
        assert!(!short.contains(&alert.tenant_name));
        assert!(rendered.title_within(20).chars().count() <= 20);
        for max in [120, 500, 8_000, 32_000] {
            let text = rendered.text_within(max);
            assert!(text.chars().count() <= max, "{max}: {}", text.chars().count());
            assert!(text.ends_with(&rendered.footer), "{max}");
        }
        assert!(rendered.text_within(8_000).contains("More in Vigil"), "dropped sections are announced");
        assert!(rendered.text_within(1_000_000).contains("https://vigil.example/v1/alerts/"));
    }

    #[test]
    fn a_ticket_after_a_closed_one_names_it() {
        let alert = sample_alert(Utc::now());
        let earlier = EarlierTicket { ticket: TicketRef::new("1001"), ended: "closed".into(), at: Utc::now() };
        assert!(render_ticket(&alert, None, Some(&earlier)).summary.contains("#1001 was closed"));
    }

    #[test]
    fn the_affected_user_is_the_group_key_when_it_is_an_address() {
        let mut alert = sample_alert(Utc::now());
        alert.group_key = "Alice@Contoso.com".into();
        assert_eq!(render_ticket(&alert, None, None).affected_user.as_deref(), Some("alice@contoso.com"));
        alert.group_key = "10.0.0.1".into();
        alert.detail.entities.users = vec!["not an address".into()];
        assert_eq!(render_ticket(&alert, None, None).affected_user, None);
    }
}
