//! Master tables (statuses, priorities, types, dispatch boards, note topics, reps), what the
//! config API looks up (accounts by paged search, an account's contacts), and the check of a
//! destination, which creates nothing and tells which authorization form the server accepts.
//!
//! Master tables are read as bare arrays; an entry's name is its first text member among
//! [`NAME_MEMBERS`], a status closes an order when one of [`CLOSED_MEMBERS`] is `true`, and a
//! default is marked by one of [`DEFAULT_MEMBERS`] — member names **unconfirmed** (the 18.2.1
//! SDK documents only the dispatch board's `DispatchBoardId` and `Description`).

use super::client::{TigerpawClient, other, scheme};
use super::orders::number;
use crate::destination::{Destination, DestinationSettings, TigerpawAuth};
use crate::error::SinkError;
use crate::ports::{Lookup, LookupItem};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;

/// Accounts (or contacts) one lookup returns at most.
pub const LOOKUP_MAX: usize = 1000;
/// Rows asked per search page.
pub const PAGE_SIZE: usize = 100;
/// The status that completes an order when the statuses table marks none as closing.
pub const FALLBACK_CLOSED_STATUS: &str = "Completed";
/// Members read as a master-table entry's name, in order.
pub const NAME_MEMBERS: &[&str] = &["Description", "Name", "RepName", "Status", "Priority", "Topic", "Value"];
/// Members read as "this status closes an order".
pub const CLOSED_MEMBERS: &[&str] = &["IsClosedStatus", "IsClosed", "Closed", "ClosesServiceOrder", "IsCompleted", "Completed"];
/// Members read as "this is the default".
pub const DEFAULT_MEMBERS: &[&str] = &["IsDefault", "Default"];

const STATUSES: &str = "api/mastertables/serviceorders/statuses";
const PRIORITIES: &str = "api/mastertables/priorities";
const TYPES: &str = "api/mastertables/serviceOrders/types";
const BOARDS: &str = "api/mastertables/dispatchboards";
const NOTE_TOPICS: &str = "api/mastertables/serviceOrder/noteTopics";
const REPS: &str = "api/mastertables/reps";

fn member<'a>(entry: &'a Value, names: &[&str]) -> Option<&'a Value> {
    let object = entry.as_object()?;
    names.iter().find_map(|name| object.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

/// A master-table entry's name.
#[must_use]
pub fn entry_name(entry: &Value) -> Option<String> {
    let object = entry.as_object()?;
    NAME_MEMBERS
        .iter()
        .find_map(|name| object.iter().find(|(k, v)| k.eq_ignore_ascii_case(name) && v.is_string()).and_then(|(_, v)| v.as_str()))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn flag(entry: &Value, names: &[&str]) -> Option<bool> {
    member(entry, names).and_then(Value::as_bool)
}

fn int_text(entry: &Value, names: &[&str]) -> Option<String> {
    member(entry, names).and_then(|v| v.as_i64().map(|n| n.to_string()).or_else(|| v.as_str().map(str::to_owned)))
}

fn entries(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

/// The statuses master table as the connector uses it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Statuses {
    /// Every status: name, whether it closes, whether it is the default.
    pub all: Vec<(String, bool, bool)>,
    /// Whether any entry carried a closed flag at all.
    pub flagged: bool,
}

impl Statuses {
    /// Reads the table.
    #[must_use]
    pub fn parse(table: &Value) -> Self {
        let mut statuses = Statuses::default();
        for entry in entries(table) {
            let Some(name) = entry_name(entry) else { continue };
            let closes = flag(entry, CLOSED_MEMBERS);
            statuses.flagged |= closes.is_some();
            statuses.all.push((name, closes.unwrap_or(false), flag(entry, DEFAULT_MEMBERS).unwrap_or(false)));
        }
        statuses
    }

    /// The status a close uses: `wanted`, else the first status the table marks as closing,
    /// else [`FALLBACK_CLOSED_STATUS`].
    #[must_use]
    pub fn closing(&self, wanted: Option<&str>) -> String {
        wanted
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .or_else(|| self.all.iter().find(|(_, closes, _)| *closes).map(|(name, _, _)| name.clone()))
            .unwrap_or_else(|| FALLBACK_CLOSED_STATUS.to_owned())
    }

    /// Whether `status` closes an order: marked so, or it is `override_status`, or (in a table
    /// with no flags) it is [`FALLBACK_CLOSED_STATUS`].
    #[must_use]
    pub fn closes(&self, status: &str, override_status: Option<&str>) -> bool {
        let status = status.trim();
        override_status.is_some_and(|o| o.trim().eq_ignore_ascii_case(status))
            || self.all.iter().any(|(name, closes, _)| *closes && name.eq_ignore_ascii_case(status))
            || (!self.flagged && status.eq_ignore_ascii_case(FALLBACK_CLOSED_STATUS))
    }

    fn has(&self, status: &str) -> bool {
        self.all.iter().any(|(name, _, _)| name.eq_ignore_ascii_case(status.trim()))
    }
}

fn names(table: &Value) -> Vec<String> {
    entries(table).iter().filter_map(entry_name).collect()
}

fn named_items(table: &Value) -> Vec<LookupItem> {
    entries(table)
        .iter()
        .filter_map(|e| {
            let name = entry_name(e)?;
            Some(LookupItem { id: name.clone(), name, closes: None, email: None, default: flag(e, DEFAULT_MEMBERS).unwrap_or(false) })
        })
        .collect()
}

fn text(entry: &Value, name: &str) -> String {
    member(entry, &[name]).and_then(Value::as_str).unwrap_or_default().trim().to_owned()
}

fn contains_ci(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v.eq_ignore_ascii_case(value.trim()))
}

impl TigerpawClient {
    /// The statuses master table, read once per client.
    pub(super) async fn statuses(&self) -> Result<Arc<Statuses>, SinkError> {
        let mut cached = self.statuses.lock().await;
        if let Some(statuses) = cached.as_ref() {
            return Ok(statuses.clone());
        }
        let statuses = Arc::new(Statuses::parse(&self.call(Method::GET, STATUSES, None, "read statuses").await?));
        *cached = Some(statuses.clone());
        Ok(statuses)
    }

    /// The topic of Vigil's notes: the configured one, else the first note topic (read once).
    pub(super) async fn topic(&self) -> Result<Option<String>, SinkError> {
        if let Some(topic) = &self.settings.note_topic {
            return Ok(Some(topic.clone()));
        }
        let mut cached = self.note_topic.lock().await;
        if let Some(topic) = cached.as_ref() {
            return Ok(topic.clone());
        }
        let topics = self.call(Method::GET, NOTE_TOPICS, None, "read note topics").await?;
        let topic = names(&topics).into_iter().next();
        *cached = Some(topic.clone());
        Ok(topic)
    }

    /// The contacts of an account (`GET api/contacts/account/{n}`).
    pub(super) async fn contacts(&self, account: i64) -> Result<Vec<LookupItem>, SinkError> {
        let contacts = self.call(Method::GET, &format!("api/contacts/account/{account}"), None, "read contacts").await?;
        Ok(entries(&contacts)
            .iter()
            .filter_map(|c| {
                let email = text(c, "EmailAddress");
                Some(LookupItem {
                    id: int_text(c, &["ContactNumber"])?,
                    name: format!("{} {}", text(c, "FirstName"), text(c, "LastName")).trim().to_owned(),
                    closes: None,
                    email: (!email.is_empty()).then_some(email),
                    default: false,
                })
            })
            .collect())
    }

    async fn accounts(&self, search: Option<&str>) -> Result<Vec<LookupItem>, SinkError> {
        let criteria = match search.map(str::trim).filter(|s| !s.is_empty()) {
            Some(search) => json!([{"SearchType": "AccountName", "MatchType": "Contains", "Criteria": search}]),
            None => json!([]),
        };
        let mut items = Vec::new();
        let mut start = 1_u64;
        loop {
            let body = json!({"Criteria": criteria, "PageSize": PAGE_SIZE, "StartRow": start});
            let page = self.call(Method::POST, "api/accounts/search", Some(&body), "look up accounts").await?;
            let accounts = member(&page, &["Accounts"]).map(entries).unwrap_or_default();
            items.extend(accounts.iter().filter(|a| !text(a, "AccountStatus").eq_ignore_ascii_case("inactive")).filter_map(|a| {
                Some(LookupItem {
                    id: int_text(a, &["AccountNumber"])?,
                    name: text(a, "AccountName"),
                    closes: None,
                    email: None,
                    default: false,
                })
            }));
            let next = member(&page, &["NextRow"]).and_then(Value::as_u64);
            match next {
                Some(next) if next > start && !accounts.is_empty() && items.len() < LOOKUP_MAX => start = next,
                _ => break,
            }
        }
        items.truncate(LOOKUP_MAX);
        Ok(items)
    }

    pub(super) async fn look_up(&self, what: &Lookup) -> Result<Vec<LookupItem>, SinkError> {
        match what {
            Lookup::Companies { search } => self.accounts(search.as_deref()).await,
            Lookup::Places => {
                let boards = self.call(Method::GET, BOARDS, None, "read dispatch boards").await?;
                Ok(entries(&boards)
                    .iter()
                    .filter_map(|b| {
                        let id = int_text(b, &["DispatchBoardId", "DispatchBoardNumber"])?;
                        Some(LookupItem {
                            name: entry_name(b).unwrap_or_else(|| id.clone()),
                            id,
                            closes: None,
                            email: None,
                            default: false,
                        })
                    })
                    .collect())
            }
            Lookup::Priorities => Ok(named_items(&self.call(Method::GET, PRIORITIES, None, "read priorities").await?)),
            Lookup::Statuses { .. } => {
                let statuses = self.statuses().await?;
                let override_status = self.closed_status.as_deref();
                Ok(statuses
                    .all
                    .iter()
                    .map(|(name, _, default)| LookupItem {
                        id: name.clone(),
                        name: name.clone(),
                        closes: Some(statuses.closes(name, override_status)),
                        email: None,
                        default: *default,
                    })
                    .collect())
            }
            Lookup::Contacts { company, email } => {
                let contacts = self.contacts(number("account", company)?).await?;
                let wanted = email.as_deref().map(str::trim).filter(|e| !e.is_empty());
                Ok(contacts
                    .into_iter()
                    .filter(|c| wanted.is_none_or(|w| c.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(w))))
                    .take(LOOKUP_MAX)
                    .collect())
            }
            Lookup::Technicians => {
                let reps = self.call(Method::GET, REPS, None, "read reps").await?;
                Ok(entries(&reps)
                    .iter()
                    .filter_map(|r| {
                        let id = int_text(r, &["RepNumber"])?;
                        Some(LookupItem {
                            name: entry_name(r).unwrap_or_else(|| id.clone()),
                            id,
                            closes: None,
                            email: None,
                            default: false,
                        })
                    })
                    .take(LOOKUP_MAX)
                    .collect())
            }
            Lookup::Sites { .. } => Err(SinkError::Invalid("Tigerpaw accounts have no sites Vigil looks up".into())),
        }
    }

    /// Probes the credentials with the statuses table: `Ok(None)` when the configured form is
    /// accepted, `Ok(Some(problem))` when it is not (naming the form that is, if any).
    async fn probe_authorization(&self) -> Result<Option<String>, SinkError> {
        let configured = self.settings.auth;
        match self.call(Method::GET, STATUSES, None, "check credentials").await {
            Ok(_) => return Ok(None),
            Err(SinkError::Unauthorized(_)) => {}
            Err(SinkError::Rejected(why)) => return Ok(Some(format!("Tigerpaw refused the check ({why})"))),
            Err(other) => return Err(other),
        }
        let alternative = other(configured);
        let lower = |form: TigerpawAuth| if form == TigerpawAuth::Tsi { "tsi" } else { "basic" };
        match self.call_as(alternative, Method::GET, STATUSES, None, "check credentials").await {
            Ok(_) => Ok(Some(format!(
                "the server accepts {} authorization, not {}: set settings.auth to {}",
                scheme(alternative),
                scheme(configured),
                lower(alternative)
            ))),
            Err(SinkError::Unauthorized(_)) => Ok(Some(format!(
                "Tigerpaw refused the keys in both authorization forms ({} and {}): check the public and private key",
                scheme(configured),
                scheme(alternative)
            ))),
            Err(SinkError::Rejected(why)) => Ok(Some(format!("Tigerpaw refused the check ({why})"))),
            Err(other) => Err(other),
        }
    }

    pub(super) async fn check_destination(&self, destination: &Destination) -> Result<Vec<String>, SinkError> {
        let DestinationSettings::Tigerpaw(settings) = &destination.settings else {
            return Ok(vec!["the destination is not a Tigerpaw destination".into()]);
        };
        if let Some(problem) = self.probe_authorization().await? {
            return Ok(vec![problem]);
        }
        let routing = &destination.routing;
        let mut problems = Vec::new();
        let statuses = self.statuses().await?;
        if let Some(status) = &routing.closed_status {
            if !statuses.has(status) {
                problems.push(format!("closed status {status:?} is not a service order status"));
            } else if statuses.flagged && !statuses.all.iter().any(|(n, closes, _)| *closes && n.eq_ignore_ascii_case(status.trim())) {
                problems.push(format!("closed status {status:?} does not close a service order"));
            }
        } else if !statuses.has(&statuses.closing(None)) {
            problems.push(format!(
                "no status closes a service order and there is no {FALLBACK_CLOSED_STATUS:?} status: name the closed status"
            ));
        }
        if let Some(status) = &settings.new_status
            && !statuses.has(status)
        {
            problems.push(format!("new status {status:?} is not a service order status"));
        }
        if !routing.priorities.is_empty() {
            let priorities = names(&self.call(Method::GET, PRIORITIES, None, "read priorities").await?);
            for (severity, priority) in &routing.priorities {
                if !contains_ci(&priorities, priority) {
                    problems.push(format!("priority of {}: {priority:?} is not a Tigerpaw priority", severity.as_str()));
                }
            }
        }
        let places: Vec<(String, &String)> = routing
            .default_place
            .iter()
            .map(|p| ("default dispatch board".to_owned(), p))
            .chain(routing.places.iter().map(|(c, p)| (format!("dispatch board of {}", c.as_str()), p)))
            .collect();
        if !places.is_empty() {
            let boards = self.look_up(&Lookup::Places).await?;
            for (what, place) in places {
                if !boards.iter().any(|b| b.id == place.trim()) {
                    problems.push(format!("{what}: {place:?} is not a dispatch board number"));
                }
            }
        }
        if let Some(kind) = &settings.service_order_type
            && !contains_ci(&names(&self.call(Method::GET, TYPES, None, "read service order types").await?), kind)
        {
            problems.push(format!("service order type {kind:?} is not a Tigerpaw service order type"));
        }
        if let Some(topic) = &settings.note_topic
            && !contains_ci(&names(&self.call(Method::GET, NOTE_TOPICS, None, "read note topics").await?), topic)
        {
            problems.push(format!("note topic {topic:?} is not a Tigerpaw note topic"));
        }
        if let Some(rep) = &settings.rep_number {
            let reps = self.call(Method::GET, REPS, None, "read reps").await?;
            if !entries(&reps).iter().any(|r| int_text(r, &["RepNumber"]).is_some_and(|n| n == rep.trim())) {
                problems.push(format!("rep number {rep:?} is not a Tigerpaw account rep"));
            }
        }
        Ok(problems)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_closing_status_is_the_override_or_the_first_flagged_or_completed() {
        let table = json!([
            {"Description": "Open", "IsClosedStatus": false, "IsDefault": true},
            {"Description": "Resolved", "IsClosedStatus": true},
            {"Description": "Completed", "IsClosedStatus": true}
        ]);
        let statuses = Statuses::parse(&table);
        assert_eq!(statuses.closing(None), "Resolved", "the server's first closed status");
        assert_eq!(statuses.closing(Some("Completed")), "Completed");
        assert!(statuses.closes("completed", None) && !statuses.closes("Open", None));
        assert!(statuses.closes("Open", Some("open")), "an override closes");
        let unflagged = Statuses::parse(&json!([{"Name": "Open"}, {"Name": "Completed"}]));
        assert_eq!(unflagged.closing(None), FALLBACK_CLOSED_STATUS);
        assert!(unflagged.closes("Completed", None) && !unflagged.flagged);
    }

    #[test]
    fn entries_are_named_by_their_first_text_member() {
        assert_eq!(entry_name(&json!({"DispatchBoardId": 3, "Description": " Security "})), Some("Security".into()));
        assert_eq!(entry_name(&json!({"Priority": "High"})), Some("High".into()));
        assert_eq!(entry_name(&json!({"Description": ""})), None);
        let items = named_items(&json!([{"Description": "Medium", "IsDefault": true}, {"Description": "Low"}]));
        assert!(items[0].default && items[0].id == "Medium" && !items[1].default);
    }
}
