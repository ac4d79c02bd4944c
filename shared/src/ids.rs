//! Identifiers, each a newtype that can only be built by parsing, so an invalid id never
//! reaches a store key.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct IdError {
    /// Which identifier was being parsed.
    pub kind: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The identifier as a string slice.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::parse(&value)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(value: &str) -> Result<Self, IdError> {
                Self::parse(value)
            }
        }
    };
}

string_id!(
    /// An MSP: the owner of every record. Lowercase letters, digits and `-`, 3 to 40 characters,
    /// starting with a letter. It is the first component of every stored key.
    MspId
);

impl MspId {
    /// Parses an MSP id.
    ///
    /// # Errors
    /// When the id is empty, too long or has characters outside `[a-z0-9-]`.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        let error = |reason: &str| IdError { kind: "MSP id", reason: reason.to_owned() };
        if !(3..=40).contains(&value.len()) {
            return Err(error("must be 3 to 40 characters"));
        }
        if !value.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(error("must start with a lowercase letter"));
        }
        if !value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(error("only lowercase letters, digits and '-' are allowed"));
        }
        Ok(Self(value.to_owned()))
    }
}

string_id!(
    /// One of an MSP's destinations (a PSA, a mailbox, a webhook). Lowercase letters, digits and
    /// `-`, 1 to 40 characters, starting with a letter; unique within the MSP and part of the
    /// keys of its settings, secret, company links and deliveries.
    DestinationId
);

impl DestinationId {
    /// Parses a destination id.
    ///
    /// # Errors
    /// When the id is empty, too long or has characters outside `[a-z0-9-]`.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        let error = |reason: &str| IdError { kind: "destination id", reason: reason.to_owned() };
        if !(1..=40).contains(&value.len()) {
            return Err(error("must be 1 to 40 characters"));
        }
        if !value.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(error("must start with a lowercase letter"));
        }
        if !value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(error("only lowercase letters, digits and '-' are allowed"));
        }
        Ok(Self(value.to_owned()))
    }
}

string_id!(
    /// A member of an MSP's staff, or an automation, that holds API tokens
    /// ([`crate::access::Principal`]). Generated (`p-` and 16 hex digits); parsed with the rules
    /// of [`DestinationId`].
    PrincipalId
);

impl PrincipalId {
    /// Parses a principal id.
    ///
    /// # Errors
    /// When the id is empty, too long or has characters outside `[a-z0-9-]`.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        DestinationId::parse(value).map(|id| Self(id.0)).map_err(|e| IdError { kind: "principal id", reason: e.reason })
    }
}

string_id!(
    /// One API token of a principal (never the token itself): generated (`t-` and 16 hex
    /// digits); parsed with the rules of [`DestinationId`].
    TokenId
);

impl TokenId {
    /// Parses a token id.
    ///
    /// # Errors
    /// When the id is empty, too long or has characters outside `[a-z0-9-]`.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        DestinationId::parse(value).map(|id| Self(id.0)).map_err(|e| IdError { kind: "token id", reason: e.reason })
    }
}

string_id!(
    /// A Microsoft Entra tenant id: a GUID, stored lowercase.
    TenantId
);

impl TenantId {
    /// Parses a tenant GUID (any case, no braces).
    ///
    /// # Errors
    /// When the value is not a GUID in 8-4-4-4-12 form.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        if is_guid(value) {
            Ok(Self(value.to_ascii_lowercase()))
        } else {
            Err(IdError { kind: "tenant id", reason: "must be a GUID like 5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11".into() })
        }
    }
}

/// True for `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` with hex digits.
#[must_use]
pub fn is_guid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(group, len)| group.len() == len && group.chars().all(|c| c.is_ascii_hexdigit()))
}

string_id!(
    /// An audit record's `Id` (the dedupe key). Opaque, non-empty, at most 128 characters.
    RecordId
);

impl RecordId {
    /// Parses a record id.
    ///
    /// # Errors
    /// When the id is empty, too long or has control characters.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        // ASCII (every id Microsoft sends) is checked byte by byte; other text by character.
        let control = if value.is_ascii() { value.bytes().any(|b| b.is_ascii_control()) } else { value.chars().any(char::is_control) };
        if value.is_empty() || value.len() > 128 || control {
            return Err(IdError { kind: "record id", reason: "must be 1 to 128 printable characters".into() });
        }
        Ok(Self(value.to_owned()))
    }
}

string_id!(
    /// A deterministic alert id: 32 lowercase hex characters derived from the alert's identity.
    AlertId
);

impl AlertId {
    /// Parses an alert id as returned by the API.
    ///
    /// # Errors
    /// When the value is not 32 lowercase hex characters.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        if value.len() == 32 && value.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)) {
            Ok(Self(value.to_owned()))
        } else {
            Err(IdError { kind: "alert id", reason: "must be 32 lowercase hex characters".into() })
        }
    }

    /// Derives the id from the parts that identify an alert. The same parts always give the
    /// same id, so a retried evaluation lands on the same alert.
    #[must_use]
    pub fn derive(parts: &[&str]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"vigil-alert-v1");
        for part in parts {
            // Length-prefix each part so ("ab","c") and ("a","bc") differ.
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        let digest = hasher.finalize();
        Self(hex::encode(&digest[..16]))
    }
}

string_id!(
    /// A policy id, e.g. `builtin.forwarding-rule`.
    PolicyId
);

impl PolicyId {
    /// Parses a policy id: lowercase letters, digits, `.`, `-`, 3 to 64 characters.
    ///
    /// # Errors
    /// When the id has other characters or a bad length.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        if (3..=64).contains(&value.len()) && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-') {
            Ok(Self(value.to_owned()))
        } else {
            Err(IdError { kind: "policy id", reason: "must be 3 to 64 of [a-z0-9.-]".into() })
        }
    }
}

/// A Management Activity API content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ContentType {
    #[serde(rename = "Audit.AzureActiveDirectory")]
    AzureActiveDirectory,
    #[serde(rename = "Audit.Exchange")]
    Exchange,
    #[serde(rename = "Audit.SharePoint")]
    SharePoint,
    #[serde(rename = "Audit.General")]
    General,
    #[serde(rename = "DLP.All")]
    Dlp,
}

impl ContentType {
    /// The wire name, e.g. `Audit.Exchange`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AzureActiveDirectory => "Audit.AzureActiveDirectory",
            Self::Exchange => "Audit.Exchange",
            Self::SharePoint => "Audit.SharePoint",
            Self::General => "Audit.General",
            Self::Dlp => "DLP.All",
        }
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ContentType {
    /// All five content types of the Management Activity API.
    pub const ALL: [ContentType; 5] = [Self::AzureActiveDirectory, Self::Exchange, Self::SharePoint, Self::General, Self::Dlp];

    /// Parses a wire name such as `Audit.Exchange` (case-insensitive).
    #[must_use]
    pub fn from_wire(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|ct| ct.as_str().eq_ignore_ascii_case(name))
    }
}

/// One source of audit data for a tenant: a Management Activity API content type, or
/// Microsoft Graph security alerts (`alerts_v2`). Written as the content type's wire name or
/// `Graph.AlertsV2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum AuditStream {
    Content(ContentType),
    GraphAlerts,
}

impl From<ContentType> for AuditStream {
    fn from(content_type: ContentType) -> Self {
        Self::Content(content_type)
    }
}

impl AuditStream {
    /// The wire name of Graph security alerts.
    pub const GRAPH_ALERTS: &'static str = "Graph.AlertsV2";

    /// The content type, for a Management Activity API stream.
    #[must_use]
    pub fn content_type(self) -> Option<ContentType> {
        match self {
            Self::Content(content_type) => Some(content_type),
            Self::GraphAlerts => None,
        }
    }

    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.content_type().map_or(Self::GRAPH_ALERTS, ContentType::as_str)
    }

    /// Every stream Vigil knows.
    #[must_use]
    pub fn all() -> Vec<AuditStream> {
        ContentType::ALL.into_iter().map(AuditStream::from).chain([AuditStream::GraphAlerts]).collect()
    }
}

impl fmt::Display for AuditStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<AuditStream> for String {
    fn from(value: AuditStream) -> String {
        value.as_str().to_owned()
    }
}

impl TryFrom<String> for AuditStream {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, IdError> {
        if value.eq_ignore_ascii_case(Self::GRAPH_ALERTS) {
            return Ok(Self::GraphAlerts);
        }
        ContentType::from_wire(&value)
            .map(AuditStream::from)
            .ok_or(IdError { kind: "audit stream", reason: format!("{value:?} is not a content type or {}", Self::GRAPH_ALERTS) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_streams_round_trip_through_their_wire_names() {
        for stream in AuditStream::all() {
            assert_eq!(AuditStream::try_from(stream.as_str().to_owned()).unwrap(), stream);
        }
        assert_eq!(AuditStream::from(ContentType::Dlp).content_type(), Some(ContentType::Dlp));
        assert!(AuditStream::try_from("Audit.Nope".to_owned()).is_err());
    }

    #[test]
    fn content_types_are_read_case_insensitively_as_the_live_start_response_spells_them() {
        assert_eq!(ContentType::from_wire("Audit.Sharepoint"), Some(ContentType::SharePoint));
        assert_eq!(ContentType::from_wire("audit.exchange"), Some(ContentType::Exchange));
        assert_eq!(AuditStream::try_from("Audit.Sharepoint".to_owned()).unwrap(), AuditStream::Content(ContentType::SharePoint));
        assert_eq!(ContentType::from_wire("Audit.Share"), None);
    }

    #[test]
    fn msp_ids_are_lowercase_slugs() {
        assert!(MspId::parse("acme-msp").is_ok());
        assert!(MspId::parse("Acme").is_err());
        assert!(MspId::parse("ab").is_err());
        assert!(MspId::parse("1acme").is_err());
        assert!(MspId::parse("acme#x").is_err(), "key separators must never enter an id");
    }

    #[test]
    fn tenant_ids_are_guids_stored_lowercase() {
        let id = TenantId::parse("5E1F2C8A-7D41-4F0E-9A51-2B7D0C9E4A11").unwrap();
        assert_eq!(id.as_str(), "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11");
        assert!(TenantId::parse("contoso.onmicrosoft.com").is_err());
        assert!(TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a1").is_err());
    }

    #[test]
    fn alert_ids_are_deterministic_and_separate_their_parts() {
        let a = AlertId::derive(&["acme", "t1", "p", "alice", "0"]);
        assert_eq!(a, AlertId::derive(&["acme", "t1", "p", "alice", "0"]));
        assert_ne!(a, AlertId::derive(&["acme", "t1", "p", "alic", "e0"]));
        assert!(AlertId::parse(a.as_str()).is_ok());
    }
}
