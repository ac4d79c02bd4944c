//! The `state` of a consent link: what it says (the MSP, a single-use nonce, when it expires,
//! the tenant it is bound to) and its signature, HMAC-SHA256 over the payload's raw bytes with
//! the MSP's own state key. Microsoft hands the `state` back unchanged on its redirect, which
//! carries no token: the state is the only proof that the MSP asked for this consent, so it is
//! checked on the bytes received, compared in constant time, and refused when it names another
//! MSP or has expired. Single use is the store's part (a conditional write of the nonce).
//!
//! Wire form: `v1.{hex(payload)}.{hex(tag)}` — URL-safe without escaping, and the payload is
//! the exact JSON bytes the tag covers (nothing is re-serialised before checking).

use crate::ids::{MspId, TenantId};
use crate::mac::{hmac_sha256, tags_equal};
use crate::secret::SecretString;
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// Longest `state` accepted, in bytes (a real one is about 400).
pub const MAX_STATE_CHARS: usize = 2048;
const VERSION: &str = "v1";

/// What a consent link's `state` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentState {
    pub msp_id: MspId,
    /// 32 random hex characters; the link's id, and what single use is enforced on.
    pub nonce: String,
    /// Epoch seconds after which the state is refused.
    pub expires_at: i64,
    /// The tenant the link was made for (known from discovery); a consent from another tenant
    /// is refused. `None`: any tenant may consent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_tenant: Option<TenantId>,
}

impl ConsentState {
    /// A new state for `msp_id` with a fresh random nonce.
    ///
    /// # Errors
    /// When the operating system's random source fails.
    pub fn new(msp_id: &MspId, expires_at: DateTime<Utc>, expected_tenant: Option<TenantId>) -> Result<Self, getrandom::Error> {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce)?;
        Ok(Self { msp_id: msp_id.clone(), nonce: hex::encode(nonce), expires_at: expires_at.timestamp(), expected_tenant })
    }

    /// When the state expires.
    #[must_use]
    pub fn expiry(&self) -> DateTime<Utc> {
        Utc.timestamp_opt(self.expires_at, 0).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

/// Why a `state` was refused. Each names an attack or mistake a test proves is caught.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Not the `v1.{hex}.{hex}` shape, too long, or a payload that is not a state.
    #[error("the consent state is malformed")]
    Malformed,
    /// The tag does not match: forged or altered.
    #[error("the consent state's signature does not match")]
    Forged,
    /// Signed for another MSP than the one whose redirect received it.
    #[error("the consent state belongs to another MSP")]
    OtherMsp,
    /// Past its expiry.
    #[error("the consent link has expired; ask for a new one")]
    Expired,
}

/// Signs and checks states with one MSP's key.
pub struct StateSigner {
    key: SecretString,
}

impl std::fmt::Debug for StateSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateSigner([REDACTED])")
    }
}

impl StateSigner {
    /// A signer with the MSP's state key (as stored: any text, normally 64 hex characters).
    #[must_use]
    pub fn new(key: SecretString) -> Self {
        Self { key }
    }

    /// A new random state key (64 hex characters).
    ///
    /// # Errors
    /// When the operating system's random source fails.
    pub fn generate_key() -> Result<SecretString, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(SecretString::new(hex::encode(bytes)))
    }

    /// The wire form of `state`.
    #[must_use]
    pub fn sign(&self, state: &ConsentState) -> String {
        let payload = serde_json::to_vec(state).unwrap_or_default();
        let tag = hmac_sha256(self.key.expose().as_bytes(), &payload);
        format!("{VERSION}.{}.{}", hex::encode(&payload), hex::encode(tag))
    }

    /// The state `wire` carries, if it was signed with this key for `msp_id` and has not
    /// expired at `now`.
    ///
    /// # Errors
    /// See [`StateError`]; the signature is checked before anything in the payload is read.
    pub fn verify(&self, wire: &str, msp_id: &MspId, now: DateTime<Utc>) -> Result<ConsentState, StateError> {
        if wire.len() > MAX_STATE_CHARS {
            return Err(StateError::Malformed);
        }
        let mut parts = wire.split('.');
        let (Some(VERSION), Some(payload), Some(tag), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(StateError::Malformed);
        };
        // Only the canonical (lowercase) hex this signer writes: one state, one spelling.
        let canonical = |part: &str| part.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !canonical(payload) || !canonical(tag) {
            return Err(StateError::Malformed);
        }
        let payload = hex::decode(payload).map_err(|_| StateError::Malformed)?;
        let tag = hex::decode(tag).map_err(|_| StateError::Malformed)?;
        let expected = hmac_sha256(self.key.expose().as_bytes(), &payload);
        if !tags_equal(&expected, &tag) {
            return Err(StateError::Forged);
        }
        let state: ConsentState = serde_json::from_slice(&payload).map_err(|_| StateError::Malformed)?;
        if &state.msp_id != msp_id {
            return Err(StateError::OtherMsp);
        }
        if now.timestamp() >= state.expires_at {
            return Err(StateError::Expired);
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn msp(id: &str) -> MspId {
        MspId::parse(id).unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.timestamp_opt(1_765_000_000, 0).unwrap()
    }

    fn signer() -> StateSigner {
        StateSigner::new(SecretString::new("k".repeat(64)))
    }

    fn state() -> ConsentState {
        let tenant = TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap();
        ConsentState::new(&msp("acme"), now() + Duration::hours(72), Some(tenant)).unwrap()
    }

    #[test]
    fn a_signed_state_verifies_back_to_what_it_says() {
        let state = state();
        let wire = signer().sign(&state);
        assert!(wire.starts_with("v1."));
        assert!(wire.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'), "needs no URL escaping: {wire}");
        assert_eq!(signer().verify(&wire, &msp("acme"), now()), Ok(state));
    }

    #[test]
    fn any_byte_flipped_anywhere_in_the_state_is_refused() {
        let wire = signer().sign(&state());
        let bytes = wire.as_bytes();
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40] {
                let mut altered = bytes.to_vec();
                altered[i] ^= flip;
                let Ok(altered) = String::from_utf8(altered) else { continue };
                assert!(signer().verify(&altered, &msp("acme"), now()).is_err(), "byte {i} ^ {flip:#x} was accepted: {altered}");
            }
        }
    }

    #[test]
    fn any_byte_of_the_raw_payload_flipped_and_re_encoded_is_refused_as_forged() {
        let wire = signer().sign(&state());
        let parts: Vec<&str> = wire.split('.').collect();
        let payload = hex::decode(parts[1]).unwrap();
        for i in 0..payload.len() {
            for flip in [0x01u8, 0x80] {
                let mut altered = payload.clone();
                altered[i] ^= flip;
                let forged = format!("v1.{}.{}", hex::encode(&altered), parts[2]);
                assert_eq!(signer().verify(&forged, &msp("acme"), now()), Err(StateError::Forged), "payload byte {i}");
            }
        }
    }

    #[test]
    fn a_state_signed_with_another_key_is_refused_as_forged() {
        let wire = StateSigner::new(SecretString::new("other-key")).sign(&state());
        assert_eq!(signer().verify(&wire, &msp("acme"), now()), Err(StateError::Forged));
    }

    #[test]
    fn a_state_of_another_msp_is_refused_even_with_a_good_signature() {
        let wire = signer().sign(&state());
        assert_eq!(signer().verify(&wire, &msp("globex"), now()), Err(StateError::OtherMsp));
    }

    #[test]
    fn an_expired_state_is_refused_from_its_expiry_second_on() {
        let state = state();
        let wire = signer().sign(&state);
        assert!(signer().verify(&wire, &msp("acme"), state.expiry() - Duration::seconds(1)).is_ok());
        assert_eq!(signer().verify(&wire, &msp("acme"), state.expiry()), Err(StateError::Expired));
    }

    /// The wire form of `payload` signed with the test key: what only the key's holder makes.
    fn signed(payload: &[u8]) -> String {
        format!("v1.{}.{}", hex::encode(payload), hex::encode(hmac_sha256("k".repeat(64).as_bytes(), payload)))
    }

    #[test]
    fn a_signed_state_over_the_length_limit_is_refused_and_one_at_the_limit_is_not() {
        let json = serde_json::to_vec(&state()).unwrap();
        // JSON allows trailing whitespace: pad the payload so the wire is exactly the limit
        // (`v1.` + 2 per payload byte + `.` + 64 of tag), then one byte over.
        let at_limit = (MAX_STATE_CHARS - 68) / 2;
        let padded = |len: usize| [json.clone(), vec![b' '; len - json.len()]].concat();
        let wire = signed(&padded(at_limit));
        assert_eq!(wire.len(), MAX_STATE_CHARS);
        assert_eq!(signer().verify(&wire, &msp("acme"), now()), Ok(state_of(&json)), "at the limit");
        let over = signed(&padded(at_limit + 1));
        assert!(over.len() > MAX_STATE_CHARS);
        assert_eq!(signer().verify(&over, &msp("acme"), now()), Err(StateError::Malformed), "validly signed, but too long");
    }

    fn state_of(json: &[u8]) -> ConsentState {
        serde_json::from_slice(json).unwrap()
    }

    #[test]
    fn a_state_spelled_in_capital_hex_is_refused_one_state_one_spelling() {
        let wire = signer().sign(&state());
        let parts: Vec<&str> = wire.split('.').collect();
        let payload_upper = format!("v1.{}.{}", parts[1].to_uppercase(), parts[2]);
        let tag_upper = format!("v1.{}.{}", parts[1], parts[2].to_uppercase());
        assert_eq!(signer().verify(&payload_upper, &msp("acme"), now()), Err(StateError::Malformed), "the payload's hex in capitals");
        assert_eq!(signer().verify(&tag_upper, &msp("acme"), now()), Err(StateError::Malformed), "the tag's hex in capitals");
    }

    #[test]
    fn malformed_states_are_refused_without_panicking() {
        let too_long = "v1.".to_owned() + &"a".repeat(MAX_STATE_CHARS);
        for wire in ["", "v1", "v1..", "v2.00.00", "v1.zz.00", "v1.00.00.00", "v1.7b7d.00", too_long.as_str()] {
            assert!(signer().verify(wire, &msp("acme"), now()).is_err(), "{wire}");
        }
    }

    #[test]
    fn generated_keys_are_random_and_the_signer_never_shows_its_key() {
        let (a, b) = (StateSigner::generate_key().unwrap(), StateSigner::generate_key().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 64);
        assert!(!format!("{:?}", StateSigner::new(a.clone())).contains(a.expose()));
    }
}
