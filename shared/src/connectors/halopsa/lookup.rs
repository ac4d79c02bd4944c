//! What the config API looks up in HaloPSA — clients (`GET /api/Client`), teams
//! (`GET /api/Team`), priorities (`GET /api/Priority`), statuses (`GET /api/Status`) and a
//! client's users (`GET /api/Users?client_id=`) — and the check of a destination, which reads
//! and creates nothing.

use super::client::{HaloPsaClient, HaloStatus, numeric, text};
use crate::destination::Destination;
use crate::error::SinkError;
use crate::ports::{Lookup, LookupItem};
use serde_json::Value;

/// Clients (or users) one lookup returns at most.
pub const LOOKUP_MAX: usize = 1000;

fn item(id: String, name: String) -> LookupItem {
    LookupItem { id, name, closes: None, email: None, default: false }
}

fn active(item: &Value) -> bool {
    item.get("inactive").and_then(Value::as_bool) != Some(true)
}

/// A priority's id as tickets name it: `priorityid` (the same for every SLA), else `id`.
fn priority_id(priority: &Value) -> Option<i64> {
    priority.get("priorityid").and_then(Value::as_i64).or_else(|| priority.get("id").and_then(Value::as_i64))
}

/// The statuses as lookup items, `closes` set on the closing one (`closing`).
fn status_items(statuses: &[HaloStatus], closing: Option<i64>) -> Vec<LookupItem> {
    statuses.iter().map(|s| LookupItem { closes: Some(Some(s.id) == closing), ..item(s.id.to_string(), s.name.clone()) }).collect()
}

impl HaloPsaClient {
    async fn teams(&self) -> Result<Vec<LookupItem>, SinkError> {
        let teams = self.list("Team", &[], "teams", "look up teams", |_| false).await?;
        // A ticket names its team by name, so the name is the id a destination routes to.
        Ok(teams.iter().filter(|t| active(t)).map(|t| text(t, "name")).filter(|n| !n.is_empty()).map(|n| item(n.clone(), n)).collect())
    }

    async fn priorities(&self) -> Result<Vec<LookupItem>, SinkError> {
        let priorities = self.list("Priority", &[], "priorities", "look up priorities", |_| false).await?;
        let mut items: Vec<LookupItem> = Vec::new();
        for priority in priorities.iter().filter(|p| p.get("ishidden").and_then(Value::as_bool) != Some(true)) {
            let Some(id) = priority_id(priority) else { continue };
            if !items.iter().any(|i| i.id == id.to_string()) {
                items.push(item(id.to_string(), text(priority, "name")));
            }
        }
        Ok(items)
    }

    pub(super) async fn look_up(&self, what: &Lookup) -> Result<Vec<LookupItem>, SinkError> {
        match what {
            Lookup::Places => self.teams().await,
            Lookup::Priorities => self.priorities().await,
            Lookup::Statuses { .. } => Ok(status_items(&self.statuses().await?, self.closing_status(None).await?)),
            Lookup::Companies { search } => {
                let mut query = vec![("includeactive", "true".to_owned())];
                if let Some(search) = search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                    query.push(("search", search.to_owned()));
                }
                let mut count = 0;
                let clients = self
                    .list("Client", &query, "clients", "look up clients", |page| {
                        count += page.len();
                        count >= LOOKUP_MAX
                    })
                    .await?;
                Ok(clients
                    .iter()
                    .filter(|c| active(c))
                    .filter_map(|c| Some(item(c.get("id").and_then(Value::as_i64)?.to_string(), text(c, "name"))))
                    .take(LOOKUP_MAX)
                    .collect())
            }
            Lookup::Contacts { company, email } => {
                let mut query = vec![("client_id", numeric("client", company)?.to_string())];
                let email = email.as_deref().map(str::trim).filter(|s| !s.is_empty());
                if let Some(email) = email {
                    query.push(("search", email.to_owned()));
                }
                let users = self.list("Users", &query, "users", "look up users", |_| false).await?;
                Ok(users
                    .iter()
                    .filter(|u| active(u))
                    .filter(|u| email.is_none_or(|e| text(u, "emailaddress").eq_ignore_ascii_case(e)))
                    .filter_map(|u| {
                        let address = text(u, "emailaddress");
                        Some(LookupItem {
                            email: (!address.is_empty()).then_some(address),
                            ..item(u.get("id").and_then(Value::as_i64)?.to_string(), text(u, "name"))
                        })
                    })
                    .take(LOOKUP_MAX)
                    .collect())
            }
            Lookup::Sites { company } => {
                let query = vec![("client_id", numeric("client", company)?.to_string())];
                let sites = self.list("Site", &query, "sites", "look up sites", |_| false).await?;
                Ok(sites
                    .iter()
                    .filter(|s| active(s))
                    .filter_map(|s| Some(item(s.get("id").and_then(Value::as_i64)?.to_string(), text(s, "name"))))
                    .take(LOOKUP_MAX)
                    .collect())
            }
            Lookup::Technicians => {
                let agents = self.list("Agent", &[], "agents", "look up agents", |_| false).await?;
                Ok(agents
                    .iter()
                    .filter(|a| active(a))
                    .filter_map(|a| {
                        let address = text(a, "email");
                        Some(LookupItem {
                            email: (!address.is_empty()).then_some(address),
                            ..item(a.get("id").and_then(Value::as_i64)?.to_string(), text(a, "name"))
                        })
                    })
                    .take(LOOKUP_MAX)
                    .collect())
            }
        }
    }

    pub(super) async fn check_destination(&self, destination: &Destination) -> Result<Vec<String>, SinkError> {
        let crate::destination::DestinationSettings::HaloPsa(settings) = &destination.settings else {
            return Ok(vec!["the destination is not a HaloPSA destination".into()]);
        };
        let statuses = match self.statuses().await {
            Ok(statuses) => statuses,
            Err(SinkError::Unauthorized(why)) => return Ok(vec![format!("HaloPSA refused the credentials ({why})")]),
            Err(SinkError::Rejected(why)) => return Ok(vec![format!("HaloPSA refused the check ({why})")]),
            Err(other) => return Err(other),
        };
        let routing = &destination.routing;
        let mut problems = Vec::new();
        let teams = self.teams().await?;
        let mut need_team = |team: &String, what: &str| {
            if !teams.iter().any(|t| t.id.eq_ignore_ascii_case(team.trim())) {
                problems.push(format!("{what}: HaloPSA has no team named {team:?}"));
            }
        };
        if let Some(team) = &routing.default_place {
            need_team(team, "default team");
        }
        for (category, team) in &routing.places {
            need_team(team, &format!("team of {}", category.as_str()));
        }
        let priorities = self.priorities().await?;
        for (severity, priority) in &routing.priorities {
            if !priorities.iter().any(|p| p.id == priority.trim()) {
                problems.push(format!("priority of {}: HaloPSA has no priority {priority}", severity.as_str()));
            }
        }
        match &routing.closed_status {
            Some(status) if !statuses.iter().any(|s| s.id.to_string() == status.trim()) => {
                problems.push(format!("closed status: HaloPSA has no status {status}"));
            }
            Some(_) => {}
            None if !statuses.iter().any(|s| s.name.eq_ignore_ascii_case("closed")) => {
                problems.push("HaloPSA has no status named Closed; name the closed status in the routing".into());
            }
            None => {}
        }
        for (what, value) in [("ticket type", &settings.ticket_type), ("note outcome", &settings.note_outcome)] {
            if let Some(value) = value
                && numeric(what, value).is_err()
            {
                problems.push(format!("{what} {value:?} is not a HaloPSA id (a number)"));
            }
        }
        Ok(problems)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_priority_is_named_by_its_priorityid_and_the_closing_status_is_marked() {
        assert_eq!(priority_id(&json!({"id": 101, "priorityid": 1})), Some(1));
        assert_eq!(priority_id(&json!({"id": 4})), Some(4));
        let statuses = [HaloStatus { id: 1, name: "New".into() }, HaloStatus { id: 9, name: "Closed".into() }];
        let items = status_items(&statuses, Some(9));
        assert_eq!(items.iter().map(|i| i.closes).collect::<Vec<_>>(), [Some(false), Some(true)]);
    }
}
