//! Typed views of the audit record types Vigil alerts on, read from an [`AuditRecord`]'s raw
//! JSON without ever failing it.
//!
//! [`parse`] dispatches on `RecordType`:
//!
//! | RecordType | Variant |
//! |---|---|
//! | 1 ExchangeAdmin | [`RecordDetail::ExchangeAdmin`] |
//! | 6 SharePointFileOperation | [`RecordDetail::SharePointFile`] |
//! | 8 AzureActiveDirectory | [`RecordDetail::AzureActiveDirectory`] |
//! | 14 SharePointSharingOperation | [`RecordDetail::SharePointSharing`] |
//! | 15 AzureActiveDirectoryStsLogon | [`RecordDetail::StsLogon`] |
//! | 18 SecurityComplianceCenterEOPCmdlet | [`RecordDetail::SccCmdlet`] |
//! | 28 ThreatIntelligence | [`RecordDetail::ThreatIntelligenceEmail`] |
//! | 40 SecurityComplianceAlerts | [`RecordDetail::ComplianceAlert`] |
//! | 41 ThreatIntelligenceUrl | [`RecordDetail::UrlClick`] |
//! | 47 ThreatIntelligenceAtpContent | [`RecordDetail::AtpContent`] |
//! | 64 AirInvestigation | [`RecordDetail::AirInvestigation`] |
//!
//! Every other record type is [`RecordDetail::Other`]. A record whose type-specific fields
//! cannot be read (an array where a string belongs, a time that is not a time) is `Other` too,
//! with a [`Malformed`] diagnostic naming the field: never a panic, never an error that fails a
//! batch. The [`AuditRecord`] itself always keeps the whole record, and each typed struct keeps
//! the fields it does not model (beyond the common schema) in `extra`.
//!
//! Real-data quirks are absorbed field by field: enums as numbers or names, numbers as
//! strings, `""`/`"<null>"` as absent, times without `Z`, Name/Value lists as one cmdlet-line
//! string, JSON inside strings, keys in another case (`URL`/`Url`).

mod alerts;
mod entra;
mod exchange;
mod fields;
mod sharepoint;
mod threat;

pub use alerts::{AirInvestigation, ComplianceAlert};
pub use entra::{AadEvent, DirectoryChange, Identity, StsLogon};
pub use exchange::{ExchangeAdmin, SccCmdlet};
pub use fields::{Coded, Malformed, ModifiedProperty, NameValue, NameValues, decode_json_text, property_text};
pub use sharepoint::{EventSource, ItemType, SharePointFileOperation, SharePointItem, SharePointSharing};
pub use threat::{
    AtpContent, Attachment, EmailThreat, FileData, FileVerdict, PolicyAction, SourceWorkload, SystemOverride, ThreatPolicy, UrlClick,
    UrlClickAction,
};

use crate::audit::{AuditRecord, normalise_client_ip};
use fields::Fields;
use serde::Serialize;
use std::net::IpAddr;

/// The common-schema fields (reference 4.1): kept by [`AuditRecord`], so never repeated in a
/// typed struct's `extra`.
pub(crate) const COMMON_FIELDS: &[&str] = &[
    "Id",
    "RecordType",
    "CreationTime",
    "Operation",
    "OrganizationId",
    "UserType",
    "UserKey",
    "Workload",
    "ResultStatus",
    "ObjectId",
    "UserId",
    "ClientIP",
    "Scope",
    "Version",
    "AppAccessContext",
];

/// The typed detail of one audit record.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "detail")]
pub enum RecordDetail {
    /// RecordType 1.
    ExchangeAdmin(ExchangeAdmin),
    /// RecordType 8.
    AzureActiveDirectory(DirectoryChange),
    /// RecordType 15.
    StsLogon(StsLogon),
    /// RecordType 6.
    SharePointFile(SharePointFileOperation),
    /// RecordType 14.
    SharePointSharing(SharePointSharing),
    /// RecordType 18.
    SccCmdlet(SccCmdlet),
    /// RecordType 28.
    ThreatIntelligenceEmail(EmailThreat),
    /// RecordType 41.
    UrlClick(UrlClick),
    /// RecordType 47.
    AtpContent(AtpContent),
    /// RecordType 40.
    ComplianceAlert(ComplianceAlert),
    /// RecordType 64.
    AirInvestigation(AirInvestigation),
    /// Any other record type, or a record whose type-specific fields are malformed. The whole
    /// record is still in [`AuditRecord::raw`].
    Other,
}

impl RecordDetail {
    /// The record types with a typed detail.
    pub const TYPED_RECORD_TYPES: [i64; 11] = [1, 6, 8, 14, 15, 18, 28, 40, 41, 47, 64];

    /// The variant's name, for logs and metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ExchangeAdmin(_) => "ExchangeAdmin",
            Self::AzureActiveDirectory(_) => "AzureActiveDirectory",
            Self::StsLogon(_) => "StsLogon",
            Self::SharePointFile(_) => "SharePointFile",
            Self::SharePointSharing(_) => "SharePointSharing",
            Self::SccCmdlet(_) => "SccCmdlet",
            Self::ThreatIntelligenceEmail(_) => "ThreatIntelligenceEmail",
            Self::UrlClick(_) => "UrlClick",
            Self::AtpContent(_) => "AtpContent",
            Self::ComplianceAlert(_) => "ComplianceAlert",
            Self::AirInvestigation(_) => "AirInvestigation",
            Self::Other => "Other",
        }
    }

    /// `true` for [`RecordDetail::Other`].
    #[must_use]
    pub fn is_other(&self) -> bool {
        matches!(self, Self::Other)
    }

    /// The users, IPs, mailboxes, files and URLs in the type-specific fields, without
    /// duplicates. (The actor and `ClientIP` are common fields: see
    /// [`AuditRecordExt::entities`] for everything.)
    #[must_use]
    pub fn entities(&self) -> Vec<Entity> {
        let mut out = EntityList::default();
        self.collect_entities(&mut out);
        out.0
    }

    fn collect_entities(&self, out: &mut EntityList) {
        match self {
            Self::ExchangeAdmin(detail) => detail.collect_entities(out),
            Self::AzureActiveDirectory(detail) => detail.collect_entities(out),
            Self::StsLogon(detail) => detail.collect_entities(out),
            Self::SharePointFile(detail) => detail.collect_entities(out),
            Self::SharePointSharing(detail) => detail.collect_entities(out),
            Self::SccCmdlet(detail) => detail.collect_entities(out),
            Self::ThreatIntelligenceEmail(detail) => detail.collect_entities(out),
            Self::UrlClick(detail) => detail.collect_entities(out),
            Self::AtpContent(detail) => detail.collect_entities(out),
            Self::ComplianceAlert(detail) => detail.collect_entities(out),
            Self::AirInvestigation(detail) => detail.collect_entities(out),
            Self::Other => {}
        }
    }
}

/// The result of reading a record's detail: the detail, and why it is `Other` when the
/// record's type-specific fields were malformed.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub detail: RecordDetail,
    /// Set only when the record type has a typed detail but the record could not be read as it.
    pub diagnostic: Option<Malformed>,
}

/// Reads the typed detail of a record. Never fails: an unknown record type is `Other` without a
/// diagnostic, a malformed one `Other` with a diagnostic.
#[must_use]
pub fn parse(record: &AuditRecord) -> Parsed {
    let f = &mut Fields::new(record.raw());
    let read = match record.record_type {
        1 => ExchangeAdmin::read(f).map(RecordDetail::ExchangeAdmin),
        6 => SharePointFileOperation::read(f).map(RecordDetail::SharePointFile),
        8 => DirectoryChange::read(f).map(RecordDetail::AzureActiveDirectory),
        14 => SharePointSharing::read(f).map(RecordDetail::SharePointSharing),
        15 => StsLogon::read(f).map(RecordDetail::StsLogon),
        18 => SccCmdlet::read(f).map(RecordDetail::SccCmdlet),
        28 => EmailThreat::read(f).map(RecordDetail::ThreatIntelligenceEmail),
        40 => ComplianceAlert::read(f).map(RecordDetail::ComplianceAlert),
        41 => UrlClick::read(f).map(RecordDetail::UrlClick),
        47 => AtpContent::read(f).map(RecordDetail::AtpContent),
        64 => AirInvestigation::read(f).map(RecordDetail::AirInvestigation),
        _ => Ok(RecordDetail::Other),
    };
    match read {
        Ok(detail) => Parsed { detail, diagnostic: None },
        Err(malformed) => Parsed { detail: RecordDetail::Other, diagnostic: Some(malformed) },
    }
}

/// Typed details on [`AuditRecord`].
pub trait AuditRecordExt {
    /// The typed detail; `Other` for unknown or malformed records (see [`parse`] for the
    /// diagnostic).
    fn detail(&self) -> RecordDetail;

    /// The typed detail with its diagnostic.
    fn parse_detail(&self) -> Parsed;

    /// Every entity in the record: the actor (when a user), `ClientIP`, then those of the detail.
    fn entities(&self) -> Vec<Entity>;

    /// As [`AuditRecordExt::entities`], with a detail already parsed.
    fn entities_with(&self, detail: &RecordDetail) -> Vec<Entity>;
}

impl AuditRecordExt for AuditRecord {
    fn detail(&self) -> RecordDetail {
        parse(self).detail
    }

    fn parse_detail(&self) -> Parsed {
        parse(self)
    }

    fn entities(&self) -> Vec<Entity> {
        self.entities_with(&self.detail())
    }

    fn entities_with(&self, detail: &RecordDetail) -> Vec<Entity> {
        let mut out = EntityList::default();
        out.user(&self.user_id);
        if let Some(ip) = self.field_str("ClientIP") {
            out.ip(ip);
        }
        detail.collect_entities(&mut out);
        out.0
    }
}

/// Something an alert is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum Entity {
    /// A user principal name (an actor, a target, a clicker).
    User(String),
    /// An IP address, without port or brackets; IPv4-mapped IPv6 as IPv4.
    Ip(String),
    /// An e-mail address (recipient, sender, forwarding target).
    Mailbox(String),
    /// A file, by name, with its URL or path and its hash when known.
    File { name: String, path: Option<String>, sha256: Option<String> },
    /// A URL.
    Url(String),
}

impl Entity {
    /// Same entity, comparing addresses and hashes case-insensitively.
    fn same_as(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::User(a), Self::User(b)) | (Self::Mailbox(a), Self::Mailbox(b)) => a.eq_ignore_ascii_case(b),
            (Self::Ip(a), Self::Ip(b)) | (Self::Url(a), Self::Url(b)) => a == b,
            (Self::File { name: a, path: pa, sha256: ha }, Self::File { name: b, path: pb, sha256: hb }) => {
                a == b && pa == pb && ha.as_deref().map(str::to_ascii_lowercase) == hb.as_deref().map(str::to_ascii_lowercase)
            }
            _ => false,
        }
    }
}

/// Entities in first-seen order, without duplicates.
#[derive(Default)]
pub(crate) struct EntityList(Vec<Entity>);

impl EntityList {
    pub(crate) fn push(&mut self, entity: Entity) {
        if !self.0.iter().any(|seen| seen.same_as(&entity)) {
            self.0.push(entity);
        }
    }

    /// A user, when `text` is a user principal name (system accounts such as `ThreatIntel`,
    /// `NT AUTHORITY\SYSTEM`, `app@sharepoint` are not).
    pub(crate) fn user(&mut self, text: &str) {
        let text = text.trim();
        if looks_like_address(text) && !text.eq_ignore_ascii_case("app@sharepoint") {
            self.push(Entity::User(text.to_owned()));
        }
    }

    /// The e-mail addresses in `text` (`prvs=…=x@y`, `SMTP:x@y`, `"Name" <x@y>`).
    pub(crate) fn mailbox(&mut self, text: &str) {
        for address in email_addresses(text) {
            self.push(Entity::Mailbox(address));
        }
    }

    /// An IP address in any `ClientIP` form; host names and placeholders are skipped.
    pub(crate) fn ip(&mut self, text: &str) {
        let Some(ip) = normalise_client_ip(text).and_then(|ip| ip.parse::<IpAddr>().ok()) else { return };
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        self.push(Entity::Ip(ip.to_string()));
    }
}

/// `user@domain.tld`: one `@`, something before it, a dotted domain after it, no spaces.
pub(crate) fn looks_like_address(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !text.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// The e-mail addresses in a free-text value: split on separators and quotes, `smtp:` prefixes
/// and SRS/BATV (`prvs=tag=`) prefixes removed.
pub(crate) fn email_addresses(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, ';' | ',' | '"' | '\'' | '[' | ']' | '<' | '>' | '(' | ')'))
        .map(|token| {
            let token = token.strip_prefix("smtp:").or_else(|| token.strip_prefix("SMTP:")).unwrap_or(token);
            // BATV: prvs=<tag>=user@domain
            match token.split_once('=') {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("prvs") => rest.split_once('=').map_or(rest, |(_, address)| address),
                _ => token,
            }
        })
        .filter(|token| looks_like_address(token))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn record(value: Value) -> AuditRecord {
        AuditRecord::from_value(value).unwrap()
    }

    fn base(record_type: i64) -> Value {
        json!({
            "CreationTime": "2026-01-05T10:02:11", "Id": "0a0b0c0d-0000-4000-8000-000000000001", "Operation": "Test",
            "OrganizationId": "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11", "RecordType": record_type, "UserId": "alice@contoso.com",
            "UserKey": "10032001A2B3C4D5", "UserType": 0, "Workload": "Test", "Version": 1
        })
    }

    fn with(record_type: i64, fields: Value) -> AuditRecord {
        let mut value = base(record_type);
        for (key, field) in fields.as_object().unwrap() {
            value[key] = field.clone();
        }
        record(value)
    }

    #[test]
    fn every_typed_record_type_parses_from_common_fields_alone() {
        for record_type in RecordDetail::TYPED_RECORD_TYPES {
            let parsed = parse(&record(base(record_type)));
            assert_eq!(parsed.diagnostic, None, "{record_type}");
            assert!(!parsed.detail.is_other(), "{record_type}");
        }
    }

    #[test]
    fn unknown_record_types_are_other_without_a_diagnostic() {
        for record_type in [0, 2, 25, 463, 9999] {
            assert_eq!(parse(&record(base(record_type))), Parsed { detail: RecordDetail::Other, diagnostic: None });
        }
    }

    #[test]
    fn common_fields_never_appear_in_extra() {
        let detail =
            with(41, json!({"ClientIP": "10.0.0.1", "Scope": 0, "AppAccessContext": {"AADSessionId": "x"}, "NewThing": 1})).detail();
        let RecordDetail::UrlClick(click) = detail else { panic!("expected a URL click, got {detail:?}") };
        assert_eq!(click.extra.keys().collect::<Vec<_>>(), ["NewThing"]);
    }

    #[test]
    fn malformed_type_specific_fields_give_other_with_the_field_named() {
        let cases = [
            (1, json!({"Parameters": 17}), "Parameters"),
            (8, json!({"Actor": [{"Type": 5}]}), "Actor[0].ID"),
            (15, json!({"ErrorNumber": ["50126"]}), "ErrorNumber"),
            (6, json!({"ItemType": {"x": 1}}), "ItemType"),
            (28, json!({"AttachmentData": "Invoice.pdf.exe"}), "AttachmentData"),
            (28, json!({"AttachmentData": [{"FileVerdict": [1]}]}), "AttachmentData[0].FileVerdict"),
            (41, json!({"TimeOfClick": "soon"}), "TimeOfClick"),
            (47, json!({"FileData": {"FileSize": "big"}}), "FileData.FileSize"),
            (40, json!({"Data": "{not json"}), "Data"),
            (64, json!({"StartTimeUtc": 12}), "StartTimeUtc"),
        ];
        for (record_type, fields, field) in cases {
            let parsed = parse(&with(record_type, fields));
            assert_eq!(parsed.detail, RecordDetail::Other, "{record_type}");
            assert_eq!(parsed.diagnostic.map(|d| d.field).as_deref(), Some(field), "{record_type}");
        }
    }

    #[test]
    fn url_click_keys_are_read_in_either_case() {
        let detail = with(41, json!({"URL": "https://a.example/x", "URLClickAction": "2"})).detail();
        let RecordDetail::UrlClick(click) = detail else { panic!("expected a URL click, got {detail:?}") };
        assert_eq!(click.url.as_deref(), Some("https://a.example/x"));
        assert_eq!(click.url_click_action, Some(UrlClickAction::BlockPage));
        assert!(click.extra.is_empty());
    }

    #[test]
    fn url_click_actions_by_number_numeric_string_or_name() {
        for action in [json!(4), json!("4"), json!("BlockPageOverride"), json!("Block page override")] {
            let RecordDetail::UrlClick(click) = with(41, json!({"UrlClickAction": action})).detail() else { panic!("not a URL click") };
            assert_eq!(click.url_click_action, Some(UrlClickAction::BlockPageOverride), "{action}");
            assert!(click.url_click_action.is_some_and(|a| a.is_override()));
        }
        let RecordDetail::UrlClick(click) = with(41, json!({"UrlClickAction": 9})).detail() else { panic!("not a URL click") };
        assert_eq!(click.url_click_action, Some(UrlClickAction::Other("9".into())));
    }

    #[test]
    fn threat_policies_by_number_or_observed_name() {
        let cases = [
            (json!(10), ThreatPolicy::SafeAttachment),
            (json!("SafeAttachements"), ThreatPolicy::SafeAttachment),
            (json!("UIMP"), ThreatPolicy::UserImpersonation),
        ];
        for (policy, expected) in cases {
            let RecordDetail::ThreatIntelligenceEmail(mail) = with(28, json!({"Policy": policy, "PolicyAction": "Quarantine"})).detail()
            else {
                panic!("not an e-mail")
            };
            assert_eq!(mail.policy, Some(expected));
            assert_eq!(mail.policy_action, Some(PolicyAction::Quarantine));
        }
    }

    #[test]
    fn email_threat_delivery_tells_whether_a_mailbox_was_reached() {
        let reached = |location: &str| {
            let RecordDetail::ThreatIntelligenceEmail(mail) = with(28, json!({"LatestDeliveryLocation": location})).detail() else {
                panic!("not an e-mail")
            };
            mail.reached_mailbox()
        };
        assert!(reached("Inbox/folder"));
        assert!(!reached("Quarantine"));
        assert!(!reached("Junk folder"));
        assert!(!reached(""));
    }

    #[test]
    fn documented_and_wire_spellings_of_a_field_are_both_read() {
        let detail = with(8, json!({"IntraSystemsId": "6c8e0a2b-4d6f-4a8c-9e0b-1c2d3e4f5a6b"})).detail();
        let RecordDetail::AzureActiveDirectory(change) = detail else { panic!("not a directory change") };
        assert_eq!(change.aad.intra_system_id.as_deref(), Some("6c8e0a2b-4d6f-4a8c-9e0b-1c2d3e4f5a6b"));
        assert!(change.extra.is_empty());
    }

    #[test]
    fn sts_logon_failure_is_read_from_the_error_not_the_result_status() {
        let failed = |fields: Value| {
            let RecordDetail::StsLogon(logon) = with(15, fields).detail() else { panic!("not a logon") };
            logon.is_failure()
        };
        assert!(failed(json!({"ResultStatus": "Success", "ErrorNumber": "50126", "LogonError": "InvalidUserNameOrPassword"})));
        assert!(failed(json!({"ErrorCode": 50074})));
        assert!(!failed(json!({"ResultStatus": "Success", "ErrorNumber": "0"})));
        assert!(!failed(json!({})));
    }

    #[test]
    fn entities_skip_system_accounts_and_normalise_ips() {
        let mut value = base(28);
        value["UserId"] = json!("ThreatIntel");
        value["ClientIP"] = json!("[::ffff:10.11.12.13]:443");
        value["SenderIp"] = json!("192.0.2.45");
        value["Recipients"] = json!(["erin@contoso.com", "ERIN@contoso.com"]);
        value["P1Sender"] = json!("prvs=1234abcd=bounce@billing-notice.example");
        let entities = record(value).entities();
        assert_eq!(
            entities,
            [
                Entity::Ip("10.11.12.13".into()),
                Entity::Mailbox("erin@contoso.com".into()),
                Entity::Mailbox("bounce@billing-notice.example".into()),
                Entity::Ip("192.0.2.45".into()),
            ]
        );
    }

    #[test]
    fn host_names_and_placeholders_are_not_ip_entities() {
        for ip in ["<null>", "", "mail.contoso.com", "mail.contoso.com:25"] {
            let mut out = EntityList::default();
            out.ip(ip);
            assert!(out.0.is_empty(), "{ip}");
        }
    }

    #[test]
    fn email_addresses_are_found_in_parameter_values() {
        assert_eq!(email_addresses("smtp:drop@mail-collector.example"), ["drop@mail-collector.example"]);
        assert_eq!(email_addresses("\"Drop\" [SMTP:drop@x.example];bob@y.example"), ["drop@x.example", "bob@y.example"]);
        assert!(email_addresses("Forward to external").is_empty());
        assert!(email_addresses("a@b").is_empty());
        assert!(email_addresses("app@sharepoint").is_empty());
    }

    #[test]
    fn entities_serialise_with_a_type_tag() {
        assert_eq!(serde_json::to_value(Entity::Ip("10.0.0.1".into())).unwrap(), json!({"type": "ip", "value": "10.0.0.1"}));
        let file = Entity::File { name: "a.exe".into(), path: None, sha256: Some("AB".into()) };
        assert_eq!(serde_json::to_value(file).unwrap(), json!({"type": "file", "value": {"name": "a.exe", "path": null, "sha256": "AB"}}));
    }
}
