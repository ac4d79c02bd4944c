//! Onboarding by consent link end to end on the local stack (moto, the Microsoft 365 simulator,
//! every handler behind the local API gateway): the MSP registers its app, a consent link is
//! followed to the simulator's `adminconsent`, whose redirect back lands on the gateway without
//! a token; the tenant is watched with the one MSP app secret, tested, and polled. A replayed,
//! forged or other-MSP redirect is refused over the wire; a revoked consent fails the access
//! test with AADSTS700016 and a new link restores it. Then two customers discovered from the
//! simulated partner tenant are onboarded in bulk, with progress per customer: with a partner
//! technician's delegated credential stored, the one whose GDAP relationship holds Privileged
//! Role Administrator is onboarded directly (its app roles granted through Graph, its access
//! test passing, its subscriptions started), while the one without a privileged role and the one
//! whose relationship ended since the last read get consent links.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::{Value, json};
use vigil_simulators::m365::fixtures::{active_assignment, gdap_relationship};
use vigil_tests::{MspClient, poll_and_settle, start_stack};

const CONTOSO: &str = "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11";
const FABRIKAM: &str = "6f2a3d9b-8e52-4a1f-8b62-3c8e1d0f5b22";
const NORTHWIND: &str = "7a3b4e0c-9f63-4b20-9c73-4d9f2e1a6c33";
const TAILSPIN: &str = "8b4c5f1d-0a74-4c31-8d84-5e0a3f2b7d44";
const PARTNER: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const PARTNER_APP: &str = "1b2c3d4e-0000-4000-8000-000000000009";
const APP: &str = "0a1b2c3d-0000-4000-8000-00000000abcd";
const SECRET: &str = "msp-app-secret-value-123";
const GLOBAL_READER: &str = "f2ef992c-3afb-46b9-b7cf-a126ee74c451";
const PRIVILEGED_ROLE_ADMINISTRATOR: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";
const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";

/// Follows a consent link as the administrator's browser does: to the simulator, then its
/// redirect to the API (no token). The API's answer.
async fn follow(link: &Value) -> (u16, Value) {
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let consent = browser.get(link["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(consent.status(), 302, "{}", consent.text().await.unwrap());
    let back = consent.headers()["location"].to_str().unwrap().to_owned();
    redirect(&back).await
}

async fn redirect(url: &str) -> (u16, Value) {
    let response = reqwest::Client::new().get(url).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

async fn link(msp: &MspClient, name: &str, tenant: &str) -> Value {
    let link = msp.call(Method::POST, "/v1/onboarding/consent-links", Some(json!({"customer_name": name, "tenant_id": tenant}))).await;
    assert_eq!(link.0, 201, "{link:?}");
    link.2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_is_onboarded_by_consent_link_tested_polled_and_reconsented_and_three_more_in_bulk_one_directly() {
    let stack = start_stack().await;
    let token = stack.create_msp("acme", "Acme MSP").await.unwrap();
    let msp = MspClient { http: reqwest::Client::new(), base: stack.api_url.clone(), token: token.expose().to_owned() };
    let app = msp.call(Method::PUT, "/v1/onboarding/app", Some(json!({"client_id": APP, "client_secret": SECRET}))).await;
    assert_eq!(app.0, 200, "{app:?}");
    let redirect_uri = app.2["redirect_uri"].as_str().unwrap().to_owned();
    assert_eq!(redirect_uri, format!("{}/v1/consent/acme", stack.api_url));
    stack.m365.register_app(APP, SECRET, vec![redirect_uri], None);

    // Contoso's administrator follows the link; Microsoft redirects back to Vigil.
    let contoso = link(&msp, "Contoso", CONTOSO).await;
    let (status, outcome) = follow(&contoso).await;
    assert_eq!(status, 200, "{outcome:#}");
    assert_eq!(outcome["link"]["status"]["status"], "consented");
    assert_eq!(outcome["access_test"]["passed"], true, "{outcome:#}");
    assert!(outcome["poll_jobs"].as_u64().unwrap() >= 5);
    stack.wait_idle(std::time::Duration::from_secs(120)).await.unwrap();
    assert!(stack.stats.polling().streams_failed == 0, "{:?}", stack.stats.polling());
    assert!(stack.m365.subscriptions(CONTOSO).len() >= 4, "{:?}", stack.m365.subscriptions(CONTOSO));

    // The same redirect again, a forged one, and one to another MSP's address: refused.
    let back = stack.m365.request_log().iter().rev().find(|r| r.path.ends_with("/adminconsent")).map(|r| r.query.clone()).unwrap();
    let state = url::form_urlencoded::parse(back.as_bytes()).find(|(k, _)| k == "state").unwrap().1.into_owned();
    let replay = format!("{}/v1/consent/acme?tenant={CONTOSO}&state={state}&admin_consent=True", stack.api_url);
    assert_eq!(redirect(&replay).await.0, 409);
    let forged = state.replacen('a', "b", 1);
    assert_eq!(redirect(&format!("{}/v1/consent/acme?tenant={CONTOSO}&state={forged}&admin_consent=True", stack.api_url)).await.0, 403);
    stack.create_msp("globex", "Globex").await.unwrap();
    assert_eq!(redirect(&format!("{}/v1/consent/globex?tenant={CONTOSO}&state={state}&admin_consent=True", stack.api_url)).await.0, 403);

    // Consent revoked: the access test names it; a new link restores it.
    stack.m365.revoke_consent(CONTOSO);
    let test = msp.call(Method::POST, &format!("/v1/tenants/{CONTOSO}/access-test"), None).await.2;
    assert_eq!(test["passed"], false);
    assert!(test["checks"][0]["error"].as_str().unwrap().contains("AADSTS700016"), "{test:#}");
    let (status, again) = follow(&link(&msp, "Contoso", CONTOSO).await).await;
    assert_eq!((status, again["access_test"]["passed"].clone()), (200, json!(true)));
    let last = msp.call(Method::GET, &format!("/v1/tenants/{CONTOSO}/access-test"), None).await.2;
    assert_eq!(last["passed"], true);

    // Three more customers from the partner tenant, in bulk.
    stack.m365.add_tenant(PARTNER, PARTNER_APP, "partner-secret");
    stack.m365.set_partner_role(PARTNER, true);
    for (id, customer, name, role) in [
        ("r-fab", FABRIKAM, "Fabrikam", GLOBAL_READER),
        ("r-nw", NORTHWIND, "Northwind", PRIVILEGED_ROLE_ADMINISTRATOR),
        ("r-con", CONTOSO, "Contoso", GLOBAL_READER),
        ("r-tail", TAILSPIN, "Tailspin", GLOBAL_ADMINISTRATOR),
    ] {
        let relationship = format!("{PARTNER}-{id}");
        stack.m365.add_partner_relationship(PARTNER, gdap_relationship(&relationship, customer, name, 30, &[role]));
        stack.m365.add_access_assignment(&relationship, active_assignment(&format!("a-{id}"), &[role]));
    }
    let connect = json!({"tenant_id": PARTNER, "client_id": PARTNER_APP, "client_secret": "partner-secret"});
    assert_eq!(msp.call(Method::PUT, "/v1/msp/partner-tenant", Some(connect)).await.0, 200);
    poll_and_settle(&stack).await;
    let found = msp.call(Method::GET, "/v1/onboarding/discovery", None).await.2;
    let customers = found["customers"].as_array().unwrap();
    assert_eq!(customers.len(), 4, "{found:#}");
    let watched: Vec<(&str, bool)> = customers.iter().map(|c| (c["name"].as_str().unwrap(), c["watched"].as_bool().unwrap())).collect();
    assert_eq!(watched, [("Contoso", true), ("Fabrikam", false), ("Northwind", false), ("Tailspin", false)]);
    assert_eq!(customers[2]["relationships"][0]["roles"][0], "Privileged Role Administrator");
    assert_eq!((customers[1]["direct_possible"].clone(), customers[2]["direct_possible"].clone()), (json!(false), json!(true)));
    assert_eq!(customers[3]["direct_possible"], true, "as last read");
    // Since the last read, Tailspin's relationship was terminated.
    let mut ended = gdap_relationship(&format!("{PARTNER}-r-tail"), TAILSPIN, "Tailspin", 30, &[GLOBAL_ADMINISTRATOR]);
    ended["status"] = json!("terminated");
    stack.m365.add_partner_relationship(PARTNER, ended);

    // A technician of the partner tenant signs in to the MSP app; the owner stores the refresh
    // token (write-only).
    let refresh_token = stack.m365.issue_refresh_token(PARTNER, "tech@partner.example", APP);
    let stored = msp.call(Method::PUT, "/v1/msp/delegated-credential", Some(json!({"refresh_token": refresh_token}))).await;
    assert_eq!(stored.0, 204, "{stored:?}");
    assert_eq!(msp.call(Method::GET, "/v1/msp/delegated-credential", None).await.0, 405, "never readable");
    let job = msp.call(Method::POST, "/v1/onboarding/bulk", Some(json!({"tenant_ids": [FABRIKAM, NORTHWIND, TAILSPIN]}))).await;
    assert_eq!(job.0, 201, "{job:?}");
    assert!(!job.2.to_string().contains(&refresh_token), "the refresh token is never shown");
    let items = job.2["items"].as_array().unwrap().clone();
    let methods: Vec<&str> = items.iter().map(|i| i["method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["consent_link", "direct", "consent_link"], "{job:#?}");
    assert!(items[0]["steps"].is_null(), "Fabrikam's roles cannot grant: no attempt");
    assert_eq!(items[1]["access_test_passed"], true, "{:#}", items[1]);
    assert!(items[1]["url"].is_null());
    assert!(items[2]["steps"][0]["error"].as_str().unwrap().contains("AADSTS50020"), "{:#}", items[2]);
    stack.wait_idle(std::time::Duration::from_secs(120)).await.unwrap();
    assert!(stack.m365.subscriptions(NORTHWIND).len() >= 4, "{:?}", stack.m365.subscriptions(NORTHWIND));
    assert_eq!(stack.m365.app_roles_granted(NORTHWIND, APP).len(), 6);
    let northwind = msp.call(Method::GET, &format!("/v1/tenants/{NORTHWIND}/access-test"), None).await.2;
    assert_eq!(northwind["passed"], true, "{northwind:#}");
    for item in [&items[0], &items[2]] {
        assert_eq!(follow(item).await.0, 200);
    }
    let progress = msp.call(Method::GET, &format!("/v1/onboarding/bulk/{}", job.2["id"].as_str().unwrap()), None).await.2;
    for item in progress["items"].as_array().unwrap() {
        assert_eq!(item["status"]["status"], "consented", "{progress:#}");
        assert_eq!(item["access_test_passed"], true);
    }
    let tenants = msp.call(Method::GET, "/v1/tenants", None).await.2;
    assert_eq!(tenants["tenants"].as_array().unwrap().len(), 4);
    assert_eq!(msp.call(Method::DELETE, "/v1/msp/delegated-credential", None).await.0, 204);
    poll_and_settle(&stack).await;
    assert_eq!(stack.stats.polling().streams_failed, 0, "{:?}", stack.stats.polling());
    for queue in ["EventsDeadLetterQueue", "TicketsDeadLetterQueue", "PollJobsDeadLetterQueue"] {
        assert!(stack.peek(queue).await.unwrap().is_empty(), "{queue}");
    }
    stack.shutdown().await;
}
