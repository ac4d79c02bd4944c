//! The simulated tenant's companies, contacts and resources (technicians): what `companyID`,
//! `contactID` and `completedByResourceID` refer to, served read-only through
//! `Companies/query`, `Contacts/query` and `GET /Companies/{id}`, `GET /Contacts/{id}`.
//!
//! Defaults: company 0 (Autotask's own company, "Vigil Sim MSP"), 174 "Contoso Ltd" with
//! contact 30682834 (it.admin@contoso.example, Ida Admin); resources 29682885 "Vigil API" (the API
//! user) and 29682886 "Alex Tech". Added companies get ids from 175, contacts from 30682835,
//! resources from 29682887.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// The company Autotask itself uses for the MSP (id 0).
pub const OWN_COMPANY_ID: i64 = 0;
/// The default customer company.
pub const CONTOSO_COMPANY_ID: i64 = 174;
/// The default contact of Contoso.
pub const CONTOSO_CONTACT_ID: i64 = 30682834;
/// The resource the API user writes as.
pub const API_RESOURCE_ID: i64 = 29682885;
/// The default technician.
pub const TECHNICIAN_RESOURCE_ID: i64 = 29682886;

const CREATE_DATE: &str = "2024-01-15T09:00:00.000Z";

pub(crate) struct Directory {
    pub(crate) companies: BTreeMap<i64, Map<String, Value>>,
    pub(crate) contacts: BTreeMap<i64, Map<String, Value>>,
    pub(crate) resources: BTreeMap<i64, String>,
    next_company_id: i64,
    next_contact_id: i64,
    next_resource_id: i64,
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl Directory {
    pub(crate) fn new() -> Self {
        let mut d = Directory {
            companies: BTreeMap::new(),
            contacts: BTreeMap::new(),
            resources: BTreeMap::new(),
            next_company_id: CONTOSO_COMPANY_ID,
            next_contact_id: CONTOSO_CONTACT_ID,
            next_resource_id: API_RESOURCE_ID,
        };
        d.insert_company(OWN_COMPANY_ID, "Vigil Sim MSP", 8);
        d.add_company("Contoso Ltd");
        d.add_contact(CONTOSO_COMPANY_ID, "it.admin@contoso.example", "Ida", "Admin");
        d.add_resource("Vigil API");
        d.add_resource("Alex Tech");
        d
    }

    fn insert_company(&mut self, id: i64, name: &str, company_type: i64) {
        self.companies.insert(
            id,
            object(json!({
                "id": id,
                "companyName": name,
                "companyType": company_type,
                "isActive": true,
                "phone": "+1 555 0100",
                "ownerResourceID": API_RESOURCE_ID,
                "createDate": CREATE_DATE,
            })),
        );
    }

    pub(crate) fn add_company(&mut self, name: &str) -> i64 {
        let id = self.next_company_id;
        self.next_company_id += 1;
        self.insert_company(id, name, 1);
        id
    }

    pub(crate) fn add_contact(&mut self, company_id: i64, email: &str, first: &str, last: &str) -> i64 {
        let id = self.next_contact_id;
        self.next_contact_id += 1;
        self.contacts.insert(
            id,
            object(json!({
                "id": id,
                "companyID": company_id,
                "emailAddress": email,
                "firstName": first,
                "lastName": last,
                "isActive": 1,
                "createDate": CREATE_DATE,
            })),
        );
        id
    }

    pub(crate) fn add_resource(&mut self, name: &str) -> i64 {
        let id = self.next_resource_id;
        self.next_resource_id += 1;
        self.resources.insert(id, name.to_string());
        id
    }

    /// The resource called `name` (case-insensitively); a new one when there is none.
    pub(crate) fn resource_named(&mut self, name: &str) -> i64 {
        match self.resources.iter().find(|(_, n)| n.eq_ignore_ascii_case(name.trim())) {
            Some((id, _)) => *id,
            None => self.add_resource(name.trim()),
        }
    }

    pub(crate) fn company_exists(&self, id: i64) -> bool {
        self.companies.contains_key(&id)
    }

    /// The company a contact belongs to.
    pub(crate) fn contact_company(&self, contact_id: i64) -> Option<i64> {
        self.contacts.get(&contact_id).and_then(|c| c.get("companyID")).and_then(Value::as_i64)
    }
}
