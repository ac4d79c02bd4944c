//! Principals and roles through the router, on the in-memory stores: the isolation matrix
//! (every route × every role: allowed exactly when the role's permissions in the README's
//! table say so), alert categories hiding alerts, policies and suppressions from a limited
//! principal, other MSPs seeing nothing, the token lifecycle over HTTP, the authenticated actor
//! in histories (never a header) and an audit entry for every configuration change.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::http::StatusCode;
use chrono::Utc;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use support::{Api, api, assert_problem};
use vigil::access::{Access, Permission, Role};
use vigil::alert::{AlertHits, Category};
use vigil::ids::{AlertId, MspId, RecordId, TenantId};
use vigil::services::access::NewPrincipal;

const TM_POLICY: &str = "builtin.forwarding-rule";
/// A tenant onboarded by consent link (the MSP app's credentials).
const CONSENTED: &str = "6f2a3d9b-8e52-4a1f-8b62-3c8e1d0f5b22";
const DLP_POLICY: &str = "builtin.mass-download";

/// Stores an alert of `category` for `msp` and returns its id.
async fn raise(api: &Api, msp: &str, category: Category) -> String {
    let msp_id = MspId::parse(msp).unwrap();
    let tenant = TenantId::parse(support::TENANT).unwrap();
    let mut alert = vigil::contract::sample_alert_for(&msp_id, &tenant, Utc::now());
    alert.category = category;
    if category == Category::DataLossPrevention {
        alert.policy_id = vigil::ids::PolicyId::parse(DLP_POLICY).unwrap();
    }
    alert.id = AlertId::derive(&[msp, &format!("{category:?}")]);
    let hits = AlertHits::of_records(alert, vec![(RecordId::parse("r1").unwrap(), Utc::now())]);
    api.state.admin.alerts.record_hits(&hits, Utc::now()).await.unwrap().id.to_string()
}

/// A principal of `acme` with `role`, made by the operator, and a token for it.
async fn principal(api: &Api, role: Role, categories: Option<&[Category]>, scopes: &[Permission]) -> (String, String) {
    let operator = Access::operator(&MspId::parse("acme").unwrap());
    let request = NewPrincipal {
        name: format!("{} principal", role.as_str()),
        email: (role != Role::Automation).then(|| format!("{}@acme.example", role.as_str())),
        role,
        categories: categories.map(|c| c.iter().copied().collect()),
        scopes: scopes.iter().copied().collect(),
    };
    let created = api.state.access.create_principal(&operator, request).await.unwrap();
    let token = api.token_for("acme", &created.principal_id).await;
    (created.principal_id.to_string(), token)
}

/// What the routes below act on, created by acme's owner.
struct Seed {
    tm_alert: String,
    suppression: String,
    principal: String,
    bulk_job: String,
}

async fn seed(api: &Api) -> Seed {
    let tenant = json!({"tenant_id": support::TENANT, "name": "Contoso", "domains": ["contoso.com"]});
    assert_eq!(api.send("POST", "/v1/tenants", tenant).await.0, StatusCode::CREATED);
    assert_eq!(api.send("PUT", "/v1/destinations/psa", support::connectwise_destination()).await.0, StatusCode::CREATED);
    let custom = json!({"id": "custom.seeded", "name": "Seeded", "category": "ThreatManagement", "severity": "Low",
                        "activity": {"operations": ["New-InboxRule"]}});
    assert_eq!(api.send("POST", "/v1/policies", custom).await.0, StatusCode::CREATED);
    let suppression = api.send("POST", "/v1/suppressions", json!({"policy_id": TM_POLICY, "reason": "seeded"})).await;
    assert_eq!(suppression.0, StatusCode::CREATED, "{:?}", suppression.2);
    let tm_alert = raise(api, "acme", Category::ThreatManagement).await;
    raise(api, "acme", Category::DataLossPrevention).await;
    let (principal, _) = principal(api, Role::Analyst, Some(&[Category::ThreatManagement]), &[]).await;
    let relationship = vigil::contract::sample_relationship("rel-1", &TenantId::parse(support::TENANT).unwrap());
    api.state.relationships.store.replace_relationships(&MspId::parse("acme").unwrap(), &[relationship]).await.unwrap();
    let owner = Access::operator(&MspId::parse("acme").unwrap());
    // A second tenant, watched through the MSP app (the matrix gives the first its own
    // credentials, which the access test does not use).
    let tenant_id = TenantId::parse(CONSENTED).unwrap();
    let app = vigil::tenant::M365AppCredentials::new("msp-app", vigil::secret::SecretString::new("s3cret"));
    api.state.onboarding.register_app(&owner, app, None).await.unwrap();
    let link = api.state.onboarding.issue_link(&owner, "Contoso", Some(tenant_id.clone()), None, None).await.unwrap();
    let state = url::Url::parse(&link.url).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let redirect = format!("tenant={tenant_id}&state={state}&admin_consent=True");
    api.state.onboarding.complete_consent(&MspId::parse("acme").unwrap(), &redirect).await.unwrap();
    let customer = TenantId::parse(support::TENANT).unwrap();
    let bulk_job = api.state.onboarding.bulk_onboard(&owner, std::slice::from_ref(&customer), None).await.unwrap().id;
    Seed { tm_alert, suppression: suppression.2["id"].as_str().unwrap().to_owned(), principal, bulk_job }
}

/// One route: method, path, body, the permissions it needs (all of them), the alert category
/// a category-limited caller must see, and what an allowed caller gets.
struct Route {
    method: &'static str,
    path: String,
    body: Option<Value>,
    needs: &'static [Permission],
    category: Option<Category>,
    allowed: StatusCode,
}

fn routes(seed: &Seed) -> Vec<Route> {
    use Permission::*;
    let t = support::TENANT;
    let (alert, suppression, principal) = (&seed.tm_alert, &seed.suppression, &seed.principal);
    let route = |method, path: String, body: Option<Value>, needs, allowed| Route { method, path, body, needs, category: None, allowed };
    let permissions_category = |method, path: &str, needs| Route {
        method,
        path: path.into(),
        body: None,
        needs,
        category: Some(Category::Permissions),
        allowed: StatusCode::OK,
    };
    let custom = json!({"id": "custom.made", "name": "Made", "category": "ThreatManagement", "severity": "Low",
                        "activity": {"operations": ["Set-Mailbox"]}});
    let records = json!({"policy": TM_POLICY, "records": []});
    let bare_destination = json!({"name": "ConnectWise", "settings": {"kind": "connectwise", "api_root": support::CW_ROOT},
                                  "routing": {"default_place": "1"}});
    vec![
        route("GET", "/v1/me".into(), None, &[], StatusCode::OK),
        route("GET", "/v1/msp".into(), None, &[ConfigRead], StatusCode::OK),
        route("PUT", "/v1/msp".into(), Some(json!({"first_lookback_hours": 24})), &[ConfigWrite], StatusCode::OK),
        // Before the partner tenant is connected: refused.
        route("POST", "/v1/admin-relationships/refresh".into(), None, &[ConfigWrite], StatusCode::CONFLICT),
        route(
            "PUT",
            "/v1/msp/partner-tenant".into(),
            Some(json!({"tenant_id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "client_id": "partner-app", "client_secret": "s3cret"})),
            &[CredentialsWrite],
            StatusCode::OK,
        ),
        route("GET", "/v1/tenants".into(), None, &[ConfigRead], StatusCode::OK),
        route("GET", format!("/v1/tenants/{t}"), None, &[ConfigRead], StatusCode::OK),
        route(
            "POST",
            "/v1/tenants".into(),
            Some(json!({"tenant_id": "9a1c8f7e-0000-4000-8000-00000000aa02", "name": "Fabrikam"})),
            &[ConfigWrite],
            StatusCode::CREATED,
        ),
        route(
            "PUT",
            format!("/v1/tenants/{t}/m365-credentials"),
            Some(json!({"client_id": "app", "client_secret": "s3cret"})),
            &[CredentialsWrite],
            StatusCode::NO_CONTENT,
        ),
        route("GET", format!("/v1/tenants/{t}/streams"), None, &[ConfigRead], StatusCode::OK),
        route("GET", "/v1/coverage".into(), None, &[ConfigRead], StatusCode::OK),
        route("PUT", format!("/v1/tenants/{t}/streams"), Some(json!({"streams": null})), &[ConfigWrite], StatusCode::OK),
        route("PUT", format!("/v1/tenants/{t}/destinations/psa/company"), Some(json!({"company": "250"})), &[ConfigWrite], StatusCode::OK),
        route("GET", "/v1/destinations".into(), None, &[ConfigRead], StatusCode::OK),
        route("GET", "/v1/destinations/psa".into(), None, &[ConfigRead], StatusCode::OK),
        route("PUT", "/v1/destinations/psa".into(), Some(bare_destination), &[ConfigWrite], StatusCode::OK),
        route(
            "PUT",
            "/v1/destinations/psa2".into(),
            Some(support::connectwise_destination()),
            &[ConfigWrite, CredentialsWrite],
            StatusCode::CREATED,
        ),
        route("POST", "/v1/destinations/psa/test".into(), None, &[ConfigWrite], StatusCode::OK),
        route("GET", "/v1/destinations/psa/places".into(), None, &[ConfigWrite], StatusCode::OK),
        route("GET", "/v1/destinations/psa/companies?search=Con".into(), None, &[ConfigWrite], StatusCode::OK),
        route("GET", "/v1/destinations/psa/priorities".into(), None, &[ConfigWrite], StatusCode::OK),
        route("GET", "/v1/destinations/psa/statuses?place=1".into(), None, &[ConfigWrite], StatusCode::OK),
        route("GET", "/v1/destinations/psa/contacts?company=250".into(), None, &[ConfigWrite], StatusCode::OK),
        route("GET", "/v1/destinations/psa/technicians".into(), None, &[ConfigWrite], StatusCode::OK),
        route("GET", "/v1/destinations/psa/sites?company=250".into(), None, &[ConfigWrite], StatusCode::OK),
        route("GET", "/v1/alerts".into(), None, &[AlertsRead], StatusCode::OK),
        route("GET", format!("/v1/alerts/{alert}"), None, &[AlertsRead], StatusCode::OK),
        route("PATCH", format!("/v1/alerts/{alert}"), Some(json!({"comment": "looked"})), &[AlertsTriage], StatusCode::OK),
        route(
            "POST",
            format!("/v1/alerts/{alert}/suppress"),
            Some(json!({"reason": "noise"})),
            &[AlertsRead, SuppressionsWrite],
            StatusCode::CREATED,
        ),
        route("GET", "/v1/siem/alerts".into(), None, &[AlertsRead], StatusCode::OK),
        route("GET", "/v1/policies".into(), None, &[ConfigRead], StatusCode::OK),
        route("GET", format!("/v1/policies/{TM_POLICY}"), None, &[ConfigRead], StatusCode::OK),
        route("POST", "/v1/policies".into(), Some(custom.clone()), &[ConfigWrite], StatusCode::CREATED),
        route("PUT", "/v1/policies/custom.seeded".into(), Some(custom.clone().tap_id("custom.seeded")), &[ConfigWrite], StatusCode::OK),
        route("POST", "/v1/policies/test".into(), Some(records), &[ConfigWrite], StatusCode::OK),
        route("PUT", format!("/v1/tenants/{t}/policies/{TM_POLICY}"), Some(json!({"enabled": false})), &[ConfigWrite], StatusCode::OK),
        route("GET", format!("/v1/tenants/{t}/policies"), None, &[ConfigRead], StatusCode::OK),
        route("PUT", format!("/v1/tenants/{t}/policy-context"), Some(json!({"domains": ["contoso.com"]})), &[ConfigWrite], StatusCode::OK),
        route("GET", "/v1/suppressions".into(), None, &[ConfigRead], StatusCode::OK),
        route(
            "POST",
            "/v1/suppressions".into(),
            Some(json!({"policy_id": TM_POLICY, "reason": "r"})),
            &[SuppressionsWrite],
            StatusCode::CREATED,
        ),
        route("DELETE", format!("/v1/suppressions/{suppression}"), None, &[SuppressionsWrite], StatusCode::NO_CONTENT),
        route(
            "POST",
            format!("/v1/tenants/{t}/replays"),
            Some(json!({"policy_id": TM_POLICY, "hours": 1})),
            &[ConfigWrite],
            StatusCode::ACCEPTED,
        ),
        route("GET", format!("/v1/tenants/{t}/replays/rpl-0000000000000000"), None, &[ConfigRead], StatusCode::NOT_FOUND),
        route("GET", "/v1/principals".into(), None, &[PrincipalsManage], StatusCode::OK),
        route(
            "POST",
            "/v1/principals".into(),
            Some(json!({"name": "Rae", "email": "rae@acme.example", "role": "read-only"})),
            &[PrincipalsManage],
            StatusCode::CREATED,
        ),
        route("GET", format!("/v1/principals/{principal}"), None, &[PrincipalsManage], StatusCode::OK),
        route("PATCH", format!("/v1/principals/{principal}"), Some(json!({"name": "Ann"})), &[PrincipalsManage], StatusCode::OK),
        route("GET", format!("/v1/principals/{principal}/tokens"), None, &[PrincipalsManage], StatusCode::OK),
        route(
            "POST",
            format!("/v1/principals/{principal}/tokens"),
            Some(json!({"name": "laptop"})),
            &[PrincipalsManage],
            StatusCode::CREATED,
        ),
        route("DELETE", format!("/v1/principals/{principal}/tokens/t-unknown"), None, &[PrincipalsManage], StatusCode::NOT_FOUND),
        route(
            "POST",
            format!("/v1/principals/{principal}/tokens/t-unknown/rotate"),
            Some(json!({})),
            &[PrincipalsManage],
            StatusCode::NOT_FOUND,
        ),
        route("DELETE", format!("/v1/principals/{principal}"), None, &[PrincipalsManage], StatusCode::NO_CONTENT),
        route("GET", "/v1/audit-log".into(), None, &[AuditRead], StatusCode::OK),
        route("GET", "/v1/mailbox-counts".into(), None, &[ConfigRead], StatusCode::OK),
        route("GET", "/v1/mailbox-counts/export".into(), None, &[ConfigRead], StatusCode::OK),
        route("GET", format!("/v1/tenants/{t}/mailbox-counts"), None, &[ConfigRead], StatusCode::OK),
        route("GET", format!("/v1/tenants/{t}/mailbox-counts/export?from=2026-11-01&to=2026-11-30"), None, &[ConfigRead], StatusCode::OK),
        route("GET", "/v1/billing/settings".into(), None, &[ConfigRead], StatusCode::OK),
        route("GET", format!("/v1/tenants/{t}/licences"), None, &[ConfigRead], StatusCode::OK),
        route("GET", "/v1/billing/mappings".into(), None, &[ConfigRead], StatusCode::OK),
        // The seeded destination has no billing side: the mapping is refused.
        route(
            "PUT",
            format!("/v1/tenants/{t}/billing/psa"),
            Some(json!({"agreement_id": "7", "product_id": "VIGIL-MBX"})),
            &[ConfigWrite],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        route("DELETE", format!("/v1/tenants/{t}/billing/psa"), None, &[ConfigWrite], StatusCode::NOT_FOUND),
        route("POST", "/v1/billing/dry-run".into(), Some(json!({})), &[ConfigRead], StatusCode::OK),
        route("POST", "/v1/billing/sync".into(), Some(json!({"day": "2026-12-06"})), &[ConfigWrite], StatusCode::OK),
        route("PUT", "/v1/billing/settings".into(), Some(json!({"count_retention_days": 90})), &[ConfigWrite], StatusCode::OK),
        permissions_category("GET", "/v1/admin-relationships", &[ConfigRead]),
        permissions_category("GET", "/v1/admin-relationships/summary", &[ConfigRead]),
        permissions_category("GET", "/v1/admin-relationships/export?sort=-days_inactive", &[ConfigRead]),
        permissions_category("GET", "/v1/admin-relationships/removals", &[ConfigRead]),
        route(
            "POST",
            "/v1/admin-relationships/removal-previews".into(),
            Some(json!({"relationship_ids": ["rel-1"]})),
            &[RelationshipsRemove],
            StatusCode::CREATED,
        ),
        route(
            "POST",
            "/v1/admin-relationships/removals".into(),
            Some(json!({"token": "vrp_unknown"})),
            &[RelationshipsRemove],
            StatusCode::NOT_FOUND,
        ),
        route(
            "PUT",
            "/v1/onboarding/app".into(),
            Some(json!({"client_id": "msp-app", "client_secret": "s3cret"})),
            &[CredentialsWrite],
            StatusCode::OK,
        ),
        route("GET", "/v1/onboarding/app".into(), None, &[ConfigRead], StatusCode::OK),
        route(
            "PUT",
            "/v1/msp/delegated-credential".into(),
            Some(json!({"refresh_token": "technician-refresh-token"})),
            &[CredentialsWrite],
            StatusCode::NO_CONTENT,
        ),
        route("DELETE", "/v1/msp/delegated-credential".into(), None, &[CredentialsWrite], StatusCode::NO_CONTENT),
        route(
            "POST",
            "/v1/onboarding/consent-links".into(),
            Some(json!({"customer_name": "Contoso", "tenant_id": t})),
            &[CredentialsWrite],
            StatusCode::CREATED,
        ),
        route("GET", "/v1/onboarding/consent-links".into(), None, &[ConfigRead], StatusCode::OK),
        route("POST", format!("/v1/tenants/{CONSENTED}/access-test"), None, &[ConfigWrite], StatusCode::OK),
        route("GET", format!("/v1/tenants/{CONSENTED}/access-test"), None, &[ConfigRead], StatusCode::OK),
        route("GET", "/v1/onboarding/discovery".into(), None, &[ConfigRead], StatusCode::OK),
        route("POST", "/v1/onboarding/bulk".into(), Some(json!({"tenant_ids": [t]})), &[CredentialsWrite], StatusCode::CREATED),
        route("GET", format!("/v1/onboarding/bulk/{}", seed.bulk_job), None, &[ConfigRead], StatusCode::OK),
        route("DELETE", "/v1/policies/custom.seeded".into(), None, &[ConfigWrite], StatusCode::NO_CONTENT),
        route("DELETE", "/v1/destinations/psa".into(), None, &[ConfigWrite], StatusCode::NO_CONTENT),
        // Last: an offboarded tenant is no longer polled (nothing above uses it after this).
        route("GET", format!("/v1/tenants/{t}/offboarding"), None, &[ConfigRead], StatusCode::NOT_FOUND),
        route("POST", format!("/v1/tenants/{t}/offboarding"), Some(json!({"retention_days": 0})), &[TenantsOffboard], StatusCode::ACCEPTED),
    ]
}

trait TapId {
    fn tap_id(self, id: &str) -> Value;
}

impl TapId for Value {
    fn tap_id(mut self, id: &str) -> Value {
        self["id"] = json!(id);
        self
    }
}

/// Every role of the README's table, and automations with one and with two scopes.
fn callers() -> Vec<(Role, Option<Vec<Category>>, Vec<Permission>)> {
    let tm = Some(vec![Category::ThreatManagement]);
    vec![
        (Role::Owner, None, vec![]),
        (Role::Engineer, None, vec![]),
        (Role::Analyst, tm.clone(), vec![]),
        (Role::ReadOnly, tm.clone(), vec![]),
        (Role::Automation, None, vec![Permission::AlertsRead]),
        (Role::Automation, None, vec![Permission::SuppressionsWrite, Permission::AuditRead]),
    ]
}

#[tokio::test]
async fn every_route_answers_every_role_exactly_as_its_permissions_say() {
    let mut failures = Vec::new();
    for (role, categories, scopes) in callers() {
        // A fresh API per caller, so one caller's deletions never change the next one's answers.
        let api = api().await;
        let seed = seed(&api).await;
        let (_, token) = principal(&api, role, categories.as_deref(), &scopes).await;
        let held: BTreeSet<Permission> =
            if role == Role::Automation { scopes.iter().copied().collect() } else { role.permissions().iter().copied().collect() };
        for route in routes(&seed) {
            let body = route.body.as_ref().map(Value::to_string);
            let (status, content_type, answer) = api.call(route.method, &route.path, Some(&token), body.as_deref()).await;
            let sees = route.category.is_none_or(|c| categories.as_ref().is_none_or(|limited| limited.contains(&c)));
            let allowed = route.needs.iter().all(|p| held.contains(p)) && sees;
            let expected = if allowed { route.allowed } else { StatusCode::FORBIDDEN };
            if status != expected {
                failures.push(format!(
                    "{} {scopes:?}: {} {} → {status} (expected {expected}): {answer}",
                    role.as_str(),
                    route.method,
                    route.path
                ));
            }
            if status == StatusCode::FORBIDDEN {
                assert_eq!(content_type, "application/problem+json");
                assert!(answer["detail"].as_str().unwrap().to_lowercase().contains("permission"), "{answer}");
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test]
async fn an_analyst_limited_to_threat_management_never_sees_a_data_loss_prevention_alert() {
    let api = api().await;
    let seed = seed(&api).await;
    let dlp = AlertId::derive(&["acme", "DataLossPrevention"]).to_string();
    let (_, analyst) = principal(&api, Role::Analyst, Some(&[Category::ThreatManagement]), &[]).await;
    let as_analyst = |method: &'static str, path: String, body: Option<Value>| {
        let token = analyst.clone();
        let api = &api;
        async move { api.call(method, &path, Some(&token), body.map(|b| b.to_string()).as_deref()).await }
    };
    let ids =
        |body: &Value| -> Vec<String> { body["alerts"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect() };

    let owner_list = api.acme("GET", "/v1/alerts", None).await.2;
    assert_eq!(ids(&owner_list).len(), 2, "the owner sees both");
    assert_eq!(ids(&as_analyst("GET", "/v1/alerts".into(), None).await.2), vec![seed.tm_alert.clone()]);
    assert_eq!(ids(&as_analyst("GET", "/v1/alerts?category=DataLossPrevention".into(), None).await.2), Vec::<String>::new());
    assert_eq!(ids(&as_analyst("GET", "/v1/siem/alerts".into(), None).await.2), vec![seed.tm_alert.clone()], "nor in the SIEM feed");
    for (method, path, body) in [
        ("GET", format!("/v1/alerts/{dlp}"), None),
        ("PATCH", format!("/v1/alerts/{dlp}"), Some(json!({"status": "Resolved"}))),
        ("POST", format!("/v1/alerts/{dlp}/suppress"), Some(json!({"reason": "hide it"}))),
        ("GET", format!("/v1/policies/{DLP_POLICY}"), None),
        ("POST", "/v1/suppressions".into(), Some(json!({"policy_id": DLP_POLICY, "reason": "hide it"}))),
    ] {
        assert_problem(&as_analyst(method, path.clone(), body).await, StatusCode::NOT_FOUND);
    }
    assert_eq!(api.acme("GET", &format!("/v1/alerts/{dlp}"), None).await.2["status"], "New", "nothing was changed");
    let policies = as_analyst("GET", "/v1/policies".into(), None).await.2;
    let categories: BTreeSet<&str> =
        policies["policies"].as_array().unwrap().iter().map(|p| p["policy"]["category"].as_str().unwrap()).collect();
    assert_eq!(categories, BTreeSet::from(["ThreatManagement"]), "only policies of its categories");
    for policy in [TM_POLICY, DLP_POLICY] {
        assert_eq!(
            api.send("PUT", &format!("/v1/tenants/{}/policies/{policy}", support::TENANT), json!({"enabled": false})).await.0,
            StatusCode::OK
        );
    }
    let switches = as_analyst("GET", format!("/v1/tenants/{}/policies", support::TENANT), None).await.2;
    assert_eq!(
        switches["switches"],
        json!([{"tenant_id": support::TENANT, "policy_id": TM_POLICY, "enabled": false}]),
        "nor their switches"
    );
    assert_eq!(
        api.acme("GET", &format!("/v1/tenants/{}/policies", support::TENANT), None).await.2["switches"].as_array().unwrap().len(),
        2
    );
    assert_problem(
        &as_analyst("POST", "/v1/suppressions".into(), Some(json!({"tenant_id": support::TENANT, "reason": "all of it"}))).await,
        StatusCode::FORBIDDEN,
    );
    let dlp_rule = api.send("POST", "/v1/suppressions", json!({"policy_id": DLP_POLICY, "reason": "owner's"})).await.2;
    let tenant_rule = api.send("POST", "/v1/suppressions", json!({"tenant_id": support::TENANT, "reason": "owner's"})).await.2;
    let visible: Vec<String> = as_analyst("GET", "/v1/suppressions".into(), None).await.2["suppressions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(visible, vec![seed.suppression.clone()], "rules of other categories, or of no policy, are not shown");
    for rule in [&dlp_rule, &tenant_rule] {
        let id = rule["id"].as_str().unwrap();
        assert_problem(&as_analyst("DELETE", format!("/v1/suppressions/{id}"), None).await, StatusCode::NOT_FOUND);
    }
    let replay = api.send("POST", &format!("/v1/tenants/{}/replays", support::TENANT), json!({"policy_id": DLP_POLICY, "hours": 1})).await;
    assert_eq!(replay.0, StatusCode::ACCEPTED, "{:?}", replay.2);
    let replay_path = format!("/v1/tenants/{}/replays/{}", support::TENANT, replay.2["replay_id"].as_str().unwrap());
    assert_eq!(api.acme("GET", &replay_path, None).await.0, StatusCode::OK);
    let (_, reader) = principal(&api, Role::ReadOnly, Some(&[Category::ThreatManagement]), &[]).await;
    let hidden = api.call("GET", &replay_path, Some(&reader), None).await;
    assert_problem(&hidden, StatusCode::NOT_FOUND);
    let read = api.call("GET", &format!("/v1/alerts/{}", seed.tm_alert), Some(&reader), None).await;
    assert_eq!(read.0, StatusCode::OK, "a reader reads its categories");
    let patched = api.call("PATCH", &format!("/v1/alerts/{}", seed.tm_alert), Some(&reader), Some(r#"{"status": "Resolved"}"#)).await;
    assert_problem(&patched, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn another_msps_owner_reaches_nothing_of_this_msp() {
    let api = api().await;
    let seed = seed(&api).await;
    let other = api.other_token.clone();
    let t = support::TENANT;
    for (method, path) in [
        ("GET", format!("/v1/tenants/{t}")),
        ("GET", format!("/v1/alerts/{}", seed.tm_alert)),
        ("PATCH", format!("/v1/alerts/{}", seed.tm_alert)),
        ("GET", "/v1/destinations/psa".into()),
        ("DELETE", format!("/v1/suppressions/{}", seed.suppression)),
        ("GET", format!("/v1/principals/{}", seed.principal)),
        ("PATCH", format!("/v1/principals/{}", seed.principal)),
        ("POST", format!("/v1/principals/{}/tokens", seed.principal)),
        ("DELETE", format!("/v1/principals/{}", seed.principal)),
    ] {
        let body = (method != "GET" && method != "DELETE").then_some(r#"{"name": "x"}"#);
        let answer = api.call(method, &path, Some(&other), body).await;
        assert!(matches!(answer.0, StatusCode::NOT_FOUND | StatusCode::UNPROCESSABLE_ENTITY), "{method} {path}: {:?}", answer);
        assert_ne!(answer.0, StatusCode::OK);
    }
    for (path, key) in [("/v1/alerts", "alerts"), ("/v1/principals", "principals"), ("/v1/suppressions", "suppressions")] {
        let listed = api.call("GET", path, Some(&other), None).await.2;
        let ids: Vec<&Value> = listed[key].as_array().unwrap().iter().collect();
        assert!(ids.iter().all(|item| !item.to_string().contains("acme")), "{path}: {listed}");
    }
    let audit = api.call("GET", "/v1/audit-log", Some(&other), None).await.2;
    assert!(audit["entries"].as_array().unwrap().iter().all(|e| e["msp_id"] == "other"), "{audit}");
    assert_eq!(api.acme("GET", &format!("/v1/principals/{}", seed.principal), None).await.0, StatusCode::OK, "untouched");
}

#[tokio::test]
async fn a_token_issued_through_the_api_is_shown_once_works_until_revoked_and_rotates_with_a_grace_period() {
    let api = api().await;
    let created = api.send("POST", "/v1/principals", json!({"name": "SIEM", "role": "automation", "scopes": ["alerts:read"]})).await;
    assert_eq!(created.0, StatusCode::CREATED, "{:?}", created.2);
    assert_eq!(created.2["permissions"], json!(["alerts:read"]));
    let id = created.2["principal_id"].as_str().unwrap().to_owned();
    let issued = api.send("POST", &format!("/v1/principals/{id}/tokens"), json!({"name": "sentinel", "expires_in_days": 30})).await;
    assert_eq!(issued.0, StatusCode::CREATED);
    let token = issued.2["token"].as_str().unwrap().to_owned();
    let token_id = issued.2["token_id"].as_str().unwrap().to_owned();
    assert!(token.ends_with(issued.2["ends_with"].as_str().unwrap()));
    let listed = api.acme("GET", &format!("/v1/principals/{id}/tokens"), None).await.2;
    assert!(!listed.to_string().contains(&token), "the token's text is never listed");
    assert_eq!(listed["tokens"][0]["live"], true);
    let me = api.call("GET", "/v1/me", Some(&token), None).await;
    assert_eq!((me.0, me.2["role"].clone(), me.2["principal_id"].clone()), (StatusCode::OK, json!("automation"), json!(id)));
    assert_eq!(api.call("GET", "/v1/siem/alerts", Some(&token), None).await.0, StatusCode::OK);
    assert_problem(&api.call("GET", "/v1/tenants", Some(&token), None).await, StatusCode::FORBIDDEN);

    let rotated = api.send("POST", &format!("/v1/principals/{id}/tokens/{token_id}/rotate"), json!({"grace_minutes": 10})).await;
    assert_eq!(rotated.0, StatusCode::CREATED, "{:?}", rotated.2);
    let new_token = rotated.2["token"].as_str().unwrap().to_owned();
    assert_eq!(api.call("GET", "/v1/me", Some(&token), None).await.0, StatusCode::OK, "the old token works for the grace period");
    assert_eq!(api.call("GET", "/v1/me", Some(&new_token), None).await.0, StatusCode::OK);
    let revoke = api.acme("DELETE", &format!("/v1/principals/{id}/tokens/{token_id}"), None).await;
    assert_eq!(revoke.0, StatusCode::NO_CONTENT);
    assert_problem(&api.call("GET", "/v1/me", Some(&token), None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(api.call("GET", "/v1/me", Some(&new_token), None).await.0, StatusCode::OK, "revoking one token leaves the other");
    assert_eq!(api.acme("DELETE", &format!("/v1/principals/{id}"), None).await.0, StatusCode::NO_CONTENT);
    assert_problem(&api.call("GET", "/v1/me", Some(&new_token), None).await, StatusCode::UNAUTHORIZED);
    for bad in [json!({"name": ""}), json!({"name": "x", "expires_in_days": 0}), json!({"name": "x", "expires_in_days": 398})] {
        let me = api.acme("GET", "/v1/me", None).await.2["principal_id"].as_str().unwrap().to_owned();
        assert_problem(&api.send("POST", &format!("/v1/principals/{me}/tokens"), bad).await, StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert_problem(
        &api.send("POST", "/v1/principals", json!({"name": "x", "role": "automation", "scopes": ["principals:manage"]})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_problem(
        &api.send("POST", "/v1/principals", json!({"name": "x", "email": "x@a.example", "role": "root"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
}

#[tokio::test]
async fn the_actor_of_every_change_is_the_authenticated_principal_and_every_configuration_change_is_audited() {
    let api = api().await;
    let seed = seed(&api).await;
    let (analyst_id, analyst) = principal(&api, Role::Analyst, None, &[]).await;
    let body = r#"{"comment": "checked with the user"}"#;
    let path = format!("/v1/alerts/{}", seed.tm_alert);
    let request = axum::http::Request::builder()
        .method("PATCH")
        .uri(&path)
        .header("authorization", format!("Bearer {analyst}"))
        .header("content-type", "application/json")
        .header("x-vigil-actor", "someone-else@msp.example")
        .body(axum::body::Body::from(body))
        .unwrap();
    let response = tower::ServiceExt::oneshot(config_api::app(api.state.clone()), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let alert = api.acme("GET", &path, None).await.2;
    let author = alert["triage"]["comments"][0]["author"].as_str().unwrap();
    assert_eq!(author, format!("analyst principal ({analyst_id})"), "the header is ignored");
    assert!(alert["triage"]["history"].as_array().unwrap().iter().all(|h| h["author"] == author));

    // Every route that changes configuration leaves one entry naming its principal.
    let me = api.acme("GET", "/v1/me", None).await.2["principal_id"].as_str().unwrap().to_owned();
    let before = api.acme("GET", "/v1/audit-log?limit=200", None).await.2["entries"].as_array().unwrap().len();
    let changes = routes(&seed).into_iter().filter(|r| {
        r.method != "GET"
            && r.allowed.is_success()
            && !r.path.starts_with("/v1/alerts/")
            && !r.path.ends_with("/test")
            && !r.path.ends_with("/replays")
            // A dry run changes nothing.
            && !r.path.ends_with("/dry-run")
    });
    let mut expected = 0;
    for route in changes {
        let answer = api.acme(route.method, &route.path, route.body.clone()).await;
        assert!(answer.0.is_success(), "{} {}: {:?}", route.method, route.path, answer);
        expected += 1;
    }
    let entries = api.acme("GET", "/v1/audit-log?limit=200", None).await.2["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len() - before, expected, "{entries:#?}");
    assert!(entries[..expected].iter().all(|e| e["actor"]["principal_id"] == me.as_str()));
    let actions: BTreeSet<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    for action in [
        "tenant.registered",
        "tenant.m365-credentials-set",
        "tenant.streams-changed",
        "tenant.company-linked",
        "destination.created",
        "destination.replaced",
        "destination.deleted",
        "msp.settings-changed",
        "msp.partner-tenant-connected",
        "onboarding.delegated-credential-stored",
        "onboarding.delegated-credential-deleted",
        "policy.created",
        "policy.replaced",
        "policy.deleted",
        "tenant.policy-switched",
        "tenant.policy-context-changed",
        "suppression.created",
        "suppression.deleted",
        "principal.created",
        "principal.changed",
        "principal.deleted",
        "token.issued",
    ] {
        assert!(actions.contains(action), "{action} missing from {actions:?}");
    }
    assert!(!entries.iter().any(|e| e.to_string().contains("s3cret") || e.to_string().contains("priv-secret")), "no secret in the log");
    let page = api.acme("GET", "/v1/audit-log?limit=2", None).await.2;
    let next = api.acme("GET", &format!("/v1/audit-log?limit=2&cursor={}", page["next_cursor"].as_str().unwrap()), None).await.2;
    assert_eq!(next["entries"][0], entries[2], "pages continue");
    assert_problem(&api.acme("GET", "/v1/audit-log?cursor=%27%3B", None).await, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Whether a concrete path (query left out) is an instance of an OpenAPI path template.
fn instance_of(path: &str, template: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    let (parts, templates): (Vec<&str>, Vec<&str>) = (path.split('/').collect(), template.split('/').collect());
    parts.len() == templates.len() && parts.iter().zip(&templates).all(|(p, t)| (t.starts_with('{') && t.ends_with('}')) || p == t)
}

#[tokio::test]
async fn the_matrix_covers_every_documented_operation_so_a_new_route_cannot_skip_it() {
    let api = api().await;
    let seed = seed(&api).await;
    let matrix = routes(&seed);
    let document = config_api::openapi::document();
    // The consent redirect carries no token (its signed state authenticates it): tested in
    // tests/onboarding.rs.
    let public_or_gone =
        ["/v1/health", "/v1/openapi.json", "/v1/psa/connectwise", "/v1/tenants/{tenant_id}/connectwise-company", "/v1/consent/{msp_id}"];
    let mut missing = Vec::new();
    for (template, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let covered = matrix.iter().any(|r| r.method.eq_ignore_ascii_case(method) && instance_of(&r.path, template));
            if !covered && !public_or_gone.contains(&template.as_str()) {
                missing.push(format!("{} {template}", method.to_uppercase()));
            }
        }
    }
    assert!(missing.is_empty(), "operations the role matrix does not call: {missing:?}");
}
