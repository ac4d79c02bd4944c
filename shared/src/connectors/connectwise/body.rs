//! The pure mapping between Vigil and ConnectWise's wire format: the ticket body, the
//! `conditions` Vigil sends, and references (`{id}` or `{name}`) from the text ids a
//! destination stores. No I/O here.

use crate::alert::Severity;
use crate::error::SinkError;
use crate::ports::NewTicket;
use serde_json::{Value, json};

/// ConnectWise's limit on `summary` (UTF-16 code units, as .NET counts).
pub const SUMMARY_MAX: usize = 100;
/// ConnectWise's limit on `externalXRef`.
pub const EXTERNAL_XREF_MAX: usize = 100;
/// The longest `initialDescription` Vigil sends. ConnectWise states no limit for it; this keeps
/// a ticket readable and far from any request size limit (the alert stays whole in Vigil).
pub const DESCRIPTION_MAX: usize = 8000;

/// The body of `POST /service/tickets` for `ticket`: only fields of ConnectWise's `Ticket`
/// schema, within their limits. `contact` is the company contact to link (`None`: ConnectWise
/// uses the company's default contact).
///
/// # Errors
/// [`SinkError::Invalid`] when the company is not a ConnectWise company id or the reference
/// does not fit `externalXRef` (then the ticket could never be found again).
pub fn ticket_body(ticket: &NewTicket, ticket_type: Option<&str>, source: Option<&str>, contact: Option<i64>) -> Result<Value, SinkError> {
    let company = company_id(&ticket.company)?;
    if utf16_len(&ticket.reference) > EXTERNAL_XREF_MAX {
        return Err(SinkError::Rejected(format!("the reference {:?} is longer than externalXRef allows", ticket.reference)));
    }
    let content = &ticket.content;
    let mut body = json!({
        "summary": summary(content),
        "recordType": "ServiceTicket",
        "company": { "id": company },
        "severity": ticket_severity(content.severity),
        "impact": "Medium",
        "externalXRef": ticket.reference,
        "initialDescription": content.text_within(DESCRIPTION_MAX),
        "processNotifications": false,
    });
    let optional =
        [("board", ticket.place.as_deref()), ("priority", ticket.priority.as_deref()), ("type", ticket_type), ("source", source)];
    for (field, value) in optional {
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            body[field] = reference(value);
        }
    }
    if let Some(contact) = contact {
        body["contact"] = json!({ "id": contact });
    }
    Ok(body)
}

/// The title within [`SUMMARY_MAX`] UTF-16 code units: the longest rendering
/// [`crate::render::RenderedTicket::title_within`] gives that fits (characters outside the
/// Basic Multilingual Plane count twice).
fn summary(content: &crate::render::RenderedTicket) -> String {
    let mut max = SUMMARY_MAX;
    loop {
        let title = content.title_within(max);
        if utf16_len(&title) <= SUMMARY_MAX || max <= 1 {
            return title;
        }
        max -= 1;
    }
}

/// ConnectWise knows Low, Medium and High; an informational alert is filed as Low.
pub(super) fn ticket_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::High => "High",
        Severity::Medium => "Medium",
        Severity::Low | Severity::Informational => "Low",
    }
}

/// Length as ConnectWise (.NET) counts it: UTF-16 code units, never fewer than characters.
pub(super) fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// A company link's text as a ConnectWise company id.
///
/// # Errors
/// [`SinkError::Rejected`] unless it is a positive number.
pub(super) fn company_id(company: &str) -> Result<i64, SinkError> {
    positive_id(company).ok_or_else(|| SinkError::Invalid(format!("{company:?} is not a ConnectWise company id")))
}

/// A ConnectWise record id (ticket, board, contact …), when `text` is one.
pub(super) fn positive_id(text: &str) -> Option<i64> {
    text.trim().parse::<i64>().ok().filter(|id| *id > 0)
}

/// A reference to a board, priority, status, type or source: `{"id": n}` for a number, else
/// `{"name": text}` (ConnectWise resolves references by name too).
pub(super) fn reference(text: &str) -> Value {
    match positive_id(text) {
        Some(id) => json!({ "id": id }),
        None => json!({ "name": text.trim() }),
    }
}

/// Whether a stored text id names the record `(id, name)`: the same id, or the same name
/// (case-insensitively).
pub(super) fn names(text: &str, id: i64, name: &str) -> bool {
    match positive_id(text) {
        Some(wanted) => wanted == id,
        None => text.trim().eq_ignore_ascii_case(name.trim()),
    }
}

/// `text` as a `conditions` string literal: in double quotes, quotes and backslashes escaped.
pub(super) fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The `conditions` that find the ticket carrying `reference`.
pub(super) fn xref_condition(reference: &str) -> String {
    format!("externalXRef={}", quoted(reference))
}

/// The `conditions` that read the tickets `ids` (at most one page of them).
pub(super) fn ids_condition(ids: &[i64]) -> String {
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    format!("id in ({list})")
}

/// The `conditions` of a company search: active companies whose name or identifier contains
/// `search` (`*` is ConnectWise's wildcard).
pub(super) fn company_condition(search: Option<&str>) -> String {
    match search.map(str::trim).filter(|s| !s.is_empty()) {
        Some(search) => {
            let pattern = quoted(&format!("*{search}*"));
            format!("deletedFlag=false and (name like {pattern} or identifier like {pattern})")
        }
        None => "deletedFlag=false".to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::alert::{Alert, Fact};
    use crate::render::render_ticket;
    use chrono::{TimeZone, Utc};
    use vigil_simulators::openapi_validate::SchemaSet;

    const SCHEMA_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/schemas/connectwise-manage-ticketing-schemas.json");

    fn alert() -> Alert {
        let mut alert = crate::contract::sample_alert(Utc.with_ymd_and_hms(2026, 1, 5, 9, 41, 27).unwrap());
        alert.severity = Severity::High;
        alert.hit_count = 3;
        alert
    }

    fn new_ticket(alert: &Alert) -> NewTicket {
        NewTicket {
            content: render_ticket(alert, None, None),
            reference: format!("vigil:{}", alert.id),
            company: "250".into(),
            place: Some("7".into()),
            priority: Some("8".into()),
        }
    }

    fn schemas() -> SchemaSet {
        SchemaSet::from_openapi_json(&std::fs::read_to_string(SCHEMA_FILE).unwrap()).unwrap()
    }

    #[test]
    fn the_ticket_body_passes_connectwise_schema_validation_even_for_an_oversized_alert() {
        let schemas = schemas();
        let body = ticket_body(&new_ticket(&alert()), Some("71"), Some("Vigil"), Some(1)).unwrap();
        assert_eq!(schemas.validate("Ticket", &body), vec![], "{body:#}");
        let mut long = alert();
        long.title = "é🦀".repeat(200);
        long.facts = (0..50).map(|i| Fact::new(format!("Fact{i}"), "x".repeat(400))).collect();
        let mut ticket = new_ticket(&long);
        ticket.place = None;
        ticket.priority = None;
        let body = ticket_body(&ticket, None, None, None).unwrap();
        assert_eq!(schemas.validate("Ticket", &body), vec![], "{body:#}");
        assert!(body.get("board").is_none() && body.get("priority").is_none() && body.get("contact").is_none());
        assert!(utf16_len(body["summary"].as_str().unwrap()) <= SUMMARY_MAX);
        let description = body["initialDescription"].as_str().unwrap();
        assert!(description.chars().count() <= DESCRIPTION_MAX);
        assert!(description.contains(&long.id.to_string()), "the alert reference is never cut");
    }

    #[test]
    fn the_ticket_body_maps_the_rendered_ticket_and_its_routing() {
        let alert = alert();
        let ticket = new_ticket(&alert);
        let body = ticket_body(&ticket, Some("71"), Some("Email Connector"), Some(1)).unwrap();
        assert_eq!(body["summary"], ticket.content.title_within(SUMMARY_MAX));
        assert_eq!(body["company"], json!({"id": 250}));
        assert_eq!(body["board"], json!({"id": 7}));
        assert_eq!(body["priority"], json!({"id": 8}));
        assert_eq!(body["type"], json!({"id": 71}));
        assert_eq!(body["source"], json!({"name": "Email Connector"}));
        assert_eq!(body["contact"], json!({"id": 1}));
        assert_eq!(body["severity"], "High");
        assert_eq!(body["impact"], "Medium");
        assert_eq!(body["recordType"], "ServiceTicket");
        assert_eq!(body["processNotifications"], false);
        assert_eq!(body["externalXRef"], ticket.reference);
        assert_eq!(body["initialDescription"], ticket.content.text_within(DESCRIPTION_MAX));
    }

    #[test]
    fn severities_map_to_connectwise_severities() {
        for (severity, expected) in
            [(Severity::High, "High"), (Severity::Medium, "Medium"), (Severity::Low, "Low"), (Severity::Informational, "Low")]
        {
            assert_eq!(ticket_severity(severity), expected);
        }
    }

    #[test]
    fn summaries_fit_in_100_utf16_units_even_with_wide_characters() {
        let mut alert = alert();
        alert.policy_name = "Policy".into();
        alert.title = "x".repeat(60);
        assert!(summary(&render_ticket(&alert, None, None)).ends_with(&format!("({})", alert.tenant_name)));
        alert.title = "🦀".repeat(100);
        let wide = summary(&render_ticket(&alert, None, None));
        assert!(utf16_len(&wide) <= SUMMARY_MAX && utf16_len(&wide) >= SUMMARY_MAX - 1, "{wide}");
        assert!(wide.ends_with('…') && !wide.contains('\n'));
    }

    #[test]
    fn a_company_that_is_not_a_connectwise_id_or_an_overlong_reference_is_refused() {
        let mut ticket = new_ticket(&alert());
        ticket.company = "Contoso".into();
        assert!(
            matches!(ticket_body(&ticket, None, None, None), Err(SinkError::Invalid(m)) if m.contains("company id")),
            "nothing is sent"
        );
        ticket.company = "-3".into();
        assert!(ticket_body(&ticket, None, None, None).is_err());
        ticket.company = " 250 ".into();
        ticket.reference = "r".repeat(101);
        assert!(matches!(ticket_body(&ticket, None, None, None), Err(SinkError::Rejected(m)) if m.contains("externalXRef")));
    }

    #[test]
    fn conditions_quote_and_escape_what_they_match() {
        assert_eq!(xref_condition("vigil:abc"), "externalXRef=\"vigil:abc\"");
        assert_eq!(xref_condition("a\"b\\c"), "externalXRef=\"a\\\"b\\\\c\"");
        assert_eq!(ids_condition(&[1001, 1002]), "id in (1001,1002)");
        assert_eq!(company_condition(None), "deletedFlag=false");
        assert_eq!(
            company_condition(Some(" Con\"toso ")),
            "deletedFlag=false and (name like \"*Con\\\"toso*\" or identifier like \"*Con\\\"toso*\")"
        );
    }

    #[test]
    fn text_ids_become_id_or_name_references() {
        assert_eq!(reference(" 7 "), json!({"id": 7}));
        assert_eq!(reference("Service Desk"), json!({"name": "Service Desk"}));
        assert!(names("7", 7, "Vigil Alerts") && names("vigil alerts", 7, "Vigil Alerts"));
        assert!(!names("8", 7, "8") && !names("Desk", 7, "Vigil Alerts"));
    }
}
