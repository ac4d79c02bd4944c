//! ConnectWise Manage (ConnectWise PSA) as a [`TicketSink`], and the provider that builds one
//! per MSP from its settings and API keys.
//!
//! Every request carries `Authorization: Basic base64("{company}+{public}:{private}")`, the
//! integration's `clientId` header and `Accept: application/vnd.connectwise.com+json;
//! version=2025.1`. A ticket carries `externalXRef = vigil:<alert id>`, so the alert's ticket
//! can be found again after a crash; a note carries its marker in its text.
//!
//! Errors are classified once, here: `429` is [`SinkError::Throttled`] (with `Retry-After`),
//! timeouts, connection failures and 5xx are [`SinkError::Unavailable`], `401`/`403` are
//! [`SinkError::Unauthorized`], anything else is [`SinkError::Rejected`] with ConnectWise's
//! `code`, `message` and per-field `errors`. The keys never appear in an error or a log line.
//!
//! The API root is an MSP-supplied address: the provider refuses to build a client for one the
//! [`DestinationPolicy`] refuses, the client checks every request URL again, and the dispatcher
//! hands both the [`super::destination_url::destination_http_client`] (public addresses only,
//! no redirect to another host).
//! Wire format: `shared/reference/psa-apis.md` §1.

use super::destination_url::DestinationPolicy;
use super::{redact, retry_after, transport_failure, truncate_chars};
use crate::alert::{Alert, Severity};
use crate::error::{SecretError, SinkError};
use crate::ids::MspId;
use crate::ports::{ConfigStore, SecretName, SecretStore, SinkSetupError, TicketSink, TicketSinkProvider};
use crate::tenant::{ConnectWiseCredentials, ConnectWiseSettings};
use crate::ticket::{Destination, TicketNote, TicketRef, external_reference};
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The ConnectWise model version Vigil is written against.
pub const ACCEPT_HEADER: &str = "application/vnd.connectwise.com+json; version=2025.1";
/// ConnectWise's limit on `summary`.
pub const SUMMARY_MAX: usize = 100;
/// ConnectWise's limit on `externalXRef`.
pub const EXTERNAL_XREF_MAX: usize = 100;
/// How long a provider reuses a built client before reloading settings and keys.
pub const CLIENT_CACHE_TTL: Duration = Duration::from_secs(300);
/// ConnectWise's largest page.
const PAGE_SIZE: usize = 1000;
/// Note pages read before giving up looking for a marker.
const MAX_NOTE_PAGES: usize = 50;
/// Longest remote message kept in an error.
const MAX_MESSAGE_CHARS: usize = 500;

/// The request body that creates the ticket for `alert` under the ConnectWise company
/// `company_id`: only fields of ConnectWise's `Ticket` schema, within their length limits.
#[must_use]
pub fn ticket_body(alert: &Alert, settings: &ConnectWiseSettings, company_id: i64) -> Value {
    let mut body = json!({
        "summary": summary(alert),
        "recordType": "ServiceTicket",
        "company": { "id": company_id },
        "severity": ticket_severity(alert.severity),
        "impact": "Medium",
        "externalXRef": truncate_utf16(&external_reference(&alert.id), EXTERNAL_XREF_MAX),
        "initialDescription": description(alert),
        "processNotifications": false,
    });
    if let Some(board) = settings.board_id {
        body["board"] = json!({ "id": board });
    }
    let priorities = &settings.priorities;
    let priority = match alert.severity {
        Severity::High => priorities.high,
        Severity::Medium => priorities.medium,
        Severity::Low => priorities.low,
        Severity::Informational => priorities.informational,
    };
    if let Some(priority) = priority {
        body["priority"] = json!({ "id": priority });
    }
    body
}

/// ConnectWise knows Low, Medium and High; an informational alert is filed as Low.
fn ticket_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::High => "High",
        Severity::Medium => "Medium",
        Severity::Low | Severity::Informational => "Low",
    }
}

/// `[Vigil] {policy}: {title} ({tenant})`, without the tenant when that does not fit, cut to
/// [`SUMMARY_MAX`] with `…` when even that is too long. One line.
fn summary(alert: &Alert) -> String {
    let one_line = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let base = format!("[Vigil] {}: {}", one_line(&alert.policy_name), one_line(&alert.title));
    let with_tenant = format!("{base} ({})", one_line(&alert.tenant_name));
    if utf16_len(&with_tenant) <= SUMMARY_MAX && !alert.tenant_name.trim().is_empty() {
        with_tenant
    } else {
        truncate_utf16(&base, SUMMARY_MAX)
    }
}

/// Length as ConnectWise (.NET) counts it: UTF-16 code units, never fewer than characters.
fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// `text` within `max` UTF-16 code units, cut on a character boundary with `…` when cut.
fn truncate_utf16(text: &str, max: usize) -> String {
    if utf16_len(text) <= max {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        if used + c.len_utf16() > max.saturating_sub(1) {
            break;
        }
        used += c.len_utf16();
        out.push(c);
    }
    out.push('…');
    out
}

/// The ticket's initial description: every fact of the alert, one per line.
fn description(alert: &Alert) -> String {
    let time = |at: chrono::DateTime<chrono::Utc>| at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let mut text = String::new();
    let _ = writeln!(text, "Vigil raised an alert for {}.", alert.tenant_name);
    let _ = writeln!(text);
    let _ = writeln!(text, "Title: {}", alert.title);
    let _ = writeln!(text, "Policy: {} ({})", alert.policy_name, alert.policy_id);
    let _ = writeln!(text, "Category: {}", alert.category.as_str());
    let _ = writeln!(text, "Severity: {}", alert.severity.as_str());
    let _ = writeln!(text, "Tenant: {} ({})", alert.tenant_name, alert.tenant_id);
    let _ = writeln!(text, "Hits: {}", alert.hit_count);
    let _ = writeln!(text, "First seen: {}", time(alert.first_seen));
    let _ = writeln!(text, "Last seen: {}", time(alert.last_seen));
    let _ = writeln!(text, "Window: {} to {}", time(alert.window_start), time(alert.window_end));
    if !alert.facts.is_empty() {
        let _ = writeln!(text);
        let _ = writeln!(text, "Details:");
        for fact in &alert.facts {
            let _ = writeln!(text, "{}: {}", fact.name, fact.value);
        }
    }
    if alert.detail.truncated {
        let _ = writeln!(text);
        let _ = writeln!(
            text,
            "Note: this alert was too large to keep whole; long values and later activities were cut (the hit count is complete)."
        );
    }
    let _ = writeln!(text);
    let _ = write!(text, "Alert id: {}", alert.id);
    text
}

/// The `conditions` that find the ticket carrying `reference` (quotes and backslashes escaped).
fn xref_condition(reference: &str) -> String {
    let escaped = reference.replace('\\', "\\\\").replace('"', "\\\"");
    format!("externalXRef=\"{escaped}\"")
}

/// A ConnectWise Manage client for one MSP.
pub struct ConnectWiseClient {
    http: reqwest::Client,
    api_root: String,
    settings: ConnectWiseSettings,
    /// Headers sent on every request; `None` when the keys or client id cannot be sent in a
    /// header (then every request fails as unauthorized, without sending anything).
    headers: Option<HeaderMap>,
    /// Kept only to scrub it from anything the server echoes back.
    private_key: crate::secret::SecretString,
    /// Checked on every request URL (strict unless the local stack opts into loopback).
    policy: DestinationPolicy,
}

impl std::fmt::Debug for ConnectWiseClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectWiseClient").field("api_root", &self.api_root).field("settings", &self.settings).finish_non_exhaustive()
    }
}

fn request_headers(credentials: &ConnectWiseCredentials) -> Option<HeaderMap> {
    let basic = BASE64.encode(format!("{}+{}:{}", credentials.company_id, credentials.public_key, credentials.private_key.expose()));
    let mut authorization = HeaderValue::from_str(&format!("Basic {basic}")).ok()?;
    authorization.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, authorization);
    headers.insert(HeaderName::from_static("clientid"), HeaderValue::from_str(credentials.client_id.trim()).ok()?);
    headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_HEADER));
    Some(headers)
}

#[derive(Deserialize)]
struct WithId {
    id: i64,
}

#[derive(Deserialize)]
struct NoteText {
    #[serde(default)]
    text: Option<String>,
}

impl ConnectWiseClient {
    /// A client using `settings.api_root` (e.g. `https://api-na.myconnectwise.net/v4_6_release/apis/3.0`),
    /// under the strict [`DestinationPolicy`]: a request to a refused address is never sent.
    #[must_use]
    pub fn new(http: reqwest::Client, settings: ConnectWiseSettings, credentials: ConnectWiseCredentials) -> Self {
        let api_root = settings.api_root.trim().trim_end_matches('/').to_owned();
        Self {
            http,
            api_root,
            headers: request_headers(&credentials),
            private_key: credentials.private_key,
            settings,
            policy: DestinationPolicy::STRICT,
        }
    }

    /// The same client under `policy` (the local stack's loopback opt-in).
    #[must_use]
    pub fn with_destination_policy(mut self, policy: DestinationPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sends one request; a success is returned as its body text.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        operation: &str,
    ) -> Result<String, SinkError> {
        let Some(headers) = &self.headers else {
            return Err(SinkError::Unauthorized("the ConnectWise client id or API keys contain characters that cannot be sent".into()));
        };
        let url = self
            .policy
            .validate(&format!("{}{path}", self.api_root))
            .map_err(|refused| SinkError::Rejected(format!("{operation}: the ConnectWise api_root is refused: {refused}")))?;
        let mut request = self.http.request(method, url).headers(headers.clone());
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            // `json` also sets `Content-Type: application/json`.
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| SinkError::Unavailable(transport_failure(operation, &e)))?;
        let status = response.status();
        let retry = retry_after(response.headers());
        let text = response.text().await.map_err(|e| SinkError::Unavailable(transport_failure(operation, &e)))?;
        if status.is_success() {
            return Ok(text);
        }
        let error = classify_error(status, retry, &redact(&text, self.private_key.expose()), operation);
        tracing::warn!(operation, status = status.as_u16(), error = %error, "ConnectWise request failed");
        Err(error)
    }
}

#[async_trait]
impl TicketSink for ConnectWiseClient {
    async fn find_ticket(&self, alert: &Alert) -> Result<Option<TicketRef>, SinkError> {
        let conditions = xref_condition(&external_reference(&alert.id));
        let text = self
            .call(
                Method::GET,
                "/service/tickets",
                &[("conditions", conditions.as_str()), ("fields", "id"), ("pageSize", "1")],
                None,
                "find ticket",
            )
            .await?;
        let found: Vec<WithId> =
            serde_json::from_str(&text).map_err(|e| SinkError::Unavailable(format!("find ticket: unexpected response body: {e}")))?;
        Ok(found.first().map(|ticket| TicketRef { id: ticket.id }))
    }

    async fn create_ticket(&self, alert: &Alert, company_id: i64) -> Result<TicketRef, SinkError> {
        let body = ticket_body(alert, &self.settings, company_id);
        let text = self.call(Method::POST, "/service/tickets", &[], Some(&body), "create ticket").await?;
        // The ticket exists but its id is unreadable: transient, so the retry finds it by reference.
        let created: WithId = serde_json::from_str(&text)
            .map_err(|e| SinkError::Unavailable(format!("create ticket: the response has no ticket id: {e}")))?;
        tracing::info!(alert_id = %alert.id, ticket_id = created.id, "created ConnectWise ticket");
        Ok(TicketRef { id: created.id })
    }

    async fn add_note(&self, ticket: &TicketRef, note: &TicketNote) -> Result<(), SinkError> {
        let body = json!({
            "text": note.text,
            "internalAnalysisFlag": true,
            "detailDescriptionFlag": false,
            "processNotifications": false,
        });
        self.call(Method::POST, &format!("/service/tickets/{}/notes", ticket.id), &[], Some(&body), "add note").await?;
        Ok(())
    }

    async fn has_note(&self, ticket: &TicketRef, marker: &str) -> Result<bool, SinkError> {
        // Listed and searched here: a `contains` condition would become a SQL LIKE, where the
        // marker's brackets are wildcards.
        let path = format!("/service/tickets/{}/notes", ticket.id);
        let page_size = PAGE_SIZE.to_string();
        for page in 1..=MAX_NOTE_PAGES {
            let page_text = page.to_string();
            let text = self
                .call(
                    Method::GET,
                    &path,
                    &[("fields", "id,text"), ("pageSize", page_size.as_str()), ("page", page_text.as_str())],
                    None,
                    "list notes",
                )
                .await?;
            let notes: Vec<NoteText> =
                serde_json::from_str(&text).map_err(|e| SinkError::Unavailable(format!("list notes: unexpected response body: {e}")))?;
            if notes.iter().any(|note| note.text.as_deref().is_some_and(|text| text.contains(marker))) {
                return Ok(true);
            }
            if notes.len() < PAGE_SIZE {
                return Ok(false);
            }
        }
        Err(SinkError::Rejected(format!("list notes: ticket {} has more than {} notes", ticket.id, PAGE_SIZE * MAX_NOTE_PAGES)))
    }
}

#[derive(Deserialize, Default)]
struct CwError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    errors: Vec<CwFieldError>,
}

#[derive(Deserialize)]
struct CwFieldError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    field: Option<String>,
}

/// Classifies a failed ConnectWise response. The description names the operation, the status,
/// ConnectWise's `code` and `message`, and each per-field error.
fn classify_error(status: StatusCode, retry_after: Option<Duration>, body: &str, operation: &str) -> SinkError {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return SinkError::Throttled { retry_after };
    }
    let parsed: CwError = serde_json::from_str(body).unwrap_or_default();
    let mut description = format!("{operation}: HTTP {}", status.as_u16());
    if let Some(code) = parsed.code.as_deref().filter(|c| !c.is_empty()) {
        let _ = write!(description, " {code}");
    }
    match parsed.message.as_deref().filter(|m| !m.is_empty()) {
        Some(message) => {
            let _ = write!(description, ": {message}");
        }
        None if parsed.code.is_none() && !body.trim().is_empty() => {
            let _ = write!(description, ": {}", truncate_chars(body.trim(), 200));
        }
        None => {}
    }
    for error in &parsed.errors {
        let field = error.field.as_deref().unwrap_or("");
        let code = error.code.as_deref().unwrap_or("");
        let message = error.message.as_deref().unwrap_or("");
        let _ = write!(description, "; {field}: {code} {message}");
    }
    let description = truncate_chars(description.trim_end(), MAX_MESSAGE_CHARS);
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        SinkError::Unavailable(description)
    } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        SinkError::Unauthorized(description)
    } else {
        SinkError::Rejected(description)
    }
}

/// Builds each MSP's [`ConnectWiseClient`] from its stored settings and API keys, and reuses it
/// for [`CLIENT_CACHE_TTL`] (settings and keys may change).
pub struct ConnectWiseSinkProvider {
    config: Arc<dyn ConfigStore>,
    secrets: Arc<dyn SecretStore>,
    http: reqwest::Client,
    policy: DestinationPolicy,
    ttl: Duration,
    clients: Mutex<HashMap<MspId, (Instant, Arc<ConnectWiseClient>)>>,
}

impl std::fmt::Debug for ConnectWiseSinkProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectWiseSinkProvider").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl ConnectWiseSinkProvider {
    /// A provider reading settings from `config` and keys from `secrets`, under the strict
    /// [`DestinationPolicy`]. `http` should be a
    /// [`super::destination_url::destination_http_client`] of the same policy.
    #[must_use]
    pub fn new(config: Arc<dyn ConfigStore>, secrets: Arc<dyn SecretStore>, http: reqwest::Client) -> Self {
        Self { config, secrets, http, policy: DestinationPolicy::STRICT, ttl: CLIENT_CACHE_TTL, clients: Mutex::new(HashMap::new()) }
    }

    /// Changes the policy the stored `api_root` must meet (the local stack's loopback opt-in).
    #[must_use]
    pub fn with_destination_policy(mut self, policy: DestinationPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Changes how long a built client is reused (zero: reload every time).
    #[must_use]
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    fn cached(&self, msp_id: &MspId) -> Option<Arc<ConnectWiseClient>> {
        let clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients.get(msp_id).filter(|(built, _)| built.elapsed() < self.ttl).map(|(_, client)| Arc::clone(client))
    }

    async fn build(&self, msp_id: &MspId) -> Result<ConnectWiseClient, SinkSetupError> {
        let settings = self.config.get_connectwise_settings(msp_id).await?.ok_or(SinkSetupError::NotConfigured("ConnectWise"))?;
        if let Err(refused) = self.policy.validate(&settings.api_root) {
            // Saved before the rules existed, or edited in the store: permanent until the MSP
            // saves a permitted address. No request is made.
            tracing::warn!(msp_id = %msp_id, reason = %refused, "the stored ConnectWise api_root is refused");
            return Err(SinkSetupError::NotConfigured("a permitted ConnectWise api_root"));
        }
        let name = SecretName::connectwise(msp_id);
        let secret = self.secrets.get_secret(&name).await?.ok_or(SinkSetupError::NotConfigured("ConnectWise"))?;
        let credentials: ConnectWiseCredentials =
            serde_json::from_str(secret.expose()).map_err(|_| SecretError::Malformed { name: name.as_str().to_owned() })?;
        Ok(ConnectWiseClient::new(self.http.clone(), settings, credentials).with_destination_policy(self.policy))
    }
}

#[async_trait]
impl TicketSinkProvider for ConnectWiseSinkProvider {
    async fn sink_for(&self, msp_id: &MspId, destination: Destination) -> Result<Arc<dyn TicketSink>, SinkSetupError> {
        match destination {
            Destination::ConnectWise => {
                if let Some(client) = self.cached(msp_id) {
                    return Ok(client);
                }
                let client = Arc::new(self.build(msp_id).await?);
                self.clients.lock().unwrap_or_else(PoisonError::into_inner).insert(msp_id.clone(), (Instant::now(), Arc::clone(&client)));
                Ok(client)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::alert::Fact;
    use crate::error::{Classified, ErrorClass};
    use crate::memory::{MemoryConfigStore, MemorySecretStore};
    use crate::secret::SecretString;
    use crate::tenant::PriorityMap;
    use chrono::{TimeZone, Utc};
    use vigil_simulators::openapi_validate::SchemaSet;

    const SCHEMA_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/schemas/connectwise-manage-ticketing-schemas.json");

    fn alert() -> Alert {
        let mut alert = crate::contract::sample_alert(Utc.with_ymd_and_hms(2026, 1, 5, 9, 41, 27).unwrap());
        alert.severity = Severity::High;
        alert.hit_count = 3;
        alert
    }

    fn settings() -> ConnectWiseSettings {
        ConnectWiseSettings {
            api_root: "https://cw.example/v4_6_release/apis/3.0/".into(),
            board_id: Some(7),
            priorities: PriorityMap { high: Some(8), medium: Some(9), low: None, informational: Some(11) },
        }
    }

    fn schemas() -> SchemaSet {
        SchemaSet::from_openapi_json(&std::fs::read_to_string(SCHEMA_FILE).unwrap()).unwrap()
    }

    #[test]
    fn the_ticket_body_passes_connectwise_schema_validation() {
        let schemas = schemas();
        let body = ticket_body(&alert(), &settings(), 250);
        assert_eq!(schemas.validate("Ticket", &body), vec![], "{body:#}");
        let mut long = alert();
        long.title = "é🦀".repeat(200);
        long.facts = (0..50).map(|i| Fact::new(format!("Fact{i}"), "x".repeat(200))).collect();
        let body = ticket_body(&long, &ConnectWiseSettings { board_id: None, priorities: PriorityMap::default(), ..settings() }, 250);
        assert_eq!(schemas.validate("Ticket", &body), vec![], "{body:#}");
        assert!(body.get("board").is_none() && body.get("priority").is_none());
    }

    #[test]
    fn the_ticket_body_carries_the_alert() {
        let alert = alert();
        let body = ticket_body(&alert, &settings(), 250);
        let full = "[Vigil] Creation of forwarding/redirect rule: Mail forwarding to x@evil.example set up by alice@contoso.com";
        assert_eq!(body["summary"], format!("{}…", &full[..99]), "107 characters: cut, and no room for the tenant");
        assert_eq!(body["company"], json!({"id": 250}));
        assert_eq!(body["board"], json!({"id": 7}));
        assert_eq!(body["priority"], json!({"id": 8}));
        assert_eq!(body["severity"], "High");
        assert_eq!(body["impact"], "Medium");
        assert_eq!(body["recordType"], "ServiceTicket");
        assert_eq!(body["processNotifications"], false);
        assert_eq!(body["externalXRef"], format!("vigil:{}", alert.id));
        let description = body["initialDescription"].as_str().unwrap();
        for expected in [
            "Policy: Creation of forwarding/redirect rule (builtin.forwarding-rule)",
            "Category: Threat management",
            "Severity: High",
            "Tenant: Contoso (5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11)",
            "Hits: 3",
            "First seen: 2026-01-05 09:41:27 UTC",
            "Last seen: 2026-01-05 09:41:27 UTC",
            "Window: 2026-01-05 09:30:00 UTC to 2026-01-05 09:45:00 UTC",
            "User: alice@contoso.com",
            "ForwardTo: x@evil.example",
            &format!("Alert id: {}", alert.id),
            "Title: Mail forwarding to x@evil.example set up by alice@contoso.com",
        ] {
            assert!(description.contains(expected), "missing {expected:?} in\n{description}");
        }
        assert!(!description.contains("too large"));
    }

    #[test]
    fn a_truncated_alert_says_so_on_its_ticket() {
        let mut alert = alert();
        alert.detail.truncated = true;
        let body = ticket_body(&alert, &settings(), 250);
        let description = body["initialDescription"].as_str().unwrap();
        assert!(description.contains("too large to keep whole") && description.contains("the hit count is complete"), "{description}");
        assert_eq!(schemas().validate("Ticket", &body), vec![]);
    }

    #[test]
    fn severities_map_to_connectwise_severities_and_priorities() {
        let mut alert = alert();
        for (severity, expected, priority) in [
            (Severity::High, "High", Some(8)),
            (Severity::Medium, "Medium", Some(9)),
            (Severity::Low, "Low", None),
            (Severity::Informational, "Low", Some(11)),
        ] {
            alert.severity = severity;
            let body = ticket_body(&alert, &settings(), 1);
            assert_eq!(body["severity"], expected);
            assert_eq!(body.get("priority").map(|p| p["id"].clone()), priority.map(|p| json!(p)));
        }
    }

    #[test]
    fn summaries_fit_in_100_characters_and_drop_the_tenant_first() {
        let mut alert = alert();
        alert.title = "x".repeat(60);
        alert.policy_name = "Policy".into();
        let short = summary(&alert);
        assert!(short.ends_with("(Contoso)"), "{short}");
        alert.title = "x".repeat(80);
        let without_tenant = summary(&alert);
        assert_eq!(without_tenant, format!("[Vigil] Policy: {}", "x".repeat(80)));
        alert.title = "y\n".repeat(200);
        let cut = summary(&alert);
        assert_eq!(cut.chars().count(), SUMMARY_MAX);
        assert!(cut.ends_with('…') && !cut.contains('\n'), "{cut}");
        alert.title = "🦀".repeat(100);
        let wide = summary(&alert);
        assert!(utf16_len(&wide) <= SUMMARY_MAX, "{wide}");
        assert!(wide.ends_with('…'));
    }

    #[test]
    fn references_are_quoted_in_conditions() {
        assert_eq!(xref_condition("vigil:abc"), "externalXRef=\"vigil:abc\"");
        assert_eq!(xref_condition("a\"b"), "externalXRef=\"a\\\"b\"");
    }

    #[test]
    fn errors_are_classified_by_status_with_connectwise_details() {
        let invalid = r#"{"code":"InvalidObject","message":"ticket object is invalid","errors":[{"code":"NullValue","message":"summary is required","resource":"ticket","field":"summary"}]}"#;
        let error = classify_error(StatusCode::BAD_REQUEST, None, invalid, "create ticket");
        assert!(
            matches!(&error, SinkError::Rejected(m) if m.contains("InvalidObject") && m.contains("ticket object is invalid") && m.contains("summary: NullValue summary is required")),
            "{error}"
        );
        assert_eq!(
            classify_error(StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(1)), "", "x").retry_after(),
            Some(Duration::from_secs(1))
        );
        assert_eq!(classify_error(StatusCode::INTERNAL_SERVER_ERROR, None, "{}", "x").class(), ErrorClass::Transient);
        assert_eq!(classify_error(StatusCode::GATEWAY_TIMEOUT, None, "<html/>", "x").class(), ErrorClass::Transient);
        assert!(matches!(
            classify_error(StatusCode::UNAUTHORIZED, None, r#"{"code":"Unauthorized","message":"UserNotAuthenticated"}"#, "x"),
            SinkError::Unauthorized(_)
        ));
        assert!(matches!(classify_error(StatusCode::FORBIDDEN, None, "", "x"), SinkError::Unauthorized(_)));
        assert!(
            matches!(classify_error(StatusCode::NOT_FOUND, None, r#"{"code":"NotFound","message":"Ticket 5 was not found"}"#, "x"), SinkError::Rejected(m) if m.contains("Ticket 5 was not found"))
        );
    }

    #[test]
    fn headers_carry_the_keys_only_in_the_authorization_header() {
        let credentials = ConnectWiseCredentials {
            company_id: "acme".into(),
            public_key: "pub".into(),
            private_key: SecretString::new("priv-key-1"),
            client_id: "00000000-0000-4000-8000-00000000c1d0".into(),
        };
        let headers = request_headers(&credentials).unwrap();
        assert_eq!(headers[AUTHORIZATION], format!("Basic {}", BASE64.encode("acme+pub:priv-key-1")));
        assert!(headers[AUTHORIZATION].is_sensitive());
        assert_eq!(headers["clientId"], "00000000-0000-4000-8000-00000000c1d0");
        assert_eq!(headers[ACCEPT], ACCEPT_HEADER);
        let client = ConnectWiseClient::new(reqwest::Client::new(), settings(), credentials);
        assert_eq!(client.api_root, "https://cw.example/v4_6_release/apis/3.0");
        assert!(!format!("{client:?}").contains("priv-key-1"));
        let broken = ConnectWiseCredentials { client_id: "bad\nid".into(), ..client_credentials() };
        assert!(request_headers(&broken).is_none());
    }

    fn client_credentials() -> ConnectWiseCredentials {
        ConnectWiseCredentials {
            company_id: "acme".into(),
            public_key: "pub".into(),
            private_key: SecretString::new("priv-key-1"),
            client_id: "cid".into(),
        }
    }

    #[tokio::test]
    async fn the_provider_needs_settings_and_well_formed_keys_and_caches_clients() {
        let config = Arc::new(MemoryConfigStore::default());
        let secrets = Arc::new(MemorySecretStore::default());
        let provider = ConnectWiseSinkProvider::new(config.clone(), secrets.clone(), reqwest::Client::new());
        let msp = MspId::parse("acme").unwrap();
        assert!(matches!(provider.sink_for(&msp, Destination::ConnectWise).await, Err(SinkSetupError::NotConfigured("ConnectWise"))));
        config.put_connectwise_settings(&msp, &settings()).await.unwrap();
        assert!(matches!(provider.sink_for(&msp, Destination::ConnectWise).await, Err(SinkSetupError::NotConfigured(_))), "keys missing");
        secrets.put_secret(&SecretName::connectwise(&msp), &SecretString::new("{not json: priv-key-1")).await.unwrap();
        let malformed = provider.sink_for(&msp, Destination::ConnectWise).await.err().unwrap();
        assert!(matches!(&malformed, SinkSetupError::Secret(SecretError::Malformed { .. })));
        assert!(!malformed.to_string().contains("priv-key-1"));
        secrets
            .put_secret(&SecretName::connectwise(&msp), &SecretString::new(serde_json::to_string(&client_credentials()).unwrap()))
            .await
            .unwrap();
        let first = provider.sink_for(&msp, Destination::ConnectWise).await.unwrap();
        let second = provider.sink_for(&msp, Destination::ConnectWise).await.unwrap();
        assert!(Arc::ptr_eq(&first, &second), "the client is reused");
        let uncached = ConnectWiseSinkProvider::new(config, secrets, reqwest::Client::new()).with_cache_ttl(Duration::ZERO);
        let a = uncached.sink_for(&msp, Destination::ConnectWise).await.unwrap();
        let b = uncached.sink_for(&msp, Destination::ConnectWise).await.unwrap();
        assert!(!Arc::ptr_eq(&a, &b), "an expired client is rebuilt");
    }

    #[tokio::test]
    async fn the_provider_builds_no_client_for_a_stored_api_root_the_policy_refuses() {
        let config = Arc::new(MemoryConfigStore::default());
        let secrets = Arc::new(MemorySecretStore::default());
        let msp = MspId::parse("acme").unwrap();
        secrets
            .put_secret(&SecretName::connectwise(&msp), &SecretString::new(serde_json::to_string(&client_credentials()).unwrap()))
            .await
            .unwrap();
        let provider = ConnectWiseSinkProvider::new(config.clone(), secrets.clone(), reqwest::Client::new());
        for api_root in
            ["http://cw.example/v4_6_release/apis/3.0", "https://169.254.169.254/apis/3.0", "http://localhost@evil.example/apis/3.0"]
        {
            config.put_connectwise_settings(&msp, &ConnectWiseSettings { api_root: api_root.into(), ..settings() }).await.unwrap();
            let refused = provider.sink_for(&msp, Destination::ConnectWise).await.err().unwrap();
            assert!(matches!(refused, SinkSetupError::NotConfigured(_)), "{api_root}: {refused:?}");
            assert_eq!(refused.to_string(), "the MSP has not configured a permitted ConnectWise api_root");
        }
        let local = ConnectWiseSettings { api_root: "http://127.0.0.1:9/v4_6_release/apis/3.0".into(), ..settings() };
        config.put_connectwise_settings(&msp, &local).await.unwrap();
        assert!(provider.sink_for(&msp, Destination::ConnectWise).await.is_err(), "strict by default");
        let opted_in = ConnectWiseSinkProvider::new(config, secrets, reqwest::Client::new())
            .with_destination_policy(DestinationPolicy::LOOPBACK_ALLOWED);
        assert!(opted_in.sink_for(&msp, Destination::ConnectWise).await.is_ok(), "the local stack's opt-in");
    }

    #[tokio::test]
    async fn the_client_sends_nothing_to_a_refused_address() {
        let refused = ConnectWiseSettings { api_root: "http://10.0.0.5:22/v4_6_release/apis/3.0".into(), ..settings() };
        let client = ConnectWiseClient::new(reqwest::Client::new(), refused, client_credentials());
        let error = client.find_ticket(&alert()).await.unwrap_err();
        assert!(matches!(&error, SinkError::Rejected(m) if m.contains("api_root is refused")), "{error:?}");
        assert_eq!(error.class(), ErrorClass::Permanent);
        let loopback = ConnectWiseSettings { api_root: "http://127.0.0.1:1/v4_6_release/apis/3.0".into(), ..settings() };
        let client = ConnectWiseClient::new(reqwest::Client::new(), loopback, client_credentials())
            .with_destination_policy(DestinationPolicy::LOOPBACK_ALLOWED);
        assert!(matches!(client.find_ticket(&alert()).await, Err(SinkError::Unavailable(_))), "allowed, so tried (nothing listens)");
    }
}
