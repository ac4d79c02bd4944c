//! The simulated instance's reference data and its list routes: clients (`GET /api/Client`),
//! users (`GET /api/Users`), teams, priorities, statuses, ticket types, outcomes and agents.
//!
//! Seeded with: clients [`CONTOSO_CLIENT_ID`] "Contoso Ltd" (site 21, user 501
//! `adele.vance@contoso.example`), 13 "Fabrikam Inc" and 14 "Northwind Traders" (inactive);
//! teams 1 "Security Operations" and 2 "Service Desk"; priorities of SLA 1 with `priorityid`
//! 1–4 (Critical, High, Medium, Low) whose row `id`s are 101–104, so a client that confuses
//! the two is caught; statuses 1 New, 2 In Progress, 3 Pending, 8 Resolved, 9 Closed (only
//! [`CLOSED_STATUS_ID`] closes); ticket types 1 Incident and 21 Security Alert; outcomes 7
//! "Private Note" (the default of Vigil's actions) and 1 "Update"; agent 1 "Vigil API" (the
//! application's agent) and 2 "Alex Tech".

use serde_json::{Value, json};

/// The seeded active client Vigil files under in tests.
pub const CONTOSO_CLIENT_ID: i64 = 12;
/// Contoso's site.
pub const CONTOSO_SITE_ID: i64 = 21;
/// Contoso's user `adele.vance@contoso.example`.
pub const CONTOSO_USER_ID: i64 = 501;
/// The seeded team Vigil routes to in tests.
pub const SECURITY_TEAM: &str = "Security Operations";
/// The status that closes a ticket.
pub const CLOSED_STATUS_ID: i64 = 9;
/// The agent the API application acts as.
pub const API_AGENT_ID: i64 = 1;

/// The reference data.
#[derive(Debug, Clone)]
pub struct Directory {
    pub clients: Vec<Value>,
    pub users: Vec<Value>,
    pub sites: Vec<Value>,
    pub teams: Vec<Value>,
    pub priorities: Vec<Value>,
    pub statuses: Vec<Value>,
    pub ticket_types: Vec<Value>,
    pub outcomes: Vec<Value>,
    pub agents: Vec<Value>,
    next_client_id: i64,
    next_agent_id: i64,
}

impl Directory {
    /// The seeded instance (see the module docs).
    pub fn new() -> Self {
        let priority =
            |id: i64, priorityid: i64, name: &str| json!({"id": id, "slaid": 1, "priorityid": priorityid, "name": name, "ishidden": false});
        let status = |id: i64, name: &str| json!({"id": id, "name": name, "type": 0});
        Directory {
            clients: vec![
                json!({"id": CONTOSO_CLIENT_ID, "name": "Contoso Ltd", "inactive": false}),
                json!({"id": 13, "name": "Fabrikam Inc", "inactive": false}),
                json!({"id": 14, "name": "Northwind Traders", "inactive": true}),
            ],
            users: vec![json!({
                "id": CONTOSO_USER_ID, "name": "Adele Vance", "emailaddress": "adele.vance@contoso.example",
                "client_id": CONTOSO_CLIENT_ID, "site_id": CONTOSO_SITE_ID, "inactive": false
            })],
            sites: vec![json!({"id": CONTOSO_SITE_ID, "name": "Contoso HQ", "client_id": CONTOSO_CLIENT_ID})],
            teams: vec![
                json!({"id": 1, "name": SECURITY_TEAM, "inactive": false}),
                json!({"id": 2, "name": "Service Desk", "inactive": false}),
            ],
            priorities: vec![priority(101, 1, "Critical"), priority(102, 2, "High"), priority(103, 3, "Medium"), priority(104, 4, "Low")],
            statuses: vec![
                status(1, "New"),
                status(2, "In Progress"),
                status(3, "Pending"),
                status(8, "Resolved"),
                status(CLOSED_STATUS_ID, "Closed"),
            ],
            ticket_types: vec![json!({"id": 1, "name": "Incident"}), json!({"id": 21, "name": "Security Alert"})],
            outcomes: vec![json!({"id": 7, "outcome": "Private Note"}), json!({"id": 1, "outcome": "Update"})],
            agents: vec![json!({"id": API_AGENT_ID, "name": "Vigil API"}), json!({"id": 2, "name": "Alex Tech"})],
            next_client_id: 100,
            next_agent_id: 3,
        }
    }

    /// Adds a client; returns its id.
    pub fn add_client(&mut self, name: &str, inactive: bool) -> i64 {
        let id = self.next_client_id;
        self.next_client_id += 1;
        self.clients.push(json!({"id": id, "name": name, "inactive": inactive}));
        id
    }

    /// The agent named `name` (case-insensitive), added when unknown; returns its id.
    pub fn agent_named(&mut self, name: &str) -> i64 {
        if let Some(id) =
            self.agents.iter().find(|a| a["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name))).and_then(|a| a["id"].as_i64())
        {
            return id;
        }
        let id = self.next_agent_id;
        self.next_agent_id += 1;
        self.agents.push(json!({"id": id, "name": name}));
        id
    }

    /// An agent's name.
    pub fn agent_name(&self, id: i64) -> String {
        self.agents.iter().find(|a| a["id"].as_i64() == Some(id)).and_then(|a| a["name"].as_str()).unwrap_or("Unknown agent").to_owned()
    }

    fn has_id(list: &[Value], member: &str, id: i64) -> bool {
        list.iter().any(|v| v[member].as_i64() == Some(id))
    }

    /// Whether an active client has this id.
    pub fn client_exists(&self, id: i64) -> bool {
        self.clients.iter().any(|c| c["id"].as_i64() == Some(id) && c["inactive"].as_bool() != Some(true))
    }

    /// A client's name.
    pub fn client_name(&self, id: i64) -> Option<String> {
        self.clients.iter().find(|c| c["id"].as_i64() == Some(id)).and_then(|c| c["name"].as_str()).map(str::to_owned)
    }

    /// The team named `name` (case-insensitive), in its stored spelling.
    pub fn team(&self, name: &str) -> Option<String> {
        self.teams.iter().filter_map(|t| t["name"].as_str()).find(|t| t.eq_ignore_ascii_case(name.trim())).map(str::to_owned)
    }

    pub fn priority_exists(&self, priorityid: i64) -> bool {
        Self::has_id(&self.priorities, "priorityid", priorityid)
    }

    pub fn status_name(&self, id: i64) -> Option<String> {
        self.statuses.iter().find(|s| s["id"].as_i64() == Some(id)).and_then(|s| s["name"].as_str()).map(str::to_owned)
    }

    pub fn ticket_type_exists(&self, id: i64) -> bool {
        Self::has_id(&self.ticket_types, "id", id)
    }

    pub fn outcome_name(&self, id: i64) -> Option<String> {
        self.outcomes.iter().find(|o| o["id"].as_i64() == Some(id)).and_then(|o| o["outcome"].as_str()).map(str::to_owned)
    }

    /// Whether user `id` belongs to `client`.
    pub fn user_of(&self, id: i64, client: i64) -> bool {
        self.users.iter().any(|u| u["id"].as_i64() == Some(id) && u["client_id"].as_i64() == Some(client))
    }

    /// Whether site `id` belongs to `client`.
    pub fn site_of(&self, id: i64, client: i64) -> bool {
        self.sites.iter().any(|s| s["id"].as_i64() == Some(id) && s["client_id"].as_i64() == Some(client))
    }
}

impl Default for Directory {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `haystack` contains `needle`, ignoring case.
pub(crate) fn contains_ci(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// `GET /api/Client`: active clients whose name contains `search` (inactive ones too with
/// `includeinactive=true`), by id.
pub(crate) fn clients(directory: &Directory, search: Option<&str>, include_inactive: bool) -> Vec<Value> {
    let mut clients: Vec<Value> = directory
        .clients
        .iter()
        .filter(|c| include_inactive || c["inactive"].as_bool() != Some(true))
        .filter(|c| search.is_none_or(|s| contains_ci(c["name"].as_str().unwrap_or_default(), s)))
        .cloned()
        .collect();
    clients.sort_by_key(|c| c["id"].as_i64());
    clients
}

/// `GET /api/Users`: users of `client` (all when `None`) whose name or e-mail contains `search`.
pub(crate) fn users(directory: &Directory, client: Option<i64>, search: Option<&str>) -> Vec<Value> {
    directory
        .users
        .iter()
        .filter(|u| client.is_none_or(|c| u["client_id"].as_i64() == Some(c)))
        .filter(|u| search.is_none_or(|s| ["name", "emailaddress"].iter().any(|f| contains_ci(u[*f].as_str().unwrap_or_default(), s))))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeded_instance_knows_its_references() {
        let mut directory = Directory::new();
        assert!(directory.client_exists(CONTOSO_CLIENT_ID) && !directory.client_exists(14), "14 is inactive");
        assert_eq!(directory.team("security operations").as_deref(), Some(SECURITY_TEAM));
        assert!(directory.priority_exists(2) && !directory.priority_exists(102), "priorities are named by priorityid");
        assert_eq!(directory.status_name(CLOSED_STATUS_ID).as_deref(), Some("Closed"));
        assert!(directory.user_of(CONTOSO_USER_ID, CONTOSO_CLIENT_ID) && !directory.user_of(CONTOSO_USER_ID, 13));
        let jsmith = directory.agent_named("jsmith");
        assert_eq!(directory.agent_named("JSmith"), jsmith);
        assert_eq!(clients(&directory, Some("fab"), false).len(), 1);
        assert_eq!(clients(&directory, None, true).len(), 3);
        assert_eq!(users(&directory, Some(CONTOSO_CLIENT_ID), Some("ADELE.vance@")).len(), 1);
    }
}
