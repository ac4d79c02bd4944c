//! Tickets (Halo's `Faults`): the create body (an array of one ticket), finding a ticket by
//! the reference it carries in `supplier_reference`, closing one with the destination's closed
//! status, and reading tickets' states (`GET /api/Tickets/{id}`; 404 is gone).

use super::client::{HaloPsaClient, HaloStatus, Settings, numeric, text};
use crate::error::SinkError;
use crate::ports::NewTicket;
use crate::render::cut;
use crate::ticket::{TicketRef, TicketState};
use chrono::{DateTime, NaiveDateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The longest `summary` Vigil sends (the schema declares no limit; Halo's column is believed
/// to hold 250 — unconfirmed).
pub const SUMMARY_MAX: usize = 250;
/// The longest ticket text Vigil sends (before HTML escaping; `details_html` has no declared
/// limit — a bound of our own).
pub const DETAILS_MAX: usize = 20_000;
/// The longest reference (`supplier_reference`) Vigil stores, as for every PSA.
pub const REFERENCE_MAX: usize = 50;
/// The longest `closure_note` Vigil sends.
pub const CLOSURE_NOTE_MAX: usize = 4_000;

/// `text` as HTML: escaped, one `<br>` per line break.
#[must_use]
pub fn to_html(text: &str) -> String {
    escape_html(text).replace('\n', "<br>\n")
}

/// `text` with `&`, `<`, `>`, `"` and `'` escaped.
#[must_use]
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// The one ticket of the `POST /api/Tickets` body: the routed team (a name) and priority, the
/// settings' ticket type, the contact (`user_id`, `site_id`) when known, the reference in
/// `supplier_reference`.
///
/// # Errors
/// [`SinkError::Rejected`] for a reference over [`REFERENCE_MAX`]; [`SinkError::Invalid`] for
/// an id that is not a number.
pub fn ticket_body(ticket: &NewTicket, settings: &Settings, contact: Option<(i64, Option<i64>)>) -> Result<Value, SinkError> {
    if ticket.reference.chars().count() > REFERENCE_MAX {
        return Err(SinkError::Rejected(format!("the reference {:?} is longer than {REFERENCE_MAX} characters", ticket.reference)));
    }
    let mut body = json!({
        "summary": ticket.content.title_within(SUMMARY_MAX),
        "details_html": to_html(&ticket.content.text_within(DETAILS_MAX)),
        "client_id": numeric("client", &ticket.company)?,
        "supplier_reference": ticket.reference,
    });
    if let Some(team) = ticket.place.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        body["team"] = json!(team);
    }
    if let Some(priority) = &ticket.priority {
        body["priority_id"] = json!(numeric("priority", priority)?);
    }
    if let Some(ticket_type) = &settings.ticket_type {
        body["tickettype_id"] = json!(numeric("ticket type", ticket_type)?);
    }
    if let Some((user, site)) = contact {
        body["user_id"] = json!(user);
        if let Some(site) = site {
            body["site_id"] = json!(site);
        }
    }
    Ok(body)
}

/// A Halo date: RFC 3339, or Halo's zone-less form read as UTC.
pub(super) fn halo_date(value: Option<&Value>) -> Option<DateTime<Utc>> {
    let text = value?.as_str()?.trim();
    DateTime::parse_from_rfc3339(text)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|n| n.and_utc()))
}

fn status_name(statuses: &[HaloStatus], item: &Value) -> String {
    let id = item.get("status_id").and_then(Value::as_i64);
    id.and_then(|id| statuses.iter().find(|s| s.id == id).map(|s| s.name.clone()))
        .or_else(|| Some(text(item, "status_name")).filter(|n| !n.is_empty()))
        .unwrap_or_else(|| id.map_or_else(|| "unknown".to_owned(), |id| format!("status {id}")))
}

impl HaloPsaClient {
    /// `GET /api/Tickets/{id}`: the ticket, or `None` when Halo answers 404 (deleted or merged
    /// away) or marks it `deleted`.
    pub(super) async fn ticket_item(&self, id: i64) -> Result<Option<Value>, SinkError> {
        let answer = self.exchange(Method::GET, &format!("Tickets/{id}"), &[], None, "read ticket").await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let item = self.read(answer, "read ticket")?;
        Ok((!item.is_null() && item.get("deleted").and_then(Value::as_bool) != Some(true)).then_some(item))
    }

    /// `error`, or [`SinkError::Gone`] when it is a refusal and the ticket no longer exists.
    pub(super) async fn gone_or(&self, id: i64, error: SinkError) -> SinkError {
        if !matches!(error, SinkError::Rejected(_)) {
            return error;
        }
        match self.ticket_item(id).await {
            Ok(None) => SinkError::Gone(format!("HaloPSA ticket {id} no longer exists")),
            Ok(Some(_)) => error,
            Err(lookup) => lookup,
        }
    }

    /// The user of `client` whose e-mail address is `email`: its id and site.
    pub(super) async fn user_for(&self, client: i64, email: &str) -> Result<Option<(i64, Option<i64>)>, SinkError> {
        let query = [("client_id", client.to_string()), ("search", email.trim().to_owned())];
        let users = self.list("Users", &query, "users", "find user", |_| false).await?;
        Ok(users
            .iter()
            .filter(|u| u.get("inactive").and_then(Value::as_bool) != Some(true))
            .find(|u| text(u, "emailaddress").eq_ignore_ascii_case(email.trim()))
            .and_then(|u| Some((u.get("id").and_then(Value::as_i64)?, u.get("site_id").and_then(Value::as_i64)))))
    }

    /// `GET /api/Tickets?search_supplier_reference=…`, each hit checked for the whole reference.
    pub(super) async fn find(&self, reference: &str) -> Result<Option<TicketRef>, SinkError> {
        let query = [("search_supplier_reference", reference.to_owned())];
        let mut found = None;
        self.list("Tickets", &query, "tickets", "find ticket", |page| {
            found = page
                .iter()
                .filter(|t| t.get("supplier_reference").and_then(Value::as_str).is_none_or(|r| r == reference))
                .find_map(|t| t.get("id").and_then(Value::as_i64));
            found.is_some()
        })
        .await?;
        Ok(found.map(|id| TicketRef::new(id.to_string())))
    }

    pub(super) async fn create(&self, ticket: &NewTicket) -> Result<TicketRef, SinkError> {
        if ticket.reference.chars().count() > REFERENCE_MAX {
            return Err(SinkError::Rejected(format!("the reference is longer than {REFERENCE_MAX} characters")));
        }
        let client = numeric("client", &ticket.company)?;
        // Best effort: users the application may not read file the ticket without a contact.
        let contact = match ticket.content.affected_user.as_deref().filter(|e| e.contains('@')) {
            Some(email) => match self.user_for(client, email).await {
                Ok(contact) => contact,
                Err(SinkError::Rejected(why)) => {
                    tracing::info!(reason = %why, "HaloPSA users are not readable; filing the ticket without a user");
                    None
                }
                Err(other) => return Err(other),
            },
            None => None,
        };
        let body = json!([ticket_body(ticket, &self.settings, contact)?]);
        let created = self.call(Method::POST, "Tickets", &[], Some(&body), "create ticket").await?;
        let created = match created {
            Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
            other => other,
        };
        // The ticket exists but its id is unreadable: transient, so the retry finds it by reference.
        let id = created
            .get("id")
            .and_then(Value::as_i64)
            .filter(|id| *id > 0)
            .ok_or_else(|| SinkError::Unavailable("create ticket: the answer has no ticket id".into()))?;
        tracing::info!(ticket_id = id, "created HaloPSA ticket");
        Ok(TicketRef::new(id.to_string()))
    }

    pub(super) async fn close(&self, ticket: &TicketRef, status: Option<&str>, resolution: &str) -> Result<(), SinkError> {
        let id = numeric("ticket", &ticket.id)?;
        let closing = self.closing_status(status).await?.ok_or_else(|| {
            SinkError::Rejected("close ticket: HaloPSA has no status named Closed; name the closed status in the routing".into())
        })?;
        let Some(item) = self.ticket_item(id).await? else {
            return Err(SinkError::Gone(format!("HaloPSA ticket {id} no longer exists")));
        };
        if item.get("hasbeenclosed").and_then(Value::as_bool) == Some(true)
            || item.get("status_id").and_then(Value::as_i64) == Some(closing)
        {
            return Ok(());
        }
        let mut update = json!({"id": id, "status_id": closing});
        if !resolution.trim().is_empty() {
            update["closure_note"] = json!(cut(resolution, CLOSURE_NOTE_MAX));
        }
        match self.call(Method::POST, "Tickets", &[], Some(&json!([update])), "close ticket").await {
            Ok(_) => Ok(()),
            Err(error) => Err(self.gone_or(id, error).await),
        }
    }

    /// Who closed ticket `id` into `status`: the latest action that set it (its `who`, else
    /// its agent id), else the ticket's `closure_agent_id`.
    async fn closer(&self, id: i64, status: Option<i64>, item: &Value) -> Result<Option<String>, SinkError> {
        let fallback = item.get("closure_agent_id").and_then(Value::as_i64).filter(|a| *a > 0).map(|a| format!("agent #{a}"));
        let actions = match self.list("Actions", &[("ticket_id", id.to_string())], "actions", "read closer", |_| false).await {
            Ok(actions) => actions,
            Err(SinkError::Rejected(why)) => {
                tracing::info!(reason = %why, "HaloPSA actions are not readable; the closer is not named");
                return Ok(fallback);
            }
            Err(other) => return Err(other),
        };
        let closing = actions
            .iter()
            .filter(|a| a.get("new_status").and_then(Value::as_i64).is_some_and(|s| Some(s) == status))
            .max_by_key(|a| a.get("id").and_then(Value::as_i64).unwrap_or_default());
        Ok(closing
            .and_then(|a| {
                Some(text(a, "who"))
                    .filter(|w| !w.is_empty())
                    .or_else(|| a.get("who_agentid").and_then(Value::as_i64).filter(|w| *w > 0).map(|w| format!("agent #{w}")))
            })
            .or(fallback))
    }

    pub(super) async fn states(&self, tickets: &[TicketRef]) -> Result<Vec<(TicketRef, TicketState)>, SinkError> {
        let mut states = Vec::with_capacity(tickets.len());
        let mut statuses: Option<std::sync::Arc<Vec<HaloStatus>>> = None;
        for ticket in tickets {
            let item = match ticket.id.trim().parse::<i64>() {
                Ok(id) => self.ticket_item(id).await?.map(|item| (id, item)),
                Err(_) => None,
            };
            let state = match item {
                None => TicketState::Gone,
                Some((id, item)) => {
                    if statuses.is_none() {
                        statuses = Some(self.statuses().await?);
                    }
                    let known = statuses.as_deref().map(Vec::as_slice).unwrap_or_default();
                    let status = item.get("status_id").and_then(Value::as_i64);
                    let closing = self.closing_status(None).await?;
                    let closed =
                        item.get("hasbeenclosed").and_then(Value::as_bool) == Some(true) || (status.is_some() && status == closing);
                    let name = status_name(known, &item);
                    if closed {
                        TicketState::Closed {
                            status: name,
                            by: self.closer(id, status, &item).await?,
                            at: halo_date(item.get("dateclosed")),
                        }
                    } else {
                        TicketState::Open { status: name }
                    }
                }
            };
            states.push((ticket.clone(), state));
        }
        Ok(states)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::contract::sample_alert;
    use crate::render::render_ticket;

    fn new_ticket() -> NewTicket {
        let mut alert = sample_alert(Utc::now());
        alert.policy_name = "A <policy> & a long name ".repeat(20);
        NewTicket {
            content: render_ticket(&alert, None, None),
            reference: "vigil:abc".into(),
            company: "12".into(),
            place: Some("Security Operations".into()),
            priority: Some("2".into()),
        }
    }

    fn settings() -> Settings {
        Settings { url: "https://msp.halopsa.com".into(), tenant: None, ticket_type: Some("21".into()), note_outcome: None }
    }

    #[test]
    fn the_body_carries_the_routing_the_reference_and_escaped_details_within_limits() {
        let body = ticket_body(&new_ticket(), &settings(), Some((501, Some(21)))).unwrap();
        assert!(body["summary"].as_str().unwrap().chars().count() <= SUMMARY_MAX);
        assert_eq!(body["client_id"], 12);
        assert_eq!(body["team"], "Security Operations");
        assert_eq!((body["priority_id"].clone(), body["tickettype_id"].clone()), (json!(2), json!(21)));
        assert_eq!((body["user_id"].clone(), body["site_id"].clone()), (json!(501), json!(21)));
        assert_eq!(body["supplier_reference"], "vigil:abc");
        let details = body["details_html"].as_str().unwrap();
        assert!(details.contains("&lt;policy&gt; &amp;") && details.contains("<br>"), "{details}");
    }

    #[test]
    fn optional_members_are_left_out_and_bad_values_refused() {
        let bare = NewTicket { place: None, priority: None, ..new_ticket() };
        let body = ticket_body(&bare, &Settings { ticket_type: None, ..settings() }, None).unwrap();
        for absent in ["team", "priority_id", "tickettype_id", "user_id", "site_id"] {
            assert!(body.get(absent).is_none(), "{absent}");
        }
        let long = NewTicket { reference: "v".repeat(51), ..new_ticket() };
        assert!(matches!(ticket_body(&long, &settings(), None), Err(SinkError::Rejected(_))));
        let named = NewTicket { company: "Contoso".into(), ..new_ticket() };
        assert!(matches!(ticket_body(&named, &settings(), None), Err(SinkError::Invalid(_))));
    }

    #[test]
    fn halo_dates_are_read_with_or_without_a_zone() {
        let zoned = halo_date(Some(&json!("2026-01-05T10:00:00Z"))).unwrap();
        assert_eq!(halo_date(Some(&json!("2026-01-05T10:00:00.123"))).unwrap().timestamp(), zoned.timestamp());
        assert_eq!(halo_date(Some(&json!("soon"))), None);
    }
}
