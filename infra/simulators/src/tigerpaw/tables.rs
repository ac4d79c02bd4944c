//! The simulated Tigerpaw database's reference data: accounts, their contacts, account reps and
//! the master tables service orders refer to.
//!
//! Master tables are served as bare arrays whose entries are `{"Description": …}` plus, for
//! statuses, `"IsClosedStatus"` and, for priorities and statuses, `"IsDefault"` — the member
//! names are the simulator's (**unconfirmed**: the 18.2.1 SDK gives only the dispatch board's
//! `{"DispatchBoardId", "Description"}`). Reps are `{"RepNumber", "RepName"}` (**unconfirmed**).
//!
//! Defaults: accounts 1053145 "Contoso Ltd" (contact 501, Ida Admin,
//! it.admin@contoso.example) and 1053146 "Fabrikam Inc"; reps 1 "Vigil API" (the keys' rep) and
//! 5 "Alex Tech"; priorities Critical, High, Medium (default), Low; statuses Open (default),
//! In Progress, Waiting on Customer, Completed (closes), Cancelled (closes); types Security,
//! Service, Maintenance; dispatch boards 1 Service, 3 Security Operations; note topics General,
//! Alert, Resolution. Added accounts get numbers from 1053147, contacts from 502, reps from 6.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// The default customer account.
pub const CONTOSO_ACCOUNT: i64 = 1_053_145;
/// Its default contact.
pub const CONTOSO_CONTACT: i64 = 501;
/// A second account.
pub const FABRIKAM_ACCOUNT: i64 = 1_053_146;
/// The rep the keys belong to.
pub const API_REP: i64 = 1;
/// The default technician.
pub const TECHNICIAN_REP: i64 = 5;
/// The Security Operations dispatch board.
pub const SECURITY_BOARD: i64 = 3;

/// Priorities (master-table strings), the default marked.
pub const PRIORITIES: &[(&str, bool)] = &[("Critical", false), ("High", false), ("Medium", true), ("Low", false)];
/// Statuses: (name, closes an order, default for new orders).
pub const STATUSES: &[(&str, bool, bool)] = &[
    ("Open", false, true),
    ("In Progress", false, false),
    ("Waiting on Customer", false, false),
    ("Completed", true, false),
    ("Cancelled", true, false),
];
/// Service order types.
pub const TYPES: &[&str] = &["Security", "Service", "Maintenance"];
/// Dispatch boards (number, description).
pub const BOARDS: &[(i64, &str)] = &[(1, "Service"), (SECURITY_BOARD, "Security Operations")];
/// Note topics.
pub const NOTE_TOPICS: &[&str] = &["General", "Alert", "Resolution"];

pub(crate) struct Contact {
    pub(crate) account: i64,
    pub(crate) email: String,
    pub(crate) first_name: String,
    pub(crate) last_name: String,
}

/// Accounts, contacts and reps (master tables are constants).
pub(crate) struct Tables {
    pub(crate) accounts: BTreeMap<i64, String>,
    pub(crate) contacts: BTreeMap<i64, Contact>,
    pub(crate) reps: BTreeMap<i64, String>,
    next_account: i64,
    next_contact: i64,
    next_rep: i64,
}

impl Tables {
    pub(crate) fn new() -> Self {
        let mut tables = Tables {
            accounts: BTreeMap::from([(CONTOSO_ACCOUNT, "Contoso Ltd".to_string()), (FABRIKAM_ACCOUNT, "Fabrikam Inc".to_string())]),
            contacts: BTreeMap::new(),
            reps: BTreeMap::from([(API_REP, "Vigil API".to_string()), (TECHNICIAN_REP, "Alex Tech".to_string())]),
            next_account: FABRIKAM_ACCOUNT + 1,
            next_contact: CONTOSO_CONTACT,
            next_rep: TECHNICIAN_REP + 1,
        };
        tables.add_contact(CONTOSO_ACCOUNT, "it.admin@contoso.example", "Ida", "Admin");
        tables
    }

    pub(crate) fn add_account(&mut self, name: &str) -> i64 {
        let number = self.next_account;
        self.next_account += 1;
        self.accounts.insert(number, name.to_string());
        number
    }

    pub(crate) fn add_contact(&mut self, account: i64, email: &str, first_name: &str, last_name: &str) -> i64 {
        let number = self.next_contact;
        self.next_contact += 1;
        let contact = Contact { account, email: email.to_string(), first_name: first_name.to_string(), last_name: last_name.to_string() };
        self.contacts.insert(number, contact);
        number
    }

    /// The rep named `name` (case-insensitive), added when unknown.
    pub(crate) fn rep_named(&mut self, name: &str) -> i64 {
        if let Some((number, _)) = self.reps.iter().find(|(_, n)| n.eq_ignore_ascii_case(name.trim())) {
            return *number;
        }
        let number = self.next_rep;
        self.next_rep += 1;
        self.reps.insert(number, name.trim().to_string());
        number
    }

    pub(crate) fn account_json(&self, number: i64) -> Option<Value> {
        self.accounts.get(&number).map(|name| json!({"AccountNumber": number, "AccountName": name, "AccountStatus": "Active"}))
    }

    pub(crate) fn contacts_of(&self, account: i64) -> Value {
        Value::Array(
            self.contacts
                .iter()
                .filter(|(_, c)| c.account == account)
                .map(|(n, c)| json!({"ContactNumber": n, "FirstName": c.first_name, "LastName": c.last_name, "EmailAddress": c.email}))
                .collect(),
        )
    }
}

/// Whether `value` names a status (case-insensitive) and whether it closes an order.
pub(crate) fn status(value: &str) -> Option<(&'static str, bool)> {
    STATUSES.iter().find(|(name, _, _)| name.eq_ignore_ascii_case(value.trim())).map(|(name, closes, _)| (*name, *closes))
}

/// The master-table value equal to `value` (case-insensitive), in its stored spelling.
pub(crate) fn known(table: &[&'static str], value: &str) -> Option<&'static str> {
    table.iter().copied().find(|v| v.eq_ignore_ascii_case(value.trim()))
}

pub(crate) fn priority_names() -> Vec<&'static str> {
    PRIORITIES.iter().map(|(p, _)| *p).collect()
}

pub(crate) fn default_priority() -> &'static str {
    PRIORITIES.iter().find(|(_, d)| *d).map_or("Medium", |(p, _)| p)
}

pub(crate) fn default_status() -> &'static str {
    STATUSES.iter().find(|(_, closes, default)| *default && !closes).map_or("Open", |(s, _, _)| s)
}

pub(crate) fn first_closed_status() -> &'static str {
    STATUSES.iter().find(|(_, closes, _)| *closes).map_or("Completed", |(s, _, _)| s)
}

/// A master table by its path below `/api/mastertables/` (lower-case segments), as served.
pub(crate) fn master_table(segments: &[&str], tables: &Tables) -> Option<Value> {
    Some(match segments {
        ["priorities"] => PRIORITIES.iter().map(|(p, d)| json!({"Description": p, "IsDefault": d})).collect(),
        ["serviceorders", "statuses"] => {
            STATUSES.iter().map(|(s, closes, d)| json!({"Description": s, "IsClosedStatus": closes, "IsDefault": d})).collect()
        }
        ["serviceorders", "types"] => TYPES.iter().map(|t| json!({"Description": t})).collect(),
        ["dispatchboards"] => BOARDS.iter().map(|(n, d)| json!({"DispatchBoardId": n, "Description": d})).collect(),
        ["serviceorder", "notetopics"] => NOTE_TOPICS.iter().map(|t| json!({"Description": t})).collect(),
        ["reps"] => tables.reps.iter().map(|(n, name)| json!({"RepNumber": n, "RepName": name})).collect(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_master_tables_say_which_statuses_close_and_what_the_defaults_are() {
        assert_eq!(status("completed"), Some(("Completed", true)));
        assert_eq!(status("Open"), Some(("Open", false)));
        assert_eq!(status("Nope"), None);
        assert_eq!((default_status(), default_priority(), first_closed_status()), ("Open", "Medium", "Completed"));
        let tables = Tables::new();
        let statuses = master_table(&["serviceorders", "statuses"], &tables).unwrap_or_default();
        assert_eq!(statuses[3]["IsClosedStatus"], true);
        let boards = master_table(&["dispatchboards"], &tables).unwrap_or_default();
        assert_eq!(boards[1]["DispatchBoardId"], SECURITY_BOARD);
        assert!(master_table(&["nothing"], &tables).is_none());
    }

    #[test]
    fn reps_are_found_by_name_or_added_once() {
        let mut tables = Tables::new();
        assert_eq!(tables.rep_named("alex tech"), TECHNICIAN_REP);
        let jane = tables.rep_named("Jane Smith");
        assert_eq!(tables.rep_named("JANE SMITH"), jane);
        assert_eq!(tables.contacts_of(CONTOSO_ACCOUNT)[0]["EmailAddress"], "it.admin@contoso.example");
    }
}
