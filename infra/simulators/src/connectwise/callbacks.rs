//! Callbacks (ConnectWise's webhooks): `POST|GET /system/callbacks`,
//! `GET|DELETE /system/callbacks/{id}`, the signed deliveries, and the signing-key endpoint.
//!
//! A callback entry is `{url, objectId, type, level, description, inactiveFlag, …}`; for
//! `type: "ticket"` the levels are `owner` (every ticket), `board` (`objectId` = board id) and
//! `company` (`objectId` = company id). When a ticket is added, updated (a `PATCH`, a technician
//! close or reopen) or deleted (a technician delete, or merged away), every active matching
//! entry gets one `POST` with a compact JSON body shaped like ConnectWise's
//! (`{"MessageId","FromUrl","CompanyId","MemberId","Action","Type","ID","ProductInstanceId",
//! "PartnerId","Entity","Metadata":{"key_url"},"CallbackObjectRecId"}`, `Entity` being the
//! ticket as a JSON *string*, `null` for `deleted`) and the header `x-content-signature`.
//! Deliveries are made one at a time, in order, by a background task; one attempt each, 5 s
//! timeout; [`super::ConnectWiseSimHandle::callback_deliveries`] records the outcomes.
//!
//! What public clients confirm (the open-source `connectwise-rest` TypeScript package, Nango's
//! ConnectWise PSA webhook handler and amp-labs' Go connector, which agree): the signature is
//! `base64(HMAC-SHA256(key = SHA-256(signing_key), message = raw body))`; the body's
//! `Metadata.key_url` is fetched with `GET` and answers `{"signing_key": "…"}`; the live
//! `key_url` looks like `https://{host}/{codebase}/system/callbackkey/index.rails?companyName=…&id={guid}`
//! (with the double slash reproduced here); a `deleted` message has `"Entity": null`; field
//! names and `CallbackObjectRecId` as above; a duplicate entry is refused with `ObjectExists`
//! on `objectId` and a bad one with `InvalidField` `Invalid URL` / `InvalidObject` on `level`.
//!
//! Chosen, unconfirmed: one signing key per callback entry (exposed by
//! [`super::ConnectWiseSimHandle::callback_signing_key`]); the key endpoint answers without
//! credentials (one client sends none, another sends its `clientId`); the ticket id is appended
//! to the entry's `url` as a raw string (amp-labs registers `…?recordId=` for that reason);
//! no retries; `isSelfSuppressedFlag: true` suppresses changes made through the API member's
//! own keys; the `CallbackEntry` schema here is hand-written from those clients (the saved
//! OpenAPI subset has no `/system/callbacks`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::http::{
    ApiError, FieldError, SimRequest, invalid_object_errors, json_response, not_found, now_rfc3339, parse_json_body, reference_error,
};
use super::lookups::ticket_board;
use super::references::resolve_company;
use super::{API_MEMBER, CODEBASE, Shared, SimState};

pub(super) const FIRST_CALLBACK_ID: i64 = 26551;
/// Record id of the API member (`memberId` of the entries it creates).
const API_MEMBER_REC_ID: i64 = 176;
const PRODUCT_INSTANCE_ID: &str = "5f0c1e2d3b4a596877a6b5c4";
const PARTNER_ID: &str = "5e9d8c7b6a5f4e3d2c1b0a99";
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// `CallbackEntry`, hand-written from public clients' requests and recorded responses.
pub(super) fn callback_entry_schema() -> Value {
    json!({
        "type": "object",
        "required": ["url", "objectId", "type", "level"],
        "properties": {
            "id": {"type": "integer", "format": "int32"},
            "description": {"type": "string", "description": " Max length: 100;"},
            "url": {"type": "string", "description": " Max length: 1000;"},
            "objectId": {"type": "integer", "format": "int32"},
            "type": {"type": "string", "description": " Max length: 50;"},
            "level": {"type": "string", "description": " Max length: 50;"},
            "memberId": {"type": "integer", "format": "int32", "nullable": true},
            "payloadVersion": {"type": "string", "nullable": true},
            "inactiveFlag": {"type": "boolean", "nullable": true},
            "isSoapCallbackFlag": {"type": "boolean", "nullable": true},
            "isSelfSuppressedFlag": {"type": "boolean", "nullable": true},
            "connectWiseID": {"type": "string", "nullable": true},
            "_info": {"type": "object", "additionalProperties": {"type": "string"}}
        }
    })
}

/// A registered callback and the key its deliveries are signed with.
pub(super) struct CallbackEntry {
    /// The entry as the API returns it.
    body: Map<String, Value>,
    /// The `id` query parameter of the entry's `key_url`.
    key_id: String,
    signing_key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CallbackRoute {
    List,
    Create,
    Get(i64),
    Delete(i64),
}

/// One attempted callback delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallbackDelivery {
    /// Id of the callback entry (`CallbackObjectRecId`).
    pub callback_id: i64,
    /// The URL posted to: the entry's `url` with the ticket id appended.
    pub url: String,
    /// The exact body sent (compact JSON).
    pub body: String,
    /// The `x-content-signature` header sent.
    pub signature: String,
    /// The receiver's status code, `None` if the request failed.
    pub status: Option<u16>,
    /// Why the request failed, if it did.
    pub error: Option<String>,
}

/// ConnectWise's callback signature: `base64(HMAC-SHA256(SHA-256(signing_key), body))`.
pub fn callback_signature(signing_key: &str, body: &[u8]) -> String {
    BASE64.encode(hmac_sha256(&Sha256::digest(signing_key.as_bytes()), body))
}

/// HMAC (RFC 2104) over SHA-256.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new().chain_update(&ipad).chain_update(message).finalize();
    Sha256::new().chain_update(&opad).chain_update(inner).finalize().into()
}

/// A random version-4 GUID.
pub(super) fn random_guid() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // Uniqueness within one simulator is all that matters; fall back to the clock.
        let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default().to_le_bytes();
        b[..8].copy_from_slice(&nanos);
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

struct Delivery {
    callback_id: i64,
    url: String,
    body: String,
    signature: String,
}

/// The queue of deliveries and the background task that sends them.
pub(super) struct Outbox {
    tx: mpsc::UnboundedSender<Delivery>,
    log: Arc<Mutex<Vec<CallbackDelivery>>>,
    pending: Arc<AtomicUsize>,
}

impl Outbox {
    /// Spawns the delivery task on the current runtime. It ends when the outbox is dropped.
    pub(super) fn start() -> Outbox {
        let (tx, mut rx) = mpsc::unbounded_channel::<Delivery>();
        let log: Arc<Mutex<Vec<CallbackDelivery>>> = Arc::default();
        let pending: Arc<AtomicUsize> = Arc::default();
        let (task_log, task_pending) = (log.clone(), pending.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(DELIVERY_TIMEOUT).build().unwrap_or_default();
            while let Some(d) = rx.recv().await {
                let sent = client
                    .post(&d.url)
                    .header(header::CONTENT_TYPE, "application/json")
                    .header("x-content-signature", &d.signature)
                    .body(d.body.clone())
                    .send()
                    .await;
                let (status, error) = match sent {
                    Ok(resp) => (Some(resp.status().as_u16()), None),
                    Err(e) => (None, Some(e.to_string())),
                };
                tracing::debug!(url = %d.url, ?status, "ConnectWise simulator callback delivered");
                let record =
                    CallbackDelivery { callback_id: d.callback_id, url: d.url, body: d.body, signature: d.signature, status, error };
                task_log.lock().unwrap_or_else(|e| e.into_inner()).push(record);
                task_pending.fetch_sub(1, Ordering::SeqCst);
            }
        });
        Outbox { tx, log, pending }
    }

    fn send(&self, delivery: Delivery) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        if self.tx.send(delivery).is_err() {
            self.pending.fetch_sub(1, Ordering::SeqCst);
        }
    }

    pub(super) fn log(&self) -> MutexGuard<'_, Vec<CallbackDelivery>> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn clear_log(&self) {
        self.log().clear();
    }

    pub(super) fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }
}

#[derive(Serialize)]
struct Message<'a> {
    #[serde(rename = "MessageId")]
    message_id: String,
    #[serde(rename = "FromUrl")]
    from_url: String,
    #[serde(rename = "CompanyId")]
    company_id: &'a str,
    #[serde(rename = "MemberId")]
    member_id: &'a str,
    #[serde(rename = "Action")]
    action: &'a str,
    #[serde(rename = "Type")]
    kind: &'a str,
    #[serde(rename = "ID")]
    id: i64,
    #[serde(rename = "ProductInstanceId")]
    product_instance_id: &'a str,
    #[serde(rename = "PartnerId")]
    partner_id: &'a str,
    #[serde(rename = "Entity")]
    entity: Option<String>,
    #[serde(rename = "Metadata")]
    metadata: Metadata,
    #[serde(rename = "CallbackObjectRecId")]
    callback_object_rec_id: i64,
}

#[derive(Serialize)]
struct Metadata {
    key_url: String,
}

impl Shared {
    fn key_url(&self, key_id: &str) -> String {
        format!("http://{}/{CODEBASE}/system/callbackkey/index.rails?companyName={}&id={key_id}", self.addr, self.creds.company_id)
    }

    /// Queues one delivery per active callback entry matching the ticket. `with_entity: false`
    /// sends `"Entity": null` (deletions).
    pub(super) fn emit_ticket_event(
        &self,
        state: &SimState,
        action: &str,
        id: i64,
        ticket: &Map<String, Value>,
        member: &str,
        with_entity: bool,
    ) {
        let board_id = ticket_board(ticket).map(|b| b.id);
        let company_id = resolve_company(state, ticket.get("company")).ok().flatten();
        let entity = with_entity.then(|| self.full_ticket(state, ticket).to_string());
        for entry in state.callbacks.values() {
            let b = &entry.body;
            let flag = |name: &str| b.get(name).and_then(Value::as_bool) == Some(true);
            let object_id = b.get("objectId").and_then(Value::as_i64);
            let level = b.get("level").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
            let matches = match level.as_str() {
                "owner" => true,
                "board" => board_id.is_some() && board_id == object_id,
                "company" => company_id.is_some() && company_id == object_id,
                _ => false,
            };
            let is_ticket = b.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("ticket"));
            if !matches || !is_ticket || flag("inactiveFlag") || (flag("isSelfSuppressedFlag") && member == API_MEMBER) {
                continue;
            }
            let callback_id = b.get("id").and_then(Value::as_i64).unwrap_or_default();
            let message = Message {
                message_id: random_guid(),
                from_url: self.addr.to_string(),
                company_id: &self.creds.company_id,
                member_id: member,
                action,
                kind: "ticket",
                id,
                product_instance_id: PRODUCT_INSTANCE_ID,
                partner_id: PARTNER_ID,
                entity: entity.clone(),
                metadata: Metadata { key_url: self.key_url(&entry.key_id) },
                callback_object_rec_id: callback_id,
            };
            let Ok(body) = serde_json::to_string(&message) else {
                continue;
            };
            let url = format!("{}{id}", b.get("url").and_then(Value::as_str).unwrap_or(""));
            let signature = callback_signature(&entry.signing_key, body.as_bytes());
            self.outbox.send(Delivery { callback_id, url, body, signature });
        }
    }

    /// `GET /{codebase}/system/callbackkey/index.rails?id=…` → `{"signing_key": "…"}`.
    pub(super) fn callback_key(&self, req: &SimRequest) -> Response {
        let id = req.param("id").unwrap_or_default();
        let state = self.lock();
        match state.callbacks.values().find(|e| e.key_id.eq_ignore_ascii_case(id.trim())) {
            Some(entry) => json_response(StatusCode::OK, &json!({"signing_key": entry.signing_key})),
            None => not_found(&format!("No callback key {id}")).into_response(),
        }
    }

    pub(super) fn callback_route(&self, state: &mut SimState, route: CallbackRoute, req: &SimRequest) -> Result<Response, ApiError> {
        let missing = |id: i64| not_found(&format!("Callback with id {id} was not found"));
        match route {
            CallbackRoute::List => {
                let items = state.callbacks.values().map(|e| Value::Object(e.body.clone())).collect();
                self.list(req, "CallbackEntry", items, false)
            }
            CallbackRoute::Get(id) => match state.callbacks.get(&id) {
                Some(e) => self.single(req, "CallbackEntry", Value::Object(e.body.clone())),
                None => Err(missing(id)),
            },
            CallbackRoute::Delete(id) => match state.callbacks.remove(&id) {
                Some(_) => Ok(StatusCode::NO_CONTENT.into_response()),
                None => Err(missing(id)),
            },
            CallbackRoute::Create => self.create_callback(state, req),
        }
    }

    fn create_callback(&self, state: &mut SimState, req: &SimRequest) -> Result<Response, ApiError> {
        let value = parse_json_body(req, "callbackEntry")?;
        let mut errors: Vec<FieldError> = self.schemas.validate("CallbackEntry", &value).iter().map(FieldError::from).collect();
        let Value::Object(input) = value else {
            return Err(invalid_object_errors("callbackEntry", &errors));
        };
        let text = |name: &str| input.get(name).and_then(Value::as_str).unwrap_or("").trim().to_string();
        let reported = |name: &str| errors.iter().any(|e| e.field == name);
        let (url, kind, level) = (text("url"), text("type"), text("level").to_ascii_lowercase());
        let url_ok = url::Url::parse(&url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        let mut more = Vec::new();
        if !url_ok && !reported("url") {
            more.push(FieldError { field: "url".into(), code: "InvalidField", message: "Invalid URL".into() });
        }
        if kind.eq_ignore_ascii_case("ticket") && !matches!(level.as_str(), "owner" | "board" | "company") && !reported("level") {
            more.push(reference_error("level", "Unrecognized level for type, see documentation for supported levels for each type"));
        }
        let object_id = input.get("objectId").and_then(Value::as_i64);
        let duplicate = state.callbacks.values().any(|e| {
            let b = &e.body;
            b.get("url").and_then(Value::as_str) == Some(url.as_str())
                && b.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case(&kind))
                && b.get("level").and_then(Value::as_str).is_some_and(|l| l.eq_ignore_ascii_case(&level))
                && b.get("objectId").and_then(Value::as_i64) == object_id
        });
        if duplicate {
            more.push(FieldError {
                field: "objectId".into(),
                code: "ObjectExists",
                message: "A matching callback entry already exists".into(),
            });
        }
        errors.extend(more);
        if !errors.is_empty() {
            return Err(invalid_object_errors("callbackEntry", &errors));
        }

        let id = state.next_callback_id;
        state.next_callback_id += 1;
        let flag = |name: &str| input.get(name).and_then(Value::as_bool).unwrap_or(false);
        let now = now_rfc3339();
        let body: Map<String, Value> = serde_json::from_value(json!({
            "id": id,
            "description": input.get("description").and_then(Value::as_str).unwrap_or(""),
            "url": url,
            "objectId": object_id.unwrap_or_default(),
            "type": kind,
            "level": level,
            "memberId": API_MEMBER_REC_ID,
            "payloadVersion": input.get("payloadVersion").and_then(Value::as_str).unwrap_or("3.0.0"),
            "inactiveFlag": flag("inactiveFlag"),
            "isSoapCallbackFlag": flag("isSoapCallbackFlag"),
            "isSelfSuppressedFlag": flag("isSelfSuppressedFlag"),
            "connectWiseID": random_guid(),
            "_info": {"lastUpdated": now, "updatedBy": API_MEMBER},
        }))
        .unwrap_or_default();
        let mut key_bytes = [0u8; 24];
        let _ = getrandom::fill(&mut key_bytes);
        let signing_key = format!("{}{}", BASE64.encode(key_bytes), random_guid().replace('-', ""));
        let entry = CallbackEntry { body: body.clone(), key_id: random_guid(), signing_key };
        state.callbacks.insert(id, entry);
        Ok(json_response(StatusCode::CREATED, &Value::Object(body)))
    }
}

impl super::ConnectWiseSimHandle {
    /// The registered callback entries, as `GET /system/callbacks` returns them.
    pub fn callbacks(&self) -> Vec<Value> {
        self.shared.lock().callbacks.values().map(|e| Value::Object(e.body.clone())).collect()
    }

    /// The signing key of a callback entry (what its `key_url` answers), `None` if unknown.
    pub fn callback_signing_key(&self, callback_id: i64) -> Option<String> {
        self.shared.lock().callbacks.get(&callback_id).map(|e| e.signing_key.clone())
    }

    /// Every delivery attempted so far, in order.
    pub fn callback_deliveries(&self) -> Vec<CallbackDelivery> {
        self.shared.outbox.log().clone()
    }

    /// Waits (up to 10 s) until every queued callback delivery has been attempted.
    pub async fn wait_for_callbacks(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.shared.outbox.pending() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(hex::encode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn hmac_hashes_keys_longer_than_a_block() {
        // RFC 4231 test case 6: a 131-byte key.
        let mac = hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(hex::encode(mac), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    }

    #[test]
    fn guids_are_version_4() {
        let g = random_guid();
        assert_eq!(g.len(), 36);
        assert_eq!(&g[14..15], "4");
        assert_ne!(g, random_guid());
    }
}
