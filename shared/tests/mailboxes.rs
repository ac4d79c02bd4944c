//! The directory connector of the protected-mailbox count (`DirectoryClient`) against the
//! project's Microsoft 365 simulator (token endpoint and Graph's `users`), started on
//! `127.0.0.1` per test: every page read with the advanced-query header, users counted once,
//! throttling and a missing `User.Read.All` classified.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use vigil::billing::mailboxes::{EXCHANGE_FOUNDATION, EXCHANGE_PLAN_2, tally};
use vigil::connectors::http_client;
use vigil::connectors::mailboxes::DirectoryClient;
use vigil::error::{Classified, ErrorClass, SourceError};
use vigil::ids::TenantId;
use vigil::ports::MailboxDirectory;
use vigil::secret::SecretString;
use vigil::tenant::M365AppCredentials;
use vigil_simulators::m365::{M365Failure, M365Operation, M365Sim, M365SimHandle};

const TENANT: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
const CLIENT_ID: &str = "1b2c3d4e-0000-4000-8000-000000000009";
const CLIENT_SECRET: &str = "tenant-app-secret-value-123";

async fn directory() -> (M365SimHandle, DirectoryClient) {
    let sim = M365Sim::start().await.unwrap();
    sim.add_tenant(TENANT, CLIENT_ID, CLIENT_SECRET);
    let client = DirectoryClient::new(http_client().unwrap(), sim.login_base(), sim.graph_base());
    (sim, client)
}

fn tenant() -> TenantId {
    TenantId::parse(TENANT).unwrap()
}

fn credentials() -> M365AppCredentials {
    M365AppCredentials::new(CLIENT_ID, SecretString::new(CLIENT_SECRET))
}

#[tokio::test]
async fn every_page_of_the_directory_is_read_and_each_protected_mailbox_counted_once() {
    let (sim, client) = directory().await;
    sim.add_licensed_mailboxes(TENANT, 2100);
    let plan = |id: &str| json!({"capabilityStatus": "Enabled", "service": "exchange", "servicePlanId": id});
    sim.add_user(
        TENANT,
        json!({"id": "two-plans", "accountEnabled": true, "userType": "Member",
        "assignedPlans": [plan(vigil::billing::mailboxes::EXCHANGE_PLAN_1), plan(EXCHANGE_PLAN_2)]}),
    );
    sim.add_user(TENANT, json!({"id": "guest", "accountEnabled": true, "userType": "Guest", "assignedPlans": [plan(EXCHANGE_PLAN_2)]}));
    sim.add_user(TENANT, json!({"id": "blocked", "accountEnabled": false, "userType": "Member", "assignedPlans": [plan(EXCHANGE_PLAN_2)]}));
    sim.add_user(
        TENANT,
        json!({"id": "foundation", "accountEnabled": true, "userType": "Member", "assignedPlans": [plan(EXCHANGE_FOUNDATION)]}),
    );
    let users = client.users(&tenant(), &credentials()).await.unwrap();
    let found = tally(&users);
    assert_eq!((found.users, found.protected), (2104, 2101));
    let listings: Vec<_> = sim.request_log().into_iter().filter(|r| r.path.ends_with("/v1.0/users")).collect();
    assert_eq!(listings.len(), 3, "999 per page");
    assert_eq!(listings[0].query_param("$select").as_deref(), Some("id,accountEnabled,userType,assignedPlans"));
}

#[tokio::test]
async fn throttling_is_transient_with_microsofts_retry_after() {
    let (sim, client) = directory().await;
    sim.fail_next(M365Operation::Users, M365Failure::Throttle, 1);
    let error = client.users(&tenant(), &credentials()).await.unwrap_err();
    assert!(matches!(error, SourceError::Throttled { .. }), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Transient);
    assert_eq!(error.retry_after(), Some(std::time::Duration::from_secs(1)));
    assert!(client.users(&tenant(), &credentials()).await.is_ok(), "the retry is served");
}

#[tokio::test]
async fn a_tenant_without_user_read_all_is_refused_naming_the_permission() {
    let (sim, client) = directory().await;
    sim.set_users_role(TENANT, false);
    let error = client.users(&tenant(), &credentials()).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Permanent);
    assert!(error.to_string().contains("User.Read.All"), "{error}");
}

#[tokio::test]
async fn the_simulator_refuses_a_count_without_the_advanced_query_header() {
    let (sim, _client) = directory().await;
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!("{}/{TENANT}/oauth2/v2.0/token", sim.login_base()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("scope", &format!("{}/.default", sim.graph_base())),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!("{}/v1.0/users?$select=id&$count=true", sim.graph_base());
    let bearer = token["access_token"].as_str().unwrap();
    let without = http.get(&url).bearer_auth(bearer).send().await.unwrap();
    assert_eq!(without.status(), 400);
    let with = http.get(&url).bearer_auth(bearer).header("ConsistencyLevel", "eventual").send().await.unwrap();
    assert_eq!(with.status(), 200);
    let body: serde_json::Value = with.json().await.unwrap();
    assert_eq!(body["@odata.count"], 0);
}
