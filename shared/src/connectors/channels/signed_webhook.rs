//! Signed webhooks per the Standard Webhooks specification (v1): the versioned event
//! ([`crate::channel::AlertEvent`], JSON Schema in `infra/schemas/webhook-event.v1.schema.json`) posted to
//! the MSP's endpoint with `webhook-id` (the change's id, the same on every retry: the
//! receiver's idempotency key), `webhook-timestamp` (Unix seconds of this attempt) and
//! `webhook-signature` (`v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` under the
//! base64-decoded secret after `whsec_`). While a replaced secret is in its grace period both
//! sign, space-separated, so the receiver can switch without losing events.

use super::{post_json, test_outcome};
use crate::channel::{AlertEvent, AlertMessage, fit};
use crate::clock::Clock;
use crate::error::SinkError;
use crate::ports::{MessageChannel, PostError, RequestGate};
use crate::secret::SecretString;
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Longest text field of an event (keeps payloads well under 20 KB).
pub const EVENT_TEXT_CHARS: usize = 1_000;

/// The `webhook-signature` header value for `body` sent as `id` at `timestamp` under each of
/// `secrets` (`whsec_…`); a secret that is not valid base64 signs nothing.
#[must_use]
pub fn signature_header(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    secrets
        .iter()
        .filter_map(|secret| BASE64.decode(secret.strip_prefix("whsec_").unwrap_or(secret)).ok())
        .map(|key| format!("v1,{}", BASE64.encode(crate::connectors::hmac_sha256(&key, &signed))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An MSP's signed-webhook endpoint.
pub struct SignedWebhookChannel {
    http: reqwest::Client,
    url: String,
    secret: SecretString,
    previous: Option<(SecretString, DateTime<Utc>)>,
    gate: RequestGate,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SignedWebhookChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedWebhookChannel").field("url", &self.url).field("secret", &"<redacted>").finish_non_exhaustive()
    }
}

impl SignedWebhookChannel {
    /// An endpoint at `url` signed with `secret`, and with `previous` until its time is up.
    #[must_use]
    pub fn new(
        http: reqwest::Client,
        url: String,
        secret: SecretString,
        previous: Option<(SecretString, DateTime<Utc>)>,
        gate: RequestGate,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { http, url, secret, previous, gate, clock }
    }

    async fn send(&self, id: &str, body: Vec<u8>) -> Result<(), PostError> {
        let now = self.clock.now();
        let mut secrets = vec![self.secret.expose()];
        if let Some((previous, until)) = &self.previous
            && *until > now
        {
            secrets.push(previous.expose());
        }
        let timestamp = now.timestamp();
        let signature = signature_header(&secrets, id, timestamp, &body);
        let headers = [("webhook-id", id.to_owned()), ("webhook-timestamp", timestamp.to_string()), ("webhook-signature", signature)];
        post_json(&self.http, &self.gate, &self.url, &headers, body, "webhook endpoint").await.map(drop)
    }
}

/// The event as sent: every free text cut to [`EVENT_TEXT_CHARS`].
#[must_use]
pub fn event_body(event: &AlertEvent) -> Vec<u8> {
    let mut event = event.clone();
    for text in [&mut event.data.title, &mut event.data.policy_name, &mut event.data.tenant_name] {
        *text = fit(text, EVENT_TEXT_CHARS);
    }
    serde_json::to_vec(&event).unwrap_or_default()
}

#[async_trait]
impl MessageChannel for SignedWebhookChannel {
    async fn post(&self, message: &AlertMessage) -> Result<(), PostError> {
        self.send(&message.id, event_body(&message.event)).await
    }

    fn deduplicates_by_id(&self) -> bool {
        true
    }

    async fn test(&self) -> Result<Vec<String>, SinkError> {
        let now = self.clock.now();
        let id = format!("vigil_test_{}", now.timestamp_millis());
        let body = serde_json::json!({
            "type": "vigil.test",
            "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "data": {"schema_version": crate::channel::EVENT_SCHEMA_VERSION, "message": "Vigil test event: this endpoint receives Vigil's alerts."}
        });
        Ok(test_outcome(self.send(&id, serde_json::to_vec(&body).unwrap_or_default()).await))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_specifications_test_vector() {
        let header = signature_header(
            &["whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"],
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1_649_367_553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        );
        assert_eq!(header, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn two_secrets_sign_twice_space_separated() {
        let header =
            signature_header(&["whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], "id", 1, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.starts_with("v1,")) && parts[0] != parts[1]);
    }
}
