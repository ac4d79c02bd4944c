//! A Standard Webhooks receiver, written from the specification (independently of Vigil's
//! signer): `POST /hooks/{id}` must carry `webhook-id`, `webhook-timestamp` (Unix seconds
//! within five minutes of the simulator's clock) and `webhook-signature` (space-separated
//! `v1,<base64>` entries, one of which must be the HMAC-SHA256 of `{id}.{timestamp}.{body}`
//! under one of the endpoint's secrets, base64-decoded after `whsec_`, compared in constant
//! time). A failed check answers `401`; a removed endpoint `410 Gone`. A `webhook-id` seen
//! before is acknowledged and not shown again (the receiver's idempotency). The body must be
//! JSON with `type`, `timestamp` and `data`.

use super::{ChannelRequest, Received, Shared, Verdict, text};
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// How far `webhook-timestamp` may be from the receiver's clock.
pub const TOLERANCE_SECONDS: i64 = 300;

pub(super) fn create_endpoint(shared: &Shared, secrets: Vec<String>) -> String {
    let path = format!("/hooks/{}", shared.next_id());
    shared.add_endpoint(path.clone(), secrets);
    shared.url(&path)
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new().chain_update(block.map(|b| b ^ 0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(block.map(|b| b ^ 0x5c)).chain_update(inner).finalize().into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `signature_header` holds a valid `v1` signature of `body` sent as `id` at
/// `timestamp` under one of `secrets`.
#[must_use]
pub fn verify(secrets: &[String], id: &str, timestamp: &str, body: &[u8], signature_header: &str) -> bool {
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let expected: Vec<[u8; 32]> = secrets
        .iter()
        .filter_map(|secret| BASE64.decode(secret.strip_prefix("whsec_").unwrap_or(secret)).ok())
        .map(|key| hmac_sha256(&key, &signed))
        .collect();
    signature_header
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| BASE64.decode(b64).ok())
        .any(|given| expected.iter().any(|mac| constant_time_eq(mac, &given)))
}

pub(super) fn handle(shared: &Shared, request: &ChannelRequest) -> Verdict {
    let path = request.uri.path().to_owned();
    let secrets = {
        let endpoints = shared.endpoints();
        match endpoints.get(&path) {
            None => return Verdict::Refuse(text(StatusCode::NOT_FOUND, "no such endpoint")),
            Some(endpoint) if endpoint.revoked => return Verdict::Refuse(text(StatusCode::GONE, "endpoint removed")),
            Some(endpoint) => endpoint.secrets.clone(),
        }
    };
    let header = |name: &str| request.headers.get(name).cloned().unwrap_or_default();
    let (id, timestamp, signature) = (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"));
    if id.is_empty() || timestamp.is_empty() || signature.is_empty() {
        return Verdict::Refuse(text(StatusCode::UNAUTHORIZED, "missing webhook-id, webhook-timestamp or webhook-signature"));
    }
    let Ok(sent_at) = timestamp.parse::<i64>() else {
        return Verdict::Refuse(text(StatusCode::UNAUTHORIZED, "webhook-timestamp is not a number"));
    };
    if (shared.kit.clock.now().timestamp() - sent_at).abs() > TOLERANCE_SECONDS {
        return Verdict::Refuse(text(StatusCode::UNAUTHORIZED, "webhook-timestamp is too far from now"));
    }
    if !verify(&secrets, &id, &timestamp, &request.body, &signature) {
        return Verdict::Refuse(text(StatusCode::UNAUTHORIZED, "no valid signature"));
    }
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        return Verdict::Refuse(text(StatusCode::BAD_REQUEST, "the body is not JSON"));
    };
    if ["type", "timestamp", "data"].iter().any(|member| body.get(member).is_none()) {
        return Verdict::Refuse(text(StatusCode::BAD_REQUEST, "the body needs type, timestamp and data"));
    }
    let duplicate = shared.endpoints().get(&path).is_some_and(|e| e.shown.iter().any(|r| r.headers.get("webhook-id") == Some(&id)));
    let received = Received { headers: request.headers.clone(), body, raw: request.body.to_vec() };
    Verdict::Take { endpoint: path, received, duplicate, response: text(StatusCode::OK, "") }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_specifications_test_vector_verifies_and_a_changed_body_does_not() {
        let secrets = vec!["whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".to_owned()];
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        let signature = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
        assert!(verify(&secrets, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", "1649367553", body, signature));
        assert!(verify(&secrets, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", "1649367553", body, &format!("v1,bm90LWl0 {signature}")));
        assert!(!verify(&secrets, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", "1649367553", b"{}", signature));
        assert!(!verify(&secrets, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", "1649367554", body, signature));
    }
}
