//! Offboarding on the local stack (moto, the Microsoft 365 and ConnectWise simulators, every
//! handler): a tenant with every kind of data Vigil keeps — alerts and their tickets, deliveries,
//! hit markers, record claims and blob markers, stream ledgers, threshold state, licences and
//! mailbox counts, a policy switch, a suppression, credentials, company links — is offboarded
//! through the config API. With retention 0 the job stops Microsoft's subscriptions, deletes
//! the credentials and purges everything: a scan of every table, a look into every queue and a
//! list of every secret find the tenant id nowhere, while the MSP's other tenant and another
//! MSP's tenant with the same id keep all of theirs. With a retention of a day the data stays
//! (polling stopped) until the purge date passes, and then the tick starts the purge by itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use vigil::ports::OffboardingStore;
use vigil_local::stack::LocalStack;
use vigil_tests::{MspClient, forwarding_record, in_current_window, onboard, onboard_tenant, poll_and_settle, record_id, start_stack};

const MSP: &str = "acme";
const RIVAL: &str = "rival";
/// Offboarded with retention 0.
const GONE: &str = "0ff0b0a2-1d5e-4c3b-9a7f-3e2d1c0b9a01";
/// Offboarded with a retention of a day.
const KEPT: &str = "0ff0b0a2-1d5e-4c3b-9a7f-3e2d1c0b9a02";
/// The MSP's tenant that stays.
const STAYS: &str = "0ff0b0a2-1d5e-4c3b-9a7f-3e2d1c0b9a03";

/// A failed sign-in (RecordType 15): the brute-force threshold policy keeps state for it.
fn failed_sign_in(tenant: &str, id: &str) -> Value {
    json!({
        "CreationTime": in_current_window(30).format("%Y-%m-%dT%H:%M:%S").to_string(), "Id": id, "Operation": "UserLoginFailed",
        "OrganizationId": tenant, "RecordType": 15, "ResultStatus": "Failed", "UserKey": "10032001A2B3C4D5", "UserType": 0,
        "Version": 1, "Workload": "AzureActiveDirectory", "ClientIP": "198.51.100.23", "ObjectId": "00000002-0000-0000-c000-000000000000",
        "UserId": "dave@contoso.com", "AzureActiveDirectoryEventType": 1, "LogonError": "InvalidUserNameOrPassword",
        "ErrorNumber": "50126", "ActorIpAddress": "198.51.100.23"
    })
}

/// Traffic for `tenant`: a forwarding rule (an alert, a ticket), a failed sign-in (threshold
/// state); each MSP watching the tenant gets its share.
fn traffic(stack: &LocalStack, tenant: &str, n: usize) {
    let rule = forwarding_record(tenant, &format!("{}-{tenant}", record_id(n)), in_current_window(20));
    stack.m365.add_records(tenant, "Audit.Exchange", vec![rule]);
    stack.m365.add_records(tenant, "Audit.AzureActiveDirectory", vec![failed_sign_in(tenant, &format!("{}-{tenant}", record_id(n + 1)))]);
}

/// Per-tenant configuration an MSP can add: a policy switched off, a suppression for it.
async fn configure(msp: &MspClient, tenant: &str) {
    let ok = |r: (u16, String, Value)| assert!((200..300).contains(&r.0), "{r:?}");
    ok(msp
        .call(reqwest::Method::PUT, &format!("/v1/tenants/{tenant}/policies/builtin.mass-download"), Some(json!({"enabled": false})))
        .await);
    ok(msp
        .call(
            reqwest::Method::POST,
            "/v1/suppressions",
            Some(json!({"tenant_id": tenant, "policy_id": "builtin.mass-download", "reason": "the tenant's backup job"})),
        )
        .await);
}

/// Every item of every table of this stack (listed from moto), as (table, pk, sk, text of all
/// attributes).
async fn every_item(stack: &LocalStack) -> Vec<(String, String, String, String)> {
    let client = aws_sdk_dynamodb::Client::new(&stack.sdk);
    // One moto server serves the whole test run: its tables run to several pages.
    let mut tables: Vec<String> = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let page = client.list_tables().set_exclusive_start_table_name(start.take()).send().await.unwrap();
        tables.extend(page.table_names().iter().filter(|t| t.starts_with(&stack.provisioned.prefix)).cloned());
        match page.last_evaluated_table_name() {
            Some(last) => start = Some(last.to_owned()),
            None => break,
        }
    }
    assert_eq!(tables.len(), stack.provisioned.table_names.len(), "every table the template declares: {tables:?}");
    let mut items = Vec::new();
    for table in tables {
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let output = client.scan().table_name(&table).set_exclusive_start_key(start.take()).send().await.unwrap();
            for item in output.items() {
                let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                items.push((table.clone(), text("pk"), text("sk"), format!("{item:?}")));
            }
            match output.last_evaluated_key() {
                Some(last) if !last.is_empty() => start = Some(last.clone()),
                _ => break,
            }
        }
    }
    items
}

/// The items of `msp` (its partitions) that mention `tenant` or one of the tenant's alerts (hit
/// markers, deliveries and ticket index entries name only the alert), leaving out the MSP's
/// configuration audit log (kept 400 days on purpose: it records who offboarded the tenant).
/// `alerts` collects the tenant's alert ids as they are seen, so a later call still finds what
/// refers to an alert already deleted.
async fn items_of(stack: &LocalStack, msp: &str, tenant: &str, alerts: &mut BTreeSet<String>) -> Vec<(String, String, String)> {
    let own = format!("MSP#{msp}");
    let items: Vec<_> =
        every_item(stack).await.into_iter().filter(|(_, pk, _, _)| pk == &own || pk.starts_with(&format!("{own}#"))).collect();
    for (_, _, sk, text) in &items {
        if let Some(alert) = sk.strip_prefix("ALERT#").filter(|_| text.contains(tenant)) {
            alerts.insert(alert.to_owned());
        }
    }
    items
        .into_iter()
        .filter(|(_, _, sk, text)| (text.contains(tenant) || alerts.iter().any(|a| text.contains(a.as_str()))) && !sk.starts_with("AUDIT#"))
        .map(|(table, pk, sk, _)| (table, pk, sk))
        .collect()
}

/// The shape of a key: its sort key's or partition's kind (`ALERT`, `DELIVERY`, `RECORD`…).
fn shapes(items: &[(String, String, String)]) -> BTreeSet<String> {
    items
        .iter()
        .map(|(_, pk, sk)| {
            if sk == "HIT" {
                return "HIT".to_owned();
            }
            let deep = pk.split('#').nth(4).filter(|_| pk.matches('#').count() > 3).map(str::to_owned);
            deep.unwrap_or_else(|| sk.split('#').next().unwrap_or_default().to_owned())
        })
        .collect()
}

async fn secret_names(stack: &LocalStack) -> Vec<String> {
    let client = aws_sdk_secretsmanager::Client::new(&stack.sdk);
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let output = client.list_secrets().set_next_token(token.take()).max_results(100).send().await.unwrap();
        names.extend(output.secret_list().iter().filter_map(|s| s.name().map(str::to_owned)));
        match output.next_token() {
            Some(next) => token = Some(next.to_owned()),
            None => return names,
        }
    }
}

async fn queue_bodies(stack: &LocalStack) -> Vec<String> {
    let mut bodies = Vec::new();
    for logical_id in stack.provisioned.queue_urls.keys() {
        bodies.extend(stack.peek(logical_id).await.unwrap());
    }
    bodies
}

async fn offboard(msp: &MspClient, tenant: &str, retention_days: u32) -> (u16, Value) {
    let (status, _, body) = msp
        .call(reqwest::Method::POST, &format!("/v1/tenants/{tenant}/offboarding"), Some(json!({"retention_days": retention_days})))
        .await;
    (status, body)
}

async fn offboarding(msp: &MspClient, tenant: &str) -> Value {
    let (status, _, body) = msp.call(reqwest::Method::GET, &format!("/v1/tenants/{tenant}/offboarding"), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offboarding_leaves_nothing_of_the_tenant_behind_and_keeps_every_other_tenant() {
    let stack = start_stack().await;
    let acme = onboard(&stack, MSP, GONE, 250).await;
    onboard_tenant(&stack, &acme, KEPT, 251).await;
    onboard_tenant(&stack, &acme, STAYS, 252).await;
    // Another MSP looks after the same Microsoft tenant.
    let rival = onboard(&stack, RIVAL, GONE, 300).await;
    for (i, tenant) in [GONE, KEPT, STAYS].into_iter().enumerate() {
        configure(&acme, tenant).await;
        traffic(&stack, tenant, i * 10);
    }
    configure(&rival, GONE).await;
    poll_and_settle(&stack).await;
    // Polling again after the first tick's licence reads and counts: every kind exists.
    traffic(&stack, GONE, 40);
    poll_and_settle(&stack).await;

    let (mut gone_alerts, mut stays_alerts, mut rival_alerts, mut kept_alerts) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let before = items_of(&stack, MSP, GONE, &mut gone_alerts).await;
    let kinds = shapes(&before);
    for kind in [
        "ALERT",
        "HIT",
        "DELIVERY",
        "OPENTICKET",
        "STREAM",
        "RECORD",
        "BLOB",
        "TRIGGER",
        "TENANT",
        "TENANT_POLICY",
        "SUPPRESSION",
        "LICSTATE",
        "MBXLATEST",
    ] {
        assert!(kinds.contains(kind), "the tenant has {kind} items before offboarding: {kinds:?}");
    }
    let stays_before = items_of(&stack, MSP, STAYS, &mut stays_alerts).await.len();
    let rival_before = items_of(&stack, RIVAL, GONE, &mut rival_alerts).await.len();
    let kept_before = items_of(&stack, MSP, KEPT, &mut kept_alerts).await.len();
    assert!(stays_before > 10 && rival_before > 10 && kept_before > 10);
    let tickets_before = stack.connectwise.tickets().len();

    // Retention is bounded; the owner's request is taken once.
    let (status, body) = offboard(&acme, GONE, 366).await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = offboard(&acme, GONE, 0).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["phase"], "stopping");
    let (status, again) = offboard(&acme, GONE, 0).await;
    assert_eq!(status, 200, "a second request changes nothing: {again}");
    stack.wait_idle(Duration::from_secs(120)).await.unwrap();

    let done = offboarding(&acme, GONE).await;
    assert_eq!(done["phase"], "purged", "{done:#}");
    let removed = &done["removed"];
    assert_eq!(removed["subscriptions"], 5, "{done:#}");
    assert_eq!(removed["credentials"], 1);
    assert_eq!(removed["company_links"], 1);
    assert_eq!(removed["tenant"], 1);
    assert!(removed["alerts"].as_u64().unwrap() >= 1, "{done:#}");
    let total: u64 = removed
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !["subscriptions", "credentials", "company_links"].contains(&k.as_str()))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum();
    assert_eq!(total as usize, before.len(), "every item found before is counted once: {done:#}");

    // Microsoft's side: every subscription stopped.
    for content_type in ["Audit.AzureActiveDirectory", "Audit.Exchange", "Audit.SharePoint", "Audit.General", "DLP.All"] {
        let subscription = stack.m365.subscription(GONE, content_type).unwrap();
        assert_eq!(subscription["status"], "disabled", "{content_type}: {subscription}");
    }
    // Nothing of the tenant left in any table (the audit log aside), queue or secret.
    assert_eq!(items_of(&stack, MSP, GONE, &mut gone_alerts).await, vec![], "left behind");
    assert!(queue_bodies(&stack).await.iter().all(|b| !b.contains(GONE)), "no queued message names the tenant");
    let secrets = secret_names(&stack).await;
    assert!(!secrets.iter().any(|s| s.contains(&format!("{MSP}/tenants/{GONE}"))), "{secrets:?}");
    assert!(secrets.iter().any(|s| s.contains(&format!("{RIVAL}/tenants/{GONE}"))), "the rival's credentials stay");
    // Everyone else keeps everything; the PSA's tickets stay as they were.
    assert!(items_of(&stack, MSP, STAYS, &mut stays_alerts).await.len() >= stays_before, "the MSP's other tenant keeps everything");
    assert!(items_of(&stack, RIVAL, GONE, &mut rival_alerts).await.len() >= rival_before, "the other MSP keeps everything of its tenant");
    assert!(items_of(&stack, MSP, KEPT, &mut kept_alerts).await.len() >= kept_before);
    assert_eq!(stack.connectwise.tickets().len(), tickets_before);
    // One entry per step in the MSP's audit log, however often it was asked.
    let (_, _, log) = acme.call(reqwest::Method::GET, "/v1/audit-log?limit=100", None).await;
    let actions: Vec<&str> = log["entries"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions.iter().filter(|a| **a == "tenant.offboarded").count(), 1, "{actions:?}");
    assert_eq!(actions.iter().filter(|a| **a == "tenant.purged").count(), 1, "{actions:?}");
    // The tenant can be registered afresh.
    let (status, _, _) = acme.call(reqwest::Method::GET, &format!("/v1/tenants/{GONE}"), None).await;
    assert_eq!(status, 404);

    // Retention of a day: stopped at once, data kept, not polled.
    let (status, body) = offboard(&acme, KEPT, 1).await;
    assert_eq!(status, 202, "{body}");
    stack.wait_idle(Duration::from_secs(120)).await.unwrap();
    assert_eq!(offboarding(&acme, KEPT).await["phase"], "retained");
    let (status, _, refused) = acme.call(reqwest::Method::POST, "/v1/tenants", Some(json!({"tenant_id": KEPT, "name": "Back"}))).await;
    assert_eq!(status, 409, "re-registering before the purge is refused: {refused}");
    assert!(refused["detail"].as_str().unwrap().contains("offboarded"), "{refused}");
    traffic(&stack, KEPT, 60);
    let polled = poll_and_settle(&stack).await;
    assert!(polled.streams_polled > 0);
    // Its offboarding record names it until the purge; nothing else is new.
    let kept_now: Vec<_> =
        items_of(&stack, MSP, KEPT, &mut kept_alerts).await.into_iter().filter(|(_, _, sk)| !sk.starts_with("OFFBOARDING#")).collect();
    assert!(!kept_now.is_empty() && kept_now.len() <= kept_before, "kept, and nothing new polled: {} vs {kept_before}", kept_now.len());
    assert!(!secret_names(&stack).await.iter().any(|s| s.contains(&format!("{MSP}/tenants/{KEPT}"))), "credentials go at once");

    // A day passes (the record's purge date moved to the past): the tick starts the purge.
    let store = vigil::aws::offboarding::DynamoOffboardingStore::new(
        aws_sdk_dynamodb::Client::new(&stack.sdk),
        &stack.provisioned.table_names["ConfigTable"],
    );
    let msp_id = vigil::ids::MspId::parse(MSP).unwrap();
    let key = vigil::offboarding::tenant_key(&msp_id, &vigil::ids::TenantId::parse(KEPT).unwrap());
    let mut record = store.get_offboarding(&msp_id, &key).await.unwrap().unwrap();
    record.purge_after = Utc::now() - chrono::Duration::seconds(1);
    store.save_offboarding(&mut record).await.unwrap();
    poll_and_settle(&stack).await;
    assert_eq!(offboarding(&acme, KEPT).await["phase"], "purged");
    assert_eq!(items_of(&stack, MSP, KEPT, &mut kept_alerts).await, vec![]);
    assert!(items_of(&stack, MSP, STAYS, &mut stays_alerts).await.len() >= stays_before, "the MSP's other tenant keeps everything");
    assert!(items_of(&stack, RIVAL, GONE, &mut rival_alerts).await.len() >= rival_before, "the other MSP keeps everything of its tenant");
    stack.shutdown().await;
}
