//! Typed audit records against fixtures written from the documented schema (synthetic tenants
//! contoso and fabrikam), including the quirks of real data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use vigil::audit::AuditRecord;
use vigil::records::{
    AuditRecordExt, Entity, EventSource, FileVerdict, ItemType, Parsed, PolicyAction, RecordDetail, SourceWorkload, ThreatPolicy,
    UrlClickAction, parse,
};

fn fixture_value(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/records/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture(name: &str) -> AuditRecord {
    AuditRecord::from_value(fixture_value(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The fixture's detail, which must parse without a diagnostic.
fn detail(name: &str) -> RecordDetail {
    let parsed = parse(&fixture(name));
    assert_eq!(parsed.diagnostic, None, "{name}");
    parsed.detail
}

macro_rules! expect {
    ($name:expr, $variant:path) => {
        match detail($name) {
            $variant(inner) => inner,
            other => panic!("{}: expected {}, got {other:?}", $name, stringify!($variant)),
        }
    };
}

#[test]
fn every_record_fixture_parses_to_its_variant() {
    let cases = [
        ("exchange-admin-inbox-rule.json", "ExchangeAdmin"),
        ("exchange-admin-cmdlet-line.json", "ExchangeAdmin"),
        ("entra-role-assignment.json", "AzureActiveDirectory"),
        ("entra-user-disabled.json", "AzureActiveDirectory"),
        ("entra-sts-login-failed.json", "StsLogon"),
        ("sharepoint-file-downloaded.json", "SharePointFile"),
        ("sharepoint-sharing-guest.json", "SharePointSharing"),
        ("scc-cmdlet.json", "SccCmdlet"),
        ("ti-mail-malware.json", "ThreatIntelligenceEmail"),
        ("ti-mail-phish-delivered.json", "ThreatIntelligenceEmail"),
        ("ti-url-click.json", "UrlClick"),
        ("ti-url-click-string-action.json", "UrlClick"),
        ("atp-content.json", "AtpContent"),
        ("scc-alert-triggered.json", "ComplianceAlert"),
        ("scc-alert-entity.json", "ComplianceAlert"),
        ("air-investigation.json", "AirInvestigation"),
        ("unknown-record-type.json", "Other"),
    ];
    for (name, kind) in cases {
        assert_eq!(detail(name).kind(), kind, "{name}");
    }
}

#[test]
fn exchange_admin_inbox_rule_has_its_parameters_and_forwarding_mailbox() {
    let record = fixture("exchange-admin-inbox-rule.json");
    let admin = expect!("exchange-admin-inbox-rule.json", RecordDetail::ExchangeAdmin);
    assert_eq!(admin.parameter("forwardto"), Some("drop@mail-collector.example"));
    assert_eq!(admin.parameter("StopProcessingRules"), Some("True"));
    assert_eq!(admin.external_access, Some(false));
    assert_eq!(admin.organization_name.as_deref(), Some("contoso.onmicrosoft.com"));
    assert_eq!(admin.object_id.as_deref(), Some("contoso.onmicrosoft.com\\alice\\Forward to external"));
    assert_eq!((admin.app_id, admin.client_app_id), (None, None), "empty strings read as absent");
    assert_eq!(
        record.entities(),
        [
            Entity::User("alice@contoso.com".into()),
            Entity::Ip("2001:db8:12::7".into()),
            Entity::Mailbox("drop@mail-collector.example".into())
        ]
    );
}

#[test]
fn exchange_admin_parameters_given_as_a_cmdlet_line_string() {
    let record = fixture("exchange-admin-cmdlet-line.json");
    assert_eq!(record.record_type, 1, "RecordType given as a string");
    let RecordDetail::ExchangeAdmin(admin) = record.detail() else { panic!("not Exchange admin") };
    assert_eq!(admin.parameter("Identity"), Some("bob@contoso.com"));
    assert_eq!(admin.parameter("ForwardingSmtpAddress"), Some("smtp:exfil@fabrikam-archive.example"));
    assert_eq!(admin.parameters.len(), 3);
    assert_eq!(admin.external_access, Some(true), "\"True\" as a string");
    assert!(admin.token_from_other_tenant("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11"));
    assert_eq!(admin.modified_properties[0].new_value, "smtp:exfil@fabrikam-archive.example");
    assert!(record.entities().contains(&Entity::Mailbox("exfil@fabrikam-archive.example".into())));
    assert!(record.entities().contains(&Entity::Ip("10.11.12.13".into())), "port stripped");
}

#[test]
fn entra_role_assignment_by_a_partner_is_cross_tenant() {
    let change = expect!("entra-role-assignment.json", RecordDetail::AzureActiveDirectory);
    assert_eq!(change.aad.actor_upn(), Some("tech@fabrikam.onmicrosoft.com"));
    assert_eq!(change.aad.target_upn(), Some("bob@contoso.com"));
    assert!(change.aad.is_cross_tenant());
    assert_eq!(change.aad.modified_property("role.displayname").map(|p| p.new_text()).as_deref(), Some("Global Administrator"));
    let well_known = change.aad.modified_property("Role.WellKnownObjectName").unwrap();
    assert_eq!(well_known.new_text(), "CompanyAdministrator", "JSON array in a string");
    assert_eq!(well_known.old_json(), Some(serde_json::json!([])));
    assert_eq!(change.aad.extended_property("extendedAuditEventCategory"), Some("User"));
    assert_eq!(change.aad.actor[1].kind, Some(3));
    assert_eq!(change.aad.support_ticket_id, None);
    let entities = fixture("entra-role-assignment.json").entities();
    assert_eq!(
        entities,
        [Entity::User("tech@fabrikam.onmicrosoft.com".into()), Entity::User("bob@contoso.com".into()), Entity::Ip("203.0.113.9".into()),],
        "ClientIP \"<null>\" gives no IP; the bracketed ActorIpAddress does"
    );
}

#[test]
fn modified_properties_decode_json_inside_strings() {
    let change = expect!("entra-user-disabled.json", RecordDetail::AzureActiveDirectory);
    let enabled = change.aad.modified_property("AccountEnabled").unwrap();
    assert_eq!(enabled.old_value, "[\r\n  true\r\n]", "kept as received");
    assert_eq!(enabled.new_json(), Some(serde_json::json!([false])));
    assert_eq!((enabled.old_text().as_str(), enabled.new_text().as_str()), ("true", "false"));
    assert!(!change.aad.is_cross_tenant());
}

#[test]
fn extended_properties_given_as_a_string_and_numbers_as_strings() {
    let change = expect!("entra-user-disabled.json", RecordDetail::AzureActiveDirectory);
    assert_eq!(change.aad.extended_property("extendedAuditEventCategory"), Some("User"));
    assert_eq!(change.aad.event_type, Some(1), "\"1\"");
    assert_eq!(change.aad.actor[0].kind, Some(5), "\"5\"");
}

#[test]
fn sts_failed_sign_in_reports_its_error_despite_success_status() {
    let record = fixture("entra-sts-login-failed.json");
    assert_eq!(record.field_str("ResultStatus"), Some("Success"));
    let RecordDetail::StsLogon(logon) = record.detail() else { panic!("not a sign-in") };
    assert!(logon.is_failure());
    assert_eq!(logon.error_code.as_deref(), Some("50126"), "read from ErrorNumber");
    assert_eq!(logon.logon_error.as_deref(), Some("InvalidUserNameOrPassword"));
    assert_eq!(logon.application_id.as_deref(), Some("89bee1f7-5e6e-4d8a-9f3d-ecd601259da7"));
    assert_eq!(logon.user_agent(), Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64)"));
    assert_eq!(logon.device_properties.get("IsCompliant"), Some("False"));
    assert_eq!(record.entities(), [Entity::User("carol@contoso.com".into()), Entity::Ip("198.51.100.23".into())], "::ffff: mapped IPv4");
}

#[test]
fn sharepoint_file_download_with_enums_as_names() {
    let record = fixture("sharepoint-file-downloaded.json");
    let RecordDetail::SharePointFile(file) = record.detail() else { panic!("not a file operation") };
    assert_eq!(file.item.item_type, Some(ItemType::File), "\"File\"");
    assert_eq!(file.item.event_source, Some(EventSource::SharePoint), "\"SharePoint\"");
    assert_eq!(file.item.source_file_name.as_deref(), Some("Payroll 2026.xlsx"));
    assert_eq!(file.item.url().as_deref(), Some("https://contoso.sharepoint.com/sites/Finance/Shared Documents/Payroll 2026.xlsx"));
    assert_eq!(file.extra.get("GeoLocation"), Some(&Value::from("EUR")), "unknown fields kept");
    assert_eq!(
        record.entities(),
        [
            Entity::User("dave@contoso.com".into()),
            Entity::Ip("203.0.113.77".into()),
            Entity::File {
                name: "Payroll 2026.xlsx".into(),
                path: Some("https://contoso.sharepoint.com/sites/Finance/Shared Documents/Payroll 2026.xlsx".into()),
                sha256: None
            },
        ]
    );
}

#[test]
fn sharepoint_sharing_with_a_guest_and_enums_as_numbers() {
    let record = fixture("sharepoint-sharing-guest.json");
    let RecordDetail::SharePointSharing(sharing) = record.detail() else { panic!("not sharing") };
    assert!(sharing.with_guest());
    assert_eq!(sharing.item.item_type, Some(ItemType::File), "1");
    assert_eq!(sharing.item.event_source, Some(EventSource::SharePoint), "0");
    assert_eq!(sharing.item.is_workflow, Some(false), "\"False\"");
    assert!(sharing.event_data.as_deref().is_some_and(|xml| xml.contains("<Type>Edit</Type>")));
    let entities = record.entities();
    assert!(entities.contains(&Entity::User("mallory@fabrikam.example".into())));
    assert!(entities.contains(&Entity::Ip("2001:db8:44::10".into())), "brackets stripped");
}

#[test]
fn scc_cmdlet_parameters_arrive_as_a_string() {
    let cmdlet = expect!("scc-cmdlet.json", RecordDetail::SccCmdlet);
    assert_eq!(cmdlet.parameter("AllowedSenderDomains"), Some("partner-mail.example"));
    assert_eq!(cmdlet.parameter("identity"), Some("Default"));
    assert_eq!(cmdlet.start_time.map(|t| t.to_rfc3339()).as_deref(), Some("2026-01-05T14:59:58+00:00"));
    assert_eq!(cmdlet.client_application, None);
    assert!(cmdlet.extra.contains_key("NonPiiParameters"));
}

#[test]
fn threat_intelligence_email_with_attachment_data_and_policy_names() {
    let record = fixture("ti-mail-malware.json");
    let RecordDetail::ThreatIntelligenceEmail(mail) = record.detail() else { panic!("not an e-mail detection") };
    assert_eq!(mail.policy, Some(ThreatPolicy::SafeAttachment), "\"SafeAttachements\" (sic)");
    assert_eq!(mail.policy_action, Some(PolicyAction::Quarantine));
    assert_eq!(mail.attachments.len(), 2);
    let bad: Vec<_> = mail.malicious_attachments().collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].file_name.as_deref(), Some("Invoice_4471.pdf.exe"));
    assert_eq!(bad[0].malware_family.as_deref(), Some("Trojan:Win32/Sabsik.FL.B!ml"));
    assert_eq!(mail.attachments[1].file_verdict, Some(FileVerdict::Good), "\"0\"");
    assert_eq!(mail.auth_details.get("DMARC"), Some("Fail"));
    assert_eq!(mail.recipients, ["erin@contoso.com"]);
    assert_eq!(mail.message_time.map(|t| t.to_rfc3339()).as_deref(), Some("2026-01-05T08:14:01+00:00"));
    assert!(!mail.reached_mailbox());
    assert_eq!(mail.extra.get("ThreatClassification"), Some(&Value::from("Commodity")));
    let entities = record.entities();
    assert!(entities.contains(&Entity::Mailbox("erin@contoso.com".into())));
    assert!(entities.contains(&Entity::Mailbox("accounts@billing-notice.example".into())));
    assert!(entities.contains(&Entity::Mailbox("bounce@mail.billing-notice.example".into())), "BATV prefix removed");
    assert!(entities.contains(&Entity::Ip("192.0.2.45".into())));
    assert!(entities.contains(&Entity::File {
        name: "Invoice_4471.pdf.exe".into(),
        path: None,
        sha256: Some("9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08".into())
    }));
    assert!(!entities.iter().any(|e| matches!(e, Entity::User(_))), "ThreatIntel is not a user");
}

#[test]
fn threat_intelligence_email_with_numeric_policy_and_string_lists() {
    let mail = expect!("ti-mail-phish-delivered.json", RecordDetail::ThreatIntelligenceEmail);
    assert_eq!(mail.policy, Some(ThreatPolicy::UserImpersonation), "6");
    assert_eq!(mail.policy_action, Some(PolicyAction::NoAction), "\"6\"");
    assert_eq!(mail.threats_and_detection_tech, ["Phish: [Impersonation user]"], "one string is a list of one");
    assert!(mail.attachments.is_empty(), "null");
    assert_eq!(mail.system_overrides[0].source.as_deref(), Some("User Safe Sender"));
    assert!(mail.reached_mailbox());
}

#[test]
fn url_click_with_numeric_action() {
    let record = fixture("ti-url-click.json");
    let RecordDetail::UrlClick(click) = record.detail() else { panic!("not a click") };
    assert_eq!(click.url_click_action, Some(UrlClickAction::BlockPageOverride));
    assert!(click.url_click_action.as_ref().is_some_and(UrlClickAction::is_override));
    assert_eq!(click.source_id.as_deref(), Some("2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a"));
    assert_eq!(
        record.entities(),
        [
            Entity::User("erin@contoso.com".into()),
            Entity::Url("https://login-contoso.account-verify.example/session".into()),
            Entity::Ip("203.0.113.15".into()),
        ]
    );
}

#[test]
fn url_click_with_string_action_and_documented_key_case() {
    let click = expect!("ti-url-click-string-action.json", RecordDetail::UrlClick);
    assert_eq!(click.url_click_action, Some(UrlClickAction::BlockPage), "\"2\" under URLClickAction");
    assert_eq!(click.url.as_deref(), Some("https://files.share-docs.example/invoice.zip"), "URL");
    assert_eq!(click.time_of_click.map(|t| t.to_rfc3339()).as_deref(), Some("2026-01-07T16:19:41.377+00:00"));
    assert!(click.extra.is_empty());
    assert!(RecordDetail::UrlClick(click).entities().contains(&Entity::Ip("2001:db8:7::42".into())));
}

#[test]
fn atp_content_with_file_size_as_a_string() {
    let record = fixture("atp-content.json");
    let RecordDetail::AtpContent(detection) = record.detail() else { panic!("not a file detection") };
    let file = detection.file_data.as_ref().unwrap();
    assert_eq!(file.file_size, Some(482_304));
    assert_eq!(file.file_verdict, Some(FileVerdict::Bad));
    assert_eq!(file.sha256.as_deref(), Some("LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564="), "base64 kept as received");
    assert_eq!(detection.source_workload, Some(SourceWorkload::OneDrive));
    assert_eq!(detection.last_modified_by.as_deref(), Some("frank@contoso.com"));
    let entities = record.entities();
    assert_eq!(entities.len(), 2);
    assert!(matches!(&entities[0], Entity::File { name, .. } if name == "setup.exe"));
    assert_eq!(entities[1], Entity::User("frank@contoso.com".into()));
}

#[test]
fn compliance_alert_data_is_decoded_from_its_json_string() {
    let record = fixture("scc-alert-triggered.json");
    let RecordDetail::ComplianceAlert(alert) = record.detail() else { panic!("not an alert") };
    assert_eq!(alert.name.as_deref(), Some("Suspicious email forwarding activity"));
    assert_eq!(alert.alert_id.as_deref(), Some("0e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b"));
    assert_eq!(alert.vigil_severity(), Some(vigil::alert::Severity::High));
    assert_eq!(alert.data_str("op"), Some("New-InboxRule"));
    assert_eq!(alert.data.as_ref().and_then(|d| d.get("tdc")), Some(&Value::from("1")));
    assert_eq!(alert.alert_links, ["https://security.microsoft.com/alerts/0e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b"]);
    assert_eq!(record.entities(), [Entity::User("grace@contoso.com".into())], "SecurityComplianceAlerts is not a user");
}

#[test]
fn compliance_alert_entity_event_names_its_entity() {
    let record = fixture("scc-alert-entity.json");
    let RecordDetail::ComplianceAlert(alert) = record.detail() else { panic!("not an alert") };
    assert_eq!((alert.alert_entity_id.as_deref(), alert.entity_type.as_deref()), (Some("grace@contoso.com"), Some("User")));
    assert_eq!(record.entities(), [Entity::User("grace@contoso.com".into())]);
}

#[test]
fn air_investigation_data_and_actions_are_decoded() {
    let record = fixture("air-investigation.json");
    let RecordDetail::AirInvestigation(investigation) = record.detail() else { panic!("not an investigation") };
    assert_eq!(investigation.status.as_deref(), Some("Pending Action"));
    assert_eq!(investigation.investigation_type.as_deref(), Some("Zapped Phish"));
    assert_eq!(investigation.actions[0].get("ActionStatus"), Some(&Value::from("Pending")), "action JSON in a string");
    assert_eq!(investigation.data_entities().count(), 3);
    assert_eq!(
        record.entities(),
        [
            Entity::Mailbox("erin@contoso.com".into()),
            Entity::Url("https://login-contoso.account-verify.example/session".into()),
            Entity::Ip("192.0.2.45".into()),
        ]
    );
}

#[test]
fn creation_time_without_z_with_fraction_and_with_z() {
    let cases = [
        ("exchange-admin-inbox-rule.json", "2026-01-05T09:41:27+00:00"),
        ("entra-user-disabled.json", "2026-01-05T11:31:02.123456700+00:00"),
        ("ti-mail-phish-delivered.json", "2026-01-05T10:47:20+00:00"),
    ];
    for (name, expected) in cases {
        assert_eq!(fixture(name).creation_time.to_rfc3339(), expected, "{name}");
    }
}

#[test]
fn client_ip_with_port_brackets_mapped_and_null_forms() {
    // (fixture, ClientIP normalised, the IP entities of the whole record)
    let cases: [(&str, Option<&str>, &[&str]); 7] = [
        ("exchange-admin-inbox-rule.json", Some("2001:db8:12::7"), &["2001:db8:12::7"]),
        ("exchange-admin-cmdlet-line.json", Some("10.11.12.13"), &["10.11.12.13"]),
        ("sharepoint-sharing-guest.json", Some("2001:db8:44::10"), &["2001:db8:44::10"]),
        ("entra-sts-login-failed.json", Some("::ffff:198.51.100.23"), &["198.51.100.23"]),
        ("entra-role-assignment.json", None, &["203.0.113.9"]),
        ("entra-user-disabled.json", None, &[]),
        ("unknown-record-type.json", None, &[]),
    ];
    for (name, client_ip, ips) in cases {
        let record = fixture(name);
        assert_eq!(record.client_ip().as_deref(), client_ip, "{name}");
        let found: Vec<_> = record.entities().into_iter().filter(|e| matches!(e, Entity::Ip(_))).collect();
        let expected: Vec<_> = ips.iter().map(|ip| Entity::Ip((*ip).to_owned())).collect();
        assert_eq!(found, expected, "{name}");
    }
}

#[test]
fn unknown_record_type_is_other_with_all_raw_fields_kept() {
    let value = fixture_value("unknown-record-type.json");
    let record = AuditRecord::from_value(value.clone()).unwrap();
    assert_eq!(record.record_type, 463);
    assert_eq!(parse(&record), Parsed { detail: RecordDetail::Other, diagnostic: None });
    assert_eq!(Value::Object(record.raw().clone()), value);
    assert_eq!(record.field_str("CampaignName"), Some("Q1 pulse"));
    assert_eq!(record.entities(), [Entity::User("ivy@fabrikam.com".into())]);
}

#[test]
fn unknown_fields_are_kept_in_extra() {
    let admin = expect!("exchange-admin-cmdlet-line.json", RecordDetail::ExchangeAdmin);
    assert_eq!(admin.extra.get("RequestSource"), Some(&Value::from("PowerShellNetCore")));
    assert!(!admin.extra.contains_key("Id"), "common fields live in AuditRecord");
    let file = expect!("sharepoint-file-downloaded.json", RecordDetail::SharePointFile);
    assert_eq!(file.extra.get("IsManagedDevice"), Some(&Value::Bool(false)));
}

#[test]
fn malformed_type_specific_field_is_other_not_an_error() {
    let record = fixture("malformed-ti-mail.json");
    let parsed = record.parse_detail();
    assert_eq!(parsed.detail, RecordDetail::Other);
    let diagnostic = parsed.diagnostic.unwrap();
    assert_eq!(diagnostic.field, "AttachmentData");
    assert!(diagnostic.to_string().contains("expected a list of objects, found the string"), "{diagnostic}");
    assert_eq!(record.detail(), RecordDetail::Other);
    assert_eq!(record.entities(), [] as [Entity; 0], "ThreatIntel actor, no client IP, no detail");
    assert_eq!(record.field_str("Subject"), Some("Outstanding invoice 4471 (resent)"), "the raw record is intact");
}

#[test]
fn mixed_batch_with_garbage_still_yields_typed_results_for_the_rest() {
    let Value::Array(items) = fixture_value("mixed-batch.json") else { panic!("the batch is an array") };
    let mut kinds = Vec::new();
    let mut rejected = 0;
    let mut diagnostics = Vec::new();
    for item in items {
        match AuditRecord::from_value(item) {
            Ok(record) => {
                let parsed = parse(&record);
                diagnostics.extend(parsed.diagnostic);
                kinds.push(parsed.detail.kind());
            }
            Err(_) => rejected += 1,
        }
    }
    assert_eq!(rejected, 4, "a string, a record without Id, a non-numeric RecordType, null");
    assert_eq!(kinds, ["ExchangeAdmin", "UrlClick", "Other", "Other", "AtpContent"]);
    assert_eq!(diagnostics.len(), 1, "only the malformed e-mail detection: {diagnostics:?}");
    assert_eq!(diagnostics[0].field, "AttachmentData");
}

#[test]
fn typed_details_serialise_with_their_kind() {
    let detail = detail("ti-url-click.json");
    let json = serde_json::to_value(&detail).unwrap();
    assert_eq!(json["kind"], "UrlClick");
    assert_eq!(json["detail"]["url_click_action"], "BlockPageOverride");
    assert_eq!(json["detail"]["user_ip"], "203.0.113.15");
}
