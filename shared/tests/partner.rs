//! The partner-tenant GDAP connector (`PartnerRelationshipsClient`) against the project's
//! Microsoft 365 simulator (token endpoint and the partner side of Graph), started on
//! `127.0.0.1` per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use vigil::connectors::http_client;
use vigil::connectors::partner::PartnerRelationshipsClient;
use vigil::error::{Classified, ErrorClass, SourceError};
use vigil::ids::TenantId;
use vigil::ports::AdminRelationshipSource;
use vigil::relationships::{AssignmentStatus, RelationshipStatus};
use vigil::secret::SecretString;
use vigil::tenant::M365AppCredentials;
use vigil_simulators::m365::{M365Failure, M365Operation, M365Sim, M365SimHandle};

const PARTNER: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const OTHER_PARTNER: &str = "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d";
const CLIENT_ID: &str = "1b2c3d4e-0000-4000-8000-000000000009";
const CLIENT_SECRET: &str = "partner-app-secret-value-123";

fn customer(n: u32) -> String {
    format!("5e1f2c8a-7d41-4f0e-9a51-{n:012}")
}

/// A relationship with customer `n`, as Graph lists it.
fn relationship(n: u32, status: &str) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.delegatedAdminRelationship",
        "@odata.etag": "W/\"JyIwIg==\"",
        "id": format!("{PARTNER}-{}", customer(n)),
        "displayName": format!("Customer {n} standard access"),
        "duration": "P730D",
        "customer": {"tenantId": customer(n), "displayName": format!("Customer {n}")},
        "accessDetails": {"unifiedRoles": [{"roleDefinitionId": "729827e3-9c14-49f7-bb1b-9608f156bbb8"}]},
        "status": status,
        "autoExtendDuration": "PT0S",
        "createdDateTime": "2026-01-02T10:00:00.0000000Z",
        "lastModifiedDateTime": "2026-01-03T08:15:00.0000000Z",
        "activatedDateTime": "2026-01-03T08:15:00.0000000Z",
        "endDateTime": "2028-01-03T08:15:00.0000000Z"
    })
}

fn assignment(n: u32, status: &str) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.delegatedAdminAccessAssignment",
        "id": format!("assignment-{n}"), "status": status,
        "accessContainer": {"accessContainerId": "9b0e3a1c-0000-4000-8000-000000000001", "accessContainerType": "securityGroup"},
        "accessDetails": {"unifiedRoles": [{"roleDefinitionId": "729827e3-9c14-49f7-bb1b-9608f156bbb8"}]},
        "createdDateTime": "2026-01-03T08:20:00Z", "lastModifiedDateTime": "2026-01-03T08:20:00Z"
    })
}

async fn partner(relationships: u32) -> (M365SimHandle, PartnerRelationshipsClient) {
    let sim = M365Sim::start().await.unwrap();
    sim.add_tenant(PARTNER, CLIENT_ID, CLIENT_SECRET);
    sim.set_partner_role(PARTNER, true);
    for n in 0..relationships {
        sim.add_partner_relationship(PARTNER, relationship(n, "active"));
        sim.add_access_assignment(&format!("{PARTNER}-{}", customer(n)), assignment(n, "active"));
    }
    let client = PartnerRelationshipsClient::new(http_client().unwrap(), sim.login_base(), sim.graph_base());
    (sim, client)
}

fn tenant() -> TenantId {
    TenantId::parse(PARTNER).unwrap()
}

fn credentials() -> M365AppCredentials {
    M365AppCredentials::new(CLIENT_ID, SecretString::new(CLIENT_SECRET))
}

#[tokio::test]
async fn every_relationship_of_every_page_is_read_with_its_access_assignments() {
    let (sim, client) = partner(650).await;
    sim.add_partner_relationship(PARTNER, relationship(900, "terminated"));
    let relationships = client.relationships(&tenant(), &credentials()).await.unwrap();
    assert_eq!(relationships.len(), 651, "three pages of 300");
    let first = &relationships[0];
    assert_eq!((first.status, first.customer_name.as_str()), (RelationshipStatus::Active, "Customer 0"));
    assert_eq!(first.access_assignments.len(), 1);
    assert_eq!(first.access_assignments[0].status, AssignmentStatus::Active);
    assert_eq!(first.auto_extend_days, 0);
    let ended = relationships.iter().find(|r| r.status == RelationshipStatus::Terminated).unwrap();
    assert!(ended.access_assignments.is_empty(), "a terminated relationship's assignments are not read");
    let listings = sim.request_log().iter().filter(|r| r.path.ends_with("/delegatedAdminRelationships")).count();
    assert_eq!(listings, 3);
}

#[tokio::test]
async fn a_partner_tenant_without_the_role_is_refused_naming_it_and_another_partners_relationships_never_show() {
    let (sim, client) = partner(2).await;
    sim.add_tenant(OTHER_PARTNER, CLIENT_ID, CLIENT_SECRET);
    let other = TenantId::parse(OTHER_PARTNER).unwrap();
    let refused = client.relationships(&other, &credentials()).await.unwrap_err();
    assert!(
        matches!(&refused, SourceError::AccessRefused { message, .. } if message.contains("DelegatedAdminRelationship.Read.All")),
        "{refused:?}"
    );
    assert_eq!(refused.class(), ErrorClass::Permanent);
    sim.set_partner_role(OTHER_PARTNER, true);
    assert!(
        client.relationships(&other, &credentials()).await.unwrap().is_empty(),
        "the role, newly granted, is in the next token; none of PARTNER's"
    );
    let wrong = M365AppCredentials::new(CLIENT_ID, SecretString::new("guessed"));
    let error = client.relationships(&tenant(), &wrong).await.unwrap_err();
    assert!(!format!("{error:?}").contains("guessed"), "no secret in the error");
}

#[tokio::test]
async fn throttling_is_transient_with_the_servers_retry_after_and_a_bad_relationship_is_left_out() {
    let (sim, client) = partner(1).await;
    sim.fail_next(M365Operation::PartnerRelationships, M365Failure::Throttle, 1);
    let throttled = client.relationships(&tenant(), &credentials()).await.unwrap_err();
    assert!(matches!(throttled, SourceError::Throttled { retry_after: Some(wait) } if wait.as_secs() == 1), "{throttled:?}");
    assert_eq!(throttled.class(), ErrorClass::Transient);
    let mut bad = relationship(7, "active");
    bad["customer"]["tenantId"] = json!("not-a-guid");
    sim.add_partner_relationship(PARTNER, bad);
    let read = client.relationships(&tenant(), &credentials()).await.unwrap();
    assert_eq!(read.len(), 1, "the unreadable relationship is left out, the other kept");
}

#[tokio::test]
async fn a_termination_is_requested_once_and_followed_through_terminating_to_terminated() {
    let (sim, client) = partner(2).await;
    sim.set_partner_write_role(PARTNER, true);
    let id = format!("{PARTNER}-{}", customer(1));
    assert_eq!(client.requests(&tenant(), &credentials(), &id).await.unwrap(), vec![]);
    let request = client.request_termination(&tenant(), &credentials(), &id).await.unwrap();
    assert_eq!((request.action.as_str(), request.status), ("terminate", vigil::relationships::removal::RequestStatus::Created));
    let listed = client.requests(&tenant(), &credentials(), &id).await.unwrap();
    assert_eq!(listed, vec![request.clone()], "the request is found again by listing them");
    let again = client.request_termination(&tenant(), &credentials(), &id).await.unwrap_err();
    assert_eq!(again.class(), ErrorClass::Permanent, "a second termination is refused: {again}");
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(client.relationship_status(&tenant(), &credentials(), &id).await.unwrap().unwrap());
    }
    assert_eq!(seen, vec![RelationshipStatus::TerminationRequested, RelationshipStatus::Terminating, RelationshipStatus::Terminated]);
    let done = client.requests(&tenant(), &credentials(), &id).await.unwrap();
    assert_eq!(done[0].status, vigil::relationships::removal::RequestStatus::Succeeded);
    let other = format!("{PARTNER}-{}", customer(0));
    assert_eq!(
        client.relationship_status(&tenant(), &credentials(), &other).await.unwrap(),
        Some(RelationshipStatus::Active),
        "only the chosen one"
    );
    assert_eq!(client.relationship_status(&tenant(), &credentials(), "unknown-id").await.unwrap(), None, "404 is gone");
    let posts = sim.request_log().iter().filter(|r| r.method == "POST" && r.path.ends_with("/requests")).count();
    assert_eq!(posts, 2);
}

#[tokio::test]
async fn without_the_write_permission_a_termination_is_refused_naming_it_and_nothing_changes() {
    let (sim, client) = partner(1).await;
    let id = format!("{PARTNER}-{}", customer(0));
    let refused = client.request_termination(&tenant(), &credentials(), &id).await.unwrap_err();
    assert!(matches!(refused, SourceError::AccessRefused { .. }), "{refused:?}");
    assert!(refused.to_string().contains("ReadWrite.All"), "{refused}");
    assert_eq!(sim.partner_relationship_status(&id).as_deref(), Some("active"));
    let foreign = client.request_termination(&TenantId::parse(OTHER_PARTNER).unwrap(), &credentials(), &id).await.unwrap_err();
    assert_eq!(foreign.class(), ErrorClass::Permanent, "another partner's tenant cannot reach it: {foreign}");
}

#[tokio::test]
async fn a_throttled_termination_is_transient() {
    let (sim, client) = partner(1).await;
    sim.set_partner_write_role(PARTNER, true);
    sim.fail_next(M365Operation::PartnerRelationships, M365Failure::Throttle, 1);
    let id = format!("{PARTNER}-{}", customer(0));
    let error = client.request_termination(&tenant(), &credentials(), &id).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Transient);
    assert_eq!(sim.partner_relationship_status(&id).as_deref(), Some("active"), "nothing was done");
}

fn sign_in(n: u32, customer: &str, at: chrono::DateTime<chrono::Utc>) -> Value {
    json!({
        "id": format!("sign-in-{n}"), "createdDateTime": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "userId": format!("user-{}", n % 3), "userPrincipalName": format!("tech{}@partner.example", n % 3),
        "userDisplayName": "Partner Technician", "appDisplayName": "Microsoft 365 admin center",
        "homeTenantId": PARTNER, "resourceTenantId": customer, "crossTenantAccessType": "serviceProvider",
        "status": {"errorCode": 0, "failureReason": null}
    })
}

#[tokio::test]
async fn sign_ins_since_a_time_are_read_over_every_page_and_partner_sign_ins_are_found_by_tenant_ids() {
    let (sim, client) = partner(0).await;
    sim.set_sign_in_role(PARTNER, true);
    let now = chrono::Utc::now();
    for n in 0..2_100 {
        sim.add_sign_in(PARTNER, sign_in(n, &customer(n % 2), now - chrono::Duration::minutes(i64::from(n))));
    }
    sim.add_sign_in(PARTNER, sign_in(9_999, &customer(1), now - chrono::Duration::days(3)));
    let since = now - chrono::Duration::days(2);
    let read = client.sign_ins(&tenant(), &credentials(), since).await.unwrap();
    assert_eq!(read.len(), 2_100, "three pages of 1,000, the one older than `since` filtered out by Graph");
    let pages = sim.request_log().iter().filter(|r| r.path.ends_with("/auditLogs/signIns")).count();
    assert_eq!(pages, 3);
    let first = sim.request_log().into_iter().find(|r| r.path.ends_with("/auditLogs/signIns")).unwrap();
    assert!(first.query.contains("createdDateTime"), "filtered server-side: {}", first.query);
    let activity = vigil::relationships::activity::activity_from_sign_ins(&read, &tenant(), &Default::default(), now);
    assert_eq!(activity.len(), 2);
    assert_eq!(activity[&TenantId::parse(&customer(0)).unwrap()].agents_last_day, 3);
}

#[tokio::test]
async fn sign_ins_without_the_permission_or_the_licence_are_refused_naming_what_is_missing() {
    let (sim, client) = partner(0).await;
    let since = chrono::Utc::now() - chrono::Duration::days(1);
    let refused = client.sign_ins(&tenant(), &credentials(), since).await.unwrap_err();
    assert!(matches!(refused, SourceError::AccessRefused { .. }), "{refused:?}");
    assert!(refused.to_string().contains("AuditLog.Read.All"), "{refused}");
    sim.set_sign_in_role(PARTNER, true);
    sim.set_premium_licence(PARTNER, false);
    let unlicensed = client.sign_ins(&tenant(), &credentials(), since).await.unwrap_err();
    assert_eq!(unlicensed.class(), ErrorClass::Permanent, "{unlicensed}");
    sim.fail_next(M365Operation::SignIns, M365Failure::Throttle, 1);
    sim.set_premium_licence(PARTNER, true);
    assert_eq!(client.sign_ins(&tenant(), &credentials(), since).await.unwrap_err().class(), ErrorClass::Transient);
    assert_eq!(client.sign_ins(&tenant(), &credentials(), since).await.unwrap(), vec![]);
}

#[tokio::test]
async fn a_404_on_a_read_that_must_find_its_object_is_a_refusal_not_an_outage() {
    let (_sim, client) = partner(1).await;
    let missing = client.requests(&tenant(), &credentials(), "no-such-relationship").await.unwrap_err();
    assert!(matches!(missing, SourceError::Rejected { .. }), "{missing:?}");
    assert_eq!(missing.class(), ErrorClass::Permanent, "retrying will not make it appear");
    assert_eq!(
        client.relationship_status(&tenant(), &credentials(), "no-such-relationship").await.unwrap(),
        None,
        "where absence is an answer"
    );
}
