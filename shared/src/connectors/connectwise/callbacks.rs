//! ConnectWise callbacks: registering Vigil's address for ticket changes, and verifying what
//! ConnectWise sends there.
//!
//! Registration is one `type: "ticket"`, `level: "owner"` entry (every ticket) pointing at the
//! webhook receiver, with `isSelfSuppressedFlag` so Vigil's own changes do not call back; an
//! entry for the same URL is reused. Verification follows what the public ConnectWise clients
//! agree on: the body's `Metadata.key_url` serves `{"signing_key": …}`, and `x-content-signature`
//! is `base64(HMAC-SHA256(key = SHA-256(signing_key), raw body))`. The key is fetched only from
//! the destination's own API host (scheme, host and port of `api_root`) with the destination's
//! keys, through the request gate, and cached per `key_url`; a body naming a key anywhere else
//! is refused unread. The callback names the ticket; nothing else in it is trusted.

use super::super::hmac_sha256;
use super::ConnectWiseClient;
use super::http::Missing;
use crate::error::SinkError;
use crate::ticket::TicketRef;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// ConnectWise's callback signature of `body` under `signing_key`.
#[must_use]
pub fn callback_signature(signing_key: &str, body: &[u8]) -> String {
    BASE64.encode(hmac_sha256(&Sha256::digest(signing_key.as_bytes()), body))
}

/// Scheme, host and port of a URL (`None` when it does not parse).
fn origin(url: &str) -> Option<(String, String, Option<u16>)> {
    let parsed = url::Url::parse(url).ok()?;
    Some((parsed.scheme().to_owned(), parsed.host_str()?.to_ascii_lowercase(), parsed.port_or_known_default()))
}

impl ConnectWiseClient {
    /// Registers `url` for every ticket change, once.
    pub(super) async fn register_ticket_callback(&self, url: &str) -> Result<bool, SinkError> {
        let escaped = url.replace('\\', "\\\\").replace('"', "\\\"");
        let condition = format!("url=\"{escaped}\"");
        let existing: Vec<Value> = self
            .get(
                "/system/callbacks",
                &[("conditions", condition.as_str()), ("fields", "id,url,inactiveFlag")],
                "find callback",
                Missing::Rejected,
            )
            .await?;
        if existing.iter().any(|entry| entry["inactiveFlag"] != true) {
            return Ok(true);
        }
        let entry = json!({
            "url": url, "objectId": 1, "type": "ticket", "level": "owner",
            "description": "Vigil: ticket changes", "inactiveFlag": false, "isSelfSuppressedFlag": true
        });
        self.call(Method::POST, "/system/callbacks", &[], Some(&entry), "register callback", Missing::Rejected).await?;
        Ok(true)
    }

    /// The ticket a genuine callback names; `None` for anything not signed by ConnectWise's
    /// key for this destination.
    pub(super) async fn verify_ticket_callback(&self, body: &[u8], headers: &[(String, String)]) -> Result<Option<TicketRef>, SinkError> {
        let Some(signature) = headers.iter().find(|(name, _)| name == "x-content-signature").map(|(_, v)| v.trim()) else {
            return Ok(None);
        };
        let Ok(message) = serde_json::from_slice::<Value>(body) else { return Ok(None) };
        let Some(key_url) = message["Metadata"]["key_url"].as_str() else { return Ok(None) };
        if origin(key_url).is_none() || origin(key_url) != origin(&self.api_root) {
            tracing::warn!(message = "A callback names a signing key outside the destination's API host; refused.");
            return Ok(None);
        }
        let key = match self.signing_key(key_url).await? {
            Some(key) => key,
            None => return Ok(None),
        };
        let expected = callback_signature(&key, body);
        if !bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
            return Ok(None);
        }
        let id = match &message["ID"] {
            Value::Number(n) => n.as_i64().map(|n| n.to_string()),
            Value::String(s) if s.chars().all(|c| c.is_ascii_digit()) && !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        Ok(id.map(TicketRef::new))
    }

    /// The signing key `key_url` serves (cached), `None` when ConnectWise knows no such key.
    async fn signing_key(&self, key_url: &str) -> Result<Option<String>, SinkError> {
        if let Some(key) = self.signing_keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(key_url) {
            return Ok(Some(key.clone()));
        }
        let url = self.policy.validate(key_url).map_err(|refused| SinkError::Rejected(format!("callback key: {refused}")))?;
        self.gate.admit().await?;
        let response = self
            .http
            .get(url)
            .headers(self.headers.clone())
            .send()
            .await
            .map_err(|e| SinkError::Unavailable(super::super::transport_failure("callback key", &e)))?;
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(SinkError::Unavailable(format!("callback key: HTTP {status}")));
        }
        if !status.is_success() {
            return Ok(None);
        }
        let answer: Value = response.json().await.map_err(|e| SinkError::Unavailable(format!("callback key: unreadable answer: {e}")))?;
        let Some(key) = answer["signing_key"].as_str().filter(|k| !k.is_empty()).map(str::to_owned) else { return Ok(None) };
        self.signing_keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key_url.to_owned(), key.clone());
        Ok(Some(key))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // Test case 2: key "Jefe".
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(hex::encode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        // Test case 6: a key longer than the block.
        let mac = hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(hex::encode(mac), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert_eq!(origin("https://cw.example/v4_6_release/apis/3.0"), origin("https://CW.example:443/x/system/callbackkey"));
        assert_ne!(origin("https://cw.example/a"), origin("https://evil.example/a"));
        assert_ne!(origin("http://127.0.0.1:1000/a"), origin("http://127.0.0.1:1001/a"));
    }
}
