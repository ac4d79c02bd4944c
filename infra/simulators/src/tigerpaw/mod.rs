//! An in-process simulator of the Tigerpaw REST API (service orders, API 18.2.1 as far as the
//! public record goes), for tests and the local stack, built on the shared [`kit`](crate::kit).
//! There is no public Tigerpaw schema: the shapes follow `shared/reference/psa-apis.md` §4 and
//! `licences-billing-outputs.md` §3, and every choice the reference does not confirm is marked
//! **(unconfirmed)** below, so the connector and this simulator can be checked against a
//! Tigerpaw sandbox in one place.
//!
//! It serves, on `127.0.0.1` and a random port (paths matched case-insensitively, like the
//! IIS-hosted original), below `/api`:
//!
//! * `POST /api/ServiceOrders` (`TsiWebCreateServiceOrderModel`) →
//!   `{"ServiceOrderSummary": {"ServiceOrderNumber": N, "ServiceOrder": {…}, …}, "Success": true,
//!   "Message": null}`;
//! * `GET /api/serviceorders/{n}` → the `TsiWebServiceOrderSummary` itself (unwrapped,
//!   **unconfirmed**), an unknown or deleted order `404 {"Message"}` (**unconfirmed**);
//! * `PUT /api/serviceorders/{n}` (`TsiWebUpdateServiceOrderModel`: `Status`,
//!   `DateTimeClosed: {"DateTime": …}`, `WorkPerformed`, …) → `{"ServiceOrderSummary", "Success",
//!   "Message"}`;
//! * `POST /api/serviceorders/{n}/notes` `{"Topic", "Note", "RepNumber"}` → `{"Note": {…},
//!   "Success", "Message"}`; `GET /api/serviceorders/{n}/notes` → a bare array of
//!   `TsiWebServiceOrderNote` (**unconfirmed** shape);
//! * `POST /api/serviceorders/search` `{"Criteria": [{"SearchType", "MatchType", "Criteria"}],
//!   "PageSize", "StartRow"}` with SearchType `ServiceOrderNumber`, `Reference`,
//!   `AccountNumber`, `Status`, `Type` and MatchType `StartsWith` (default), `EndsWith`,
//!   `Contains`, `Equal`, `GreaterThan[Equal]`, `LessThan[Equal]` (criteria combine with AND,
//!   **unconfirmed**) → `{"ServiceOrders": [summary…], "PageSize", "NextRow", "TotalCount",
//!   "Success", "Message"}`;
//! * `POST /api/accounts/search` (same request; SearchType `AccountName`, `AccountNumber`; no
//!   criteria: every account, **unconfirmed**) → `{"Accounts": [{"AccountNumber",
//!   "AccountName", "AccountStatus"}], "PageSize", "NextRow", "TotalCount", "Success",
//!   "Message"}`; `GET /api/accounts/{n}` → the account; `GET /api/contacts/account/{n}` → a bare
//!   array of `{"ContactNumber", "FirstName", "LastName", "EmailAddress"}` (path from the 18.2.1
//!   SDK, shape **unconfirmed**);
//! * master tables, each a bare array (**unconfirmed** member names, see [`tables`]):
//!   `GET /api/mastertables/priorities`, `/serviceorders/statuses`, `/serviceOrders/types`,
//!   `/dispatchboards` (`{"DispatchBoardId", "Description"}`, the SDK's model),
//!   `/serviceOrder/noteTopics`, `/reps`;
//! * agreements, read-only as in 18.2.1 (see [`agreements`]): `GET /api/agreements/{n}/details`,
//!   `GET /api/agreements/{n}/additionalcharges`; a write below `/api/agreements` is `405`.
//!
//! Every API request needs `Authorization: {scheme} base64("{public}:{private}")` in the ONE
//! form the simulator is set to accept ([`AuthForm`]: `TSI`, Tigerpaw's sample, or `Basic`, the
//! SDK's swagger; the reference conflicts, so both exist); the other form, a wrong key or none
//! answers `401 {"Message": "Authorization has been denied for this request."}`. `POST` and
//! `PUT` without `Content-Length` answer `411` (the reference's "must send Content-Length").
//! Bodies are PascalCase JSON; member names are matched exactly and an unknown member is refused
//! (`400 {"Message", "ModelState"}`), as is a member of the wrong type.
//!
//! Deliberate choices where the reference is silent (**unconfirmed**, verify in a sandbox):
//! * `AccountNumber` and `BriefDescription` are required on create; `BriefDescription` at most
//!   [`orders::BRIEF_DESCRIPTION_MAX`] characters, `Reference` at most
//!   [`orders::REFERENCE_MAX`], `WorkRequested`/`WorkPerformed`/a note's `Note` at most
//!   [`orders::TEXT_MAX`]; longer is `400`;
//! * business failures answer **HTTP 200 with `"Success": false`** and a `Message`: an account
//!   that does not exist, a `Priority`/`Status`/`ServiceOrderType`/`DispatchBoardNumber` not in
//!   its master table, a note's unknown `Topic` or `RepNumber`, an update or note of an order that
//!   does not exist, and an update or note of a **locked** order ("…is locked by {rep}…", a user
//!   has it open in the GUI, `licences-billing-outputs.md` §3) until it is unlocked;
//! * a new order without `Status` gets the first status that does not close an order ("Open"),
//!   without `Priority` the default priority ("Medium");
//! * setting a closing status stamps `DateTimeClosed` (the sent one, else now); a technician's
//!   completion ([`TigerpawSimHandle::complete_order`]) also makes the completing rep the
//!   order's assigned technician (`TechnicianAssigned`, `PrimaryTechnicianName`): the 18.2.1
//!   model has no closed-by field;
//! * paging: `StartRow` counts from 1, `PageSize` defaults to 50 and is capped at 100, `NextRow`
//!   is the next page's `StartRow` or `null` after the last page;
//! * injected throttling answers `429` with `Retry-After` (Tigerpaw publishes no rate limits).
//!
//! Control routes (no authentication): the kit's `POST /_sim/fail`, `POST /_sim/reset`,
//! `GET /_sim/requests`, and the technician's hands in [`control`].

mod agreements;
mod control;
mod orders;
mod search;
mod server;
pub mod tables;

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use serde::Serialize;
use serde_json::Value;

pub use crate::kit::FailureMode;
use crate::kit::{LoggedRequest, Operation, SimServer};

/// Which `Authorization` scheme the simulated server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthForm {
    /// `Authorization: TSI base64(public:private)`.
    #[default]
    Tsi,
    /// `Authorization: Basic base64(public:private)`.
    Basic,
}

impl AuthForm {
    /// The scheme word as sent (`TSI`, `Basic`).
    pub fn scheme(self) -> &'static str {
        match self {
            AuthForm::Tsi => "TSI",
            AuthForm::Basic => "Basic",
        }
    }

    /// Parses `tsi` / `basic` (any case).
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "tsi" => Some(AuthForm::Tsi),
            "basic" => Some(AuthForm::Basic),
            _ => None,
        }
    }
}

/// The account rep's REST API keys the simulated server accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct TigerpawKeys {
    /// The public key (a GUID-like text in Tigerpaw's sample).
    pub public_key: String,
    /// The private key (compared exactly).
    pub private_key: String,
}

impl TigerpawKeys {
    /// Fixed, obviously fake keys for tests and the local stack.
    pub fn sample() -> Self {
        TigerpawKeys { public_key: "6f1c2b7e-0d1a-4c55-9b0e-5a1e7c9d0001".to_string(), private_key: "U2ltUHJpdmF0ZUtleTAwMDE=".to_string() }
    }

    /// The `Authorization` header value in `form`.
    pub fn header(&self, form: AuthForm) -> String {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.public_key, self.private_key));
        format!("{} {token}", form.scheme())
    }
}

impl fmt::Debug for TigerpawKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TigerpawKeys").field("public_key", &self.public_key).field("private_key", &"<redacted>").finish()
    }
}

/// An operation failures can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TigerpawOperation {
    /// `POST /api/ServiceOrders`.
    CreateOrder,
    /// `GET /api/serviceorders/{n}`.
    GetOrder,
    /// `POST /api/serviceorders/search`.
    SearchOrders,
    /// `PUT /api/serviceorders/{n}`.
    UpdateOrder,
    /// `POST /api/serviceorders/{n}/notes`.
    AddNote,
    /// `GET /api/serviceorders/{n}/notes`.
    ListNotes,
    /// Accounts, contacts and master tables.
    Lookup,
    /// Agreements and their additional charges (and refused writes to them).
    Agreements,
    /// Every authenticated API request.
    Any,
}

impl Operation for TigerpawOperation {
    fn from_name(name: &str) -> Option<Self> {
        use TigerpawOperation as Op;
        [Op::CreateOrder, Op::GetOrder, Op::SearchOrders, Op::UpdateOrder, Op::AddNote, Op::ListNotes, Op::Lookup, Op::Agreements, Op::Any]
            .into_iter()
            .find(|op| op.name().eq_ignore_ascii_case(name))
    }

    fn name(self) -> &'static str {
        match self {
            TigerpawOperation::CreateOrder => "create_order",
            TigerpawOperation::GetOrder => "get_order",
            TigerpawOperation::SearchOrders => "search_orders",
            TigerpawOperation::UpdateOrder => "update_order",
            TigerpawOperation::AddNote => "add_note",
            TigerpawOperation::ListNotes => "list_notes",
            TigerpawOperation::Lookup => "lookup",
            TigerpawOperation::Agreements => "agreements",
            TigerpawOperation::Any => "any",
        }
    }

    fn is_any(self) -> bool {
        self == TigerpawOperation::Any
    }
}

/// A stored service order as the simulator sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimOrder {
    /// `ServiceOrderNumber`.
    pub number: i64,
    /// The `TsiWebServiceOrderSummary` `GET /api/serviceorders/{n}` answers.
    pub summary: Value,
    /// Its notes (`TsiWebServiceOrderNote`), oldest first.
    pub notes: Vec<Value>,
    /// The rep who has it open in the GUI, if locked.
    pub locked_by: Option<String>,
}

/// Entry point: `TigerpawSim::start(keys, form).await`.
pub struct TigerpawSim;

impl TigerpawSim {
    /// Binds `127.0.0.1:0` and serves the simulator, accepting `keys` in the `form` scheme only,
    /// until the last clone of the handle is dropped or [`TigerpawSimHandle::shutdown`].
    pub async fn start(keys: TigerpawKeys, form: AuthForm) -> std::io::Result<TigerpawSimHandle> {
        let shared = Arc::new(server::Shared::new(keys, form));
        let server = SimServer::start("tigerpaw", server::router(shared.clone())).await?;
        Ok(TigerpawSimHandle { shared, server })
    }
}

/// Handle on a running simulator; clones share it.
#[derive(Clone)]
pub struct TigerpawSimHandle {
    shared: Arc<server::Shared>,
    server: SimServer,
}

impl fmt::Debug for TigerpawSimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TigerpawSimHandle").field("base_url", &self.base_url()).finish_non_exhaustive()
    }
}

impl TigerpawSimHandle {
    /// `http://127.0.0.1:PORT` (the API is below `/api`).
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The keys the simulator accepts.
    pub fn keys(&self) -> TigerpawKeys {
        self.shared.keys.clone()
    }

    /// The authorization form accepted now.
    pub fn auth_form(&self) -> AuthForm {
        self.shared.lock().auth_form
    }

    /// Accepts `form` from now on (the other answers 401).
    pub fn set_auth_form(&self, form: AuthForm) {
        self.shared.lock().auth_form = form;
    }

    /// Every stored service order, by number.
    pub fn orders(&self) -> Vec<SimOrder> {
        self.shared.snapshot()
    }

    /// One stored service order.
    pub fn order(&self, number: i64) -> Option<SimOrder> {
        self.shared.snapshot().into_iter().find(|o| o.number == number)
    }

    /// Arms a failure for the next `times` requests of `op`.
    pub fn fail_next(&self, op: TigerpawOperation, mode: FailureMode, times: u32) {
        self.shared.kit.faults.arm(op, mode, times);
    }

    /// Every request received (control routes excluded), oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.kit.log.requests()
    }

    /// Number of requests received (control routes excluded).
    pub fn request_count(&self) -> u64 {
        self.shared.kit.log.request_count()
    }

    /// Adds an active account; returns its account number.
    pub fn add_account(&self, name: &str) -> i64 {
        self.shared.lock().tables.add_account(name)
    }

    /// Adds a contact of `account`; returns its contact number.
    pub fn add_contact(&self, account: i64, email: &str, first_name: &str, last_name: &str) -> i64 {
        self.shared.lock().tables.add_contact(account, email, first_name, last_name)
    }

    /// A technician (rep `rep`, added when unknown) completes the order: the first closing
    /// status, `DateTimeClosed` now, the rep as assigned technician.
    pub fn complete_order(&self, number: i64, rep: &str) -> Result<(), String> {
        self.shared.complete_order(number, rep)
    }

    /// Adds an active service agreement of `account` starting on `start`; its number.
    pub fn add_agreement(&self, account: i64, description: &str, start: chrono::NaiveDate) -> i64 {
        self.shared.lock().agreements.add(account, description, start)
    }

    /// A user sets the agreement's `Status` (`Cancelled`, `Expired`, …) and end date.
    pub fn set_agreement_status(&self, number: i64, status: &str, end: Option<chrono::NaiveDate>) -> bool {
        self.shared.lock().agreements.set_status(number, status, end)
    }

    /// A user (or the ASMX integration) sets the quantity of the agreement's additional charge
    /// for price book item `item`, adding it when absent; its `DetailId` (`None`: no agreement).
    pub fn set_additional_charge(&self, number: i64, item: &str, quantity: i64, added: chrono::NaiveDate) -> Option<i64> {
        self.shared.lock().agreements.set_charge(number, item, quantity, added)
    }

    /// How many writes below `/api/agreements` were attempted (all refused with `405`).
    pub fn agreement_write_attempts(&self) -> u64 {
        self.shared.lock().agreements.write_attempts()
    }

    /// A user deletes the order (and its notes).
    pub fn delete_order(&self, number: i64) -> Result<(), String> {
        self.shared.delete_order(number)
    }

    /// A user (rep `rep`) opens the order in the GUI: updates and notes fail until unlocked.
    pub fn lock_order(&self, number: i64, rep: &str) -> Result<(), String> {
        self.shared.lock_order(number, Some(rep))
    }

    /// The user leaves the order.
    pub fn unlock_order(&self, number: i64) -> Result<(), String> {
        self.shared.lock_order(number, None)
    }

    /// Forgets orders, notes, added accounts, contacts and reps, armed failures and the request
    /// log; numbers restart; the accepted auth form stays.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops the server and waits (up to 5 s) for it to finish.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
