//! The port contract suites, run against the AWS adapters over the wire on moto server, with
//! tables and queues created from template.yaml.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use vigil::aws::dynamodb::{DynamoAlertStore, DynamoConfigStore, DynamoIngestState};
use vigil::aws::policy_store::{DynamoPolicyStore, DynamoTriggerStore};
use vigil::aws::request_budget::DynamoRequestBudget;
use vigil::aws::secrets::SecretsManagerStore;
use vigil::aws::sqs::SqsQueue;
use vigil::contract;
use vigil::destination::{Destination, DestinationSettings, LEGACY_DESTINATION_ID};
use vigil::ids::{AlertId, DestinationId};
use vigil::ports::{AlertStore, BudgetGrant, ConfigStore, DestinationStore, RequestBudget, TenantChange};
use vigil::tenant::Tenant;
use vigil::ticket::TicketRef;
use vigil_local::provision::{ProvisionOptions, Provisioned, provision};
use vigil_local::template::StackModel;
use vigil_tests::moto_sdk;

async fn provisioned(sdk: &aws_config::SdkConfig) -> Provisioned {
    let model = StackModel::load(&vigil_local::repo_root().join("template.yaml")).unwrap();
    let options = ProvisionOptions {
        prefix: format!("contract-{}-", contract::unique_suffix()),
        parameters: BTreeMap::new(),
        visibility_timeout_override: Some(5),
    };
    provision(&model, sdk, &options).await.unwrap()
}

#[tokio::test]
async fn dynamodb_config_store_honours_the_contract() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    contract::config_store_contract(&DynamoConfigStore::new(aws_sdk_dynamodb::Client::new(&sdk), &stack.table_names["ConfigTable"])).await;
}

#[tokio::test]
async fn dynamodb_principal_store_and_audit_log_honour_their_contracts() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    let store = DynamoConfigStore::new(Client::new(&sdk), &stack.table_names["ConfigTable"]);
    contract::principal_store_contract(&store).await;
    contract::audit_log_contract(&store).await;
}

#[tokio::test]
async fn dynamodb_mailbox_count_store_honours_the_contract() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    contract::mailbox_count_store_contract(&DynamoConfigStore::new(Client::new(&sdk), &stack.table_names["ConfigTable"])).await;
}

#[tokio::test]
async fn dynamodb_billing_store_honours_the_contract() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    contract::billing_store_contract(&DynamoConfigStore::new(Client::new(&sdk), &stack.table_names["ConfigTable"])).await;
}

#[tokio::test]
async fn dynamodb_relationship_store_honours_the_contract() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    contract::relationship_store_contract(&DynamoConfigStore::new(Client::new(&sdk), &stack.table_names["ConfigTable"])).await;
}

#[tokio::test]
async fn dynamodb_onboarding_store_honours_the_contract() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    contract::onboarding_store_contract(&DynamoConfigStore::new(Client::new(&sdk), &stack.table_names["ConfigTable"])).await;
}

#[tokio::test]
async fn dynamodb_offboarding_store_honours_the_contract() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    contract::offboarding_store_contract(&vigil::aws::offboarding::DynamoOffboardingStore::new(
        Client::new(&sdk),
        &stack.table_names["ConfigTable"],
    ))
    .await;
}

#[tokio::test]
async fn dynamodb_credentials_episode_store_honours_the_contract() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    contract::credentials_episode_store_contract(&DynamoConfigStore::new(Client::new(&sdk), &stack.table_names["ConfigTable"])).await;
}

#[tokio::test]
async fn dynamodb_licence_store_honours_the_contract() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    contract::licence_store_contract(&DynamoConfigStore::new(Client::new(&sdk), &stack.table_names["ConfigTable"])).await;
}

#[tokio::test]
async fn a_token_stored_before_principals_still_reads_as_a_legacy_owner_token() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use vigil::ports::PrincipalStore;
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    let table = &stack.table_names["ConfigTable"];
    let msp_id = contract::unique_msp();
    let hash = format!("{:0>64}", contract::unique_suffix());
    Client::new(&sdk)
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(format!("MSP#{msp_id}")))
        .item("sk", AttributeValue::S(format!("TOKEN#{hash}")))
        .item("created_at", AttributeValue::S("2026-01-02T03:04:05+00:00".into()))
        .send()
        .await
        .unwrap();
    let store = DynamoConfigStore::new(Client::new(&sdk), table);
    let token = store.token(&msp_id, &vigil::tenant::TokenHash(hash.clone())).await.unwrap().expect("the legacy item is found");
    assert_eq!(token.principal_id, None, "it acts as an owner");
    assert!(token.is_live(chrono::Utc::now()), "and never expires on its own");
    assert_eq!(store.tokens(&msp_id).await.unwrap().len(), 1, "and is listed, so an owner can revoke it");
}

#[tokio::test]
async fn dynamodb_destination_store_honours_the_contract() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    contract::destination_store_contract(&DynamoConfigStore::new(Client::new(&sdk), &stack.table_names["ConfigTable"])).await;
}

#[tokio::test]
async fn dynamodb_request_budget_honours_the_contract() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    contract::request_budget_contract(&DynamoRequestBudget::new(Client::new(&sdk), &stack.table_names["AlertsTable"])).await;
}

#[tokio::test]
async fn a_configuration_stored_before_destinations_reads_as_the_destination_connectwise_and_its_links() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    legacy_configuration_carries_over(&Client::new(&sdk), &stack.table_names["ConfigTable"], &stack.table_names["AlertsTable"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_lambdas_sharing_a_budget_of_fifty_an_hour_are_granted_exactly_fifty() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    concurrent_callers_never_exceed_the_share(&Client::new(&sdk), &stack.table_names["AlertsTable"]).await;
}

#[tokio::test]
async fn dynamodb_alert_store_keeps_the_change_index_contract_on_its_gsi() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    contract::alert_change_index_contract(&DynamoAlertStore::new(Client::new(&sdk), &stack.table_names["AlertsTable"])).await;
}

#[tokio::test]
async fn dynamodb_alert_store_reads_a_tenants_entries_by_key_past_any_number_of_other_tenants_entries() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    contract::tenant_change_index_contract(&DynamoAlertStore::new(Client::new(&sdk), &stack.table_names["AlertsTable"])).await;
}

#[tokio::test]
async fn dynamodb_rate_limiter_honours_the_contract() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    let limiter = vigil::aws::rate_limits::DynamoRateLimiter::new(Client::new(&sdk), &stack.table_names["AlertsTable"]);
    contract::rate_limiter_contract(&limiter).await;
}

#[tokio::test]
async fn alerts_written_before_the_change_indexes_are_stamped_once_by_the_backfill_with_what_each_lacks() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    let (client, table) = (Client::new(&sdk), stack.table_names["AlertsTable"].clone());
    let alerts = DynamoAlertStore::new(client.clone(), &table);
    let (msp_id, tenant_id) = (contract::unique_msp(), contract::unique_tenant());
    let at = chrono::Utc::now() - chrono::Duration::days(3);
    let record = (vigil::ids::RecordId::parse("r1").unwrap(), at);
    let write = async |hour: i64| {
        let alert = contract::sample_alert_for(&msp_id, &tenant_id, at + chrono::Duration::hours(hour));
        alerts.record_hits(&vigil::alert::AlertHits::of_records(alert, vec![record.clone()]), at).await
    };
    // One alert as written before either index existed (no `changed`, no `tenant_changes`), one
    // as written after the MSP's index and before the tenant's (`changed` only).
    let (oldest, older) = (write(0).await.unwrap(), write(1).await.unwrap());
    let remove = |id: &vigil::ids::AlertId, attributes: &'static str| {
        client
            .update_item()
            .table_name(&table)
            .key("pk", AttributeValue::S(format!("MSP#{msp_id}")))
            .key("sk", AttributeValue::S(format!("ALERT#{id}")))
            .update_expression(format!("REMOVE {attributes}"))
            .send()
    };
    remove(&oldest.id, "changed, tenant_changes").await.unwrap();
    remove(&older.id, "tenant_changes").await.unwrap();
    let older_key = alerts.alerts_by_change(&msp_id, &vigil::changes::ChangeQuery { read: 10, ..Default::default() }).await.unwrap();
    let older_key = older_key.alerts.iter().find(|e| e.alert.id == older.id).map(|e| e.key.clone()).expect("in the MSP's index");
    let everything = vigil::changes::ChangeQuery { read: 10, ..Default::default() };
    let of_tenant = vigil::changes::ChangeQuery {
        selection: vigil::changes::AlertSelection { tenant: Some(tenant_id.clone()), ..Default::default() },
        ..everything.clone()
    };
    let ids = |page: &vigil::changes::ChangePage| page.alerts.iter().map(|e| e.alert.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&alerts.alerts_by_change(&msp_id, &everything).await.unwrap()), vec![older.id.clone()], "one in the MSP's index");
    assert!(alerts.alerts_by_change(&msp_id, &of_tenant).await.unwrap().alerts.is_empty(), "none in the tenant's yet");

    assert!(alerts.index_earlier_alerts().await.unwrap() >= 2);
    let page = alerts.alerts_by_change(&msp_id, &everything).await.unwrap();
    assert_eq!(ids(&page), vec![oldest.id.clone(), older.id.clone()]);
    assert_eq!(page.alerts[0].key, vigil::changes::ChangeKey::new(oldest.updated_at, &oldest.id), "stamped with its last update");
    assert_eq!(page.alerts[1].key, older_key, "an alert with a change key keeps it");
    let tenant_page = alerts.alerts_by_change(&msp_id, &of_tenant).await.unwrap();
    assert_eq!(tenant_page.alerts, page.alerts, "both are in the tenant's index, under the same keys");
    assert!(alerts.alerts_by_change(&contract::unique_msp(), &of_tenant).await.unwrap().alerts.is_empty(), "keyed under their own MSP");
    alerts.index_earlier_alerts().await.unwrap();
    assert_eq!(alerts.alerts_by_change(&msp_id, &everything).await.unwrap().alerts, page.alerts, "stamping again changes nothing");
    assert_eq!(alerts.alerts_by_change(&msp_id, &of_tenant).await.unwrap().alerts, page.alerts);
}

#[tokio::test]
async fn the_backfill_leaves_an_alert_written_since_its_scan_as_its_own_write_stamped_it_and_fails_on_a_store_error() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    let (client, table) = (Client::new(&sdk), stack.table_names["AlertsTable"].clone());
    let alerts = DynamoAlertStore::new(client.clone(), &table);
    let (msp_id, tenant_id) = (contract::unique_msp(), contract::unique_tenant());
    let at = chrono::Utc::now() - chrono::Duration::days(3);
    let hits = vigil::alert::AlertHits::of_records(
        contract::sample_alert_for(&msp_id, &tenant_id, at),
        vec![(vigil::ids::RecordId::parse("r1").unwrap(), at)],
    );
    let stored = alerts.record_hits(&hits, at).await.unwrap();
    let key = |name: &str, value: String| (name.to_owned(), AttributeValue::S(value));
    let item_key = std::collections::HashMap::from([key("pk", format!("MSP#{msp_id}")), key("sk", format!("ALERT#{}", stored.id))]);
    client
        .update_item()
        .table_name(&table)
        .set_key(Some(item_key.clone()))
        .update_expression("REMOVE changed, tenant_changes")
        .send()
        .await
        .unwrap();
    // The backfill's Scan reads the alert; then a triage writes it (and stamps it) before the stamp.
    let scanned = client.get_item().table_name(&table).set_key(Some(item_key)).send().await.unwrap().item.unwrap();
    let mut triaged = stored.clone();
    triaged.status = vigil::alert::AlertStatus::InProgress;
    triaged.version += 1;
    alerts.update_alert(&triaged).await.unwrap();
    let of_tenant = vigil::changes::ChangeQuery {
        newest_first: true,
        selection: vigil::changes::AlertSelection { tenant: Some(tenant_id.clone()), ..Default::default() },
        read: 10,
        ..Default::default()
    };
    let written = alerts.alerts_by_change(&msp_id, &of_tenant).await.unwrap().alerts;
    assert_eq!(written.len(), 1, "the triage stamped it in both indexes");

    assert!(!alerts.stamp_earlier_alert(scanned.clone()).await.unwrap(), "the stale scan stamps nothing");
    assert_eq!(alerts.alerts_by_change(&msp_id, &of_tenant).await.unwrap().alerts, written, "the triage's stamp stands");
    assert!(
        DynamoAlertStore::new(client, format!("{table}-missing")).stamp_earlier_alert(scanned).await.is_err(),
        "a store error is an error, not an alert left for later"
    );
}

#[tokio::test]
async fn dynamodb_ingest_state_honours_the_contract() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    contract::ingest_state_contract(&DynamoIngestState::new(aws_sdk_dynamodb::Client::new(&sdk), &stack.table_names["StateTable"])).await;
}

#[tokio::test]
async fn dynamodb_alert_store_honours_the_contract() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    contract::alert_store_contract(&DynamoAlertStore::new(aws_sdk_dynamodb::Client::new(&sdk), &stack.table_names["AlertsTable"])).await;
}

#[tokio::test]
async fn dynamodb_replay_store_honours_the_contract() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    let store = vigil::aws::replays::DynamoReplayStore::new(aws_sdk_dynamodb::Client::new(&sdk), &stack.table_names["StateTable"]);
    contract::replay_store_contract(&store).await;
}

#[tokio::test]
async fn dynamodb_trigger_store_honours_the_contract() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    contract::trigger_state_contract(&DynamoTriggerStore::new(aws_sdk_dynamodb::Client::new(&sdk), &stack.table_names["StateTable"])).await;
}

#[tokio::test]
async fn dynamodb_policy_store_honours_the_contract() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    contract::policy_store_contract(&DynamoPolicyStore::new(aws_sdk_dynamodb::Client::new(&sdk), &stack.table_names["ConfigTable"])).await;
}

#[tokio::test]
async fn secrets_manager_store_honours_the_contract() {
    let (sdk, _moto) = moto_sdk().await;
    let prefix = format!("vigil/contract{}/", contract::unique_suffix());
    contract::secret_store_contract(&SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(&sdk), prefix)).await;
}

#[tokio::test]
async fn sqs_queue_honours_the_contract() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    let client = aws_sdk_sqs::Client::new(&sdk);
    let url = stack.queue_urls["EventsQueue"].clone();
    let queue = SqsQueue::new(client.clone(), url.clone());
    contract::message_queue_contract(&queue, || async {
        let mut bodies = Vec::new();
        let mut quiet = 0;
        loop {
            let output = client.receive_message().queue_url(&url).max_number_of_messages(10).wait_time_seconds(1).send().await.unwrap();
            if output.messages().is_empty() {
                // Delayed messages show up after their delay: two quiet seconds end the wait.
                quiet += 1;
                if quiet == 2 {
                    return bodies;
                }
                continue;
            }
            quiet = 0;
            for message in output.messages() {
                bodies.push(message.body().unwrap().to_owned());
                client.delete_message().queue_url(&url).receipt_handle(message.receipt_handle().unwrap()).send().await.unwrap();
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn company_links_written_at_once_to_a_tenant_without_links_are_all_kept() {
    let (sdk, _moto) = moto_sdk().await;
    let stack = provisioned(&sdk).await;
    company_links_written_at_once_are_all_kept(&Client::new(&sdk), &stack.table_names["ConfigTable"]).await;
}

// ---- the checks below are the same in shared/tests/aws_adapters.rs ----

fn raw(pairs: Vec<(&str, AttributeValue)>) -> HashMap<String, AttributeValue> {
    pairs.into_iter().map(|(name, value)| (name.to_owned(), value)).collect()
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Items as an MSP configured before destinations left them (written raw with the SDK): the
/// `PSA#connectwise` settings, a tenant's `connectwise_company_id` and a delivery keyed
/// `connectwise` naming `connect_wise`. They read as the destination `connectwise`, its
/// company link and its delivery; a new link drops the legacy attribute; a stored
/// `DEST#connectwise` wins; deleting `connectwise` deletes the legacy settings too.
async fn legacy_configuration_carries_over(client: &Client, config_table: &str, alerts_table: &str) {
    let config = DynamoConfigStore::new(client.clone(), config_table);
    let alerts = DynamoAlertStore::new(client.clone(), alerts_table);
    let msp_id = contract::unique_msp();
    let tenant_id = contract::unique_tenant();
    let connectwise = DestinationId::parse(LEGACY_DESTINATION_ID).unwrap();
    let pk = format!("MSP#{msp_id}");
    let priorities = raw(vec![("high", n(1)), ("medium", n(2)), ("low", n(3)), ("informational", n(4))]);
    let legacy_settings = raw(vec![
        ("pk", s(&pk)),
        ("sk", s("PSA#connectwise")),
        ("api_root", s("https://api-na.myconnectwise.net/v4_6_release/apis/3.0")),
        ("board_id", n(12)),
        ("priorities", AttributeValue::M(priorities)),
    ]);
    let tenant_sk = format!("TENANT#{tenant_id}");
    let legacy_tenant = raw(vec![
        ("pk", s(&pk)),
        ("sk", s(&tenant_sk)),
        ("msp_id", s(msp_id.as_str())),
        ("tenant_id", s(tenant_id.as_str())),
        ("name", s("Contoso")),
        ("connectwise_company_id", n(250)),
        ("m365_credentials_set", AttributeValue::Bool(true)),
        ("created_at", s("2025-06-01T12:00:00Z")),
    ]);
    let alert_id = AlertId::derive(&["legacy", msp_id.as_str()]);
    let legacy_delivery = raw(vec![
        ("pk", s(&pk)),
        ("sk", s(&format!("DELIVERY#{alert_id}#connectwise"))),
        ("msp_id", s(msp_id.as_str())),
        ("alert_id", s(alert_id.as_str())),
        ("destination", s("connect_wise")),
        ("ticket", AttributeValue::M(raw(vec![("id", n(1001))]))),
        ("notified_hits", n(3)),
        ("create_attempted", AttributeValue::Bool(true)),
        ("pending_note_hits", AttributeValue::Null(true)),
        ("lease_until", AttributeValue::Null(true)),
        ("version", n(4)),
    ]);
    for (table, item) in [(config_table, legacy_settings), (config_table, legacy_tenant), (alerts_table, legacy_delivery)] {
        client.put_item().table_name(table).set_item(Some(item)).send().await.unwrap();
    }

    let carried = config.get_destination(&msp_id, &connectwise).await.unwrap().expect("the legacy settings read as `connectwise`");
    assert_eq!((carried.name.as_str(), carried.enabled, carried.credentials_set), ("ConnectWise Manage", true, true));
    assert!(matches!(&carried.settings, DestinationSettings::ConnectWise { api_root, .. } if api_root.ends_with("/apis/3.0")));
    assert_eq!(carried.routing.default_place.as_deref(), Some("12"), "the board is the default place");
    assert_eq!(carried.priority_for(vigil::alert::Severity::High), Some("1"));
    assert_eq!(carried.priority_for(vigil::alert::Severity::Informational), Some("4"));
    assert_eq!(config.list_destinations(&msp_id).await.unwrap(), vec![carried.clone()], "listed once");
    let everyone = config.list_all_destinations().await.unwrap();
    assert_eq!(everyone.iter().filter(|d| d.msp_id == msp_id).collect::<Vec<_>>(), vec![&carried], "and in the list of all");

    let tenant = config.get_tenant(&msp_id, &tenant_id).await.unwrap().unwrap();
    assert_eq!(tenant.company_link(&connectwise).as_deref(), Some("250"), "the legacy company is the link to `connectwise`");
    let delivery = alerts.get_delivery(&msp_id, &alert_id, &connectwise).await.unwrap().expect("a legacy delivery still reads");
    assert_eq!((delivery.ticket, delivery.version), (Some(TicketRef::new("1001")), 4));
    assert_eq!(alerts.list_deliveries(&msp_id, &alert_id).await.unwrap().len(), 1);
    assert!(alerts.list_open_tickets(&msp_id, &connectwise).await.unwrap().is_empty(), "written before the index existed");
    assert_eq!(alerts.index_earlier_deliveries().await.unwrap(), 1);
    assert_eq!(alerts.list_open_tickets(&msp_id, &connectwise).await.unwrap(), vec![(alert_id.clone(), TicketRef::new("1001"))]);
    assert_eq!(alerts.index_earlier_deliveries().await.unwrap(), 1, "indexing again is harmless");
    assert_eq!(alerts.list_open_tickets(&msp_id, &connectwise).await.unwrap().len(), 1);

    let linked = config
        .update_tenant(&msp_id, &tenant_id, &TenantChange::CompanyLink { destination: connectwise.clone(), company: Some("300".into()) })
        .await
        .unwrap()
        .unwrap();
    assert_eq!((linked.company_link(&connectwise).as_deref(), linked.legacy_connectwise_company_id), (Some("300"), None));
    let stored =
        client.get_item().table_name(config_table).key("pk", s(&pk)).key("sk", s(&tenant_sk)).consistent_read(true).send().await.unwrap();
    let stored = stored.item().unwrap();
    assert!(!stored.contains_key("connectwise_company_id"), "a new link removes the legacy attribute");
    assert_eq!(stored.get("m365_credentials_set"), Some(&AttributeValue::Bool(true)), "and touches nothing else");

    let replaced = Destination { name: "ConnectWise (EU)".into(), ..carried.clone() };
    config.put_destination(&replaced).await.unwrap();
    assert_eq!(config.get_destination(&msp_id, &connectwise).await.unwrap(), Some(replaced.clone()), "a stored destination wins");
    assert_eq!(config.list_destinations(&msp_id).await.unwrap(), vec![replaced.clone()], "and is listed alone");
    let everyone = config.list_all_destinations().await.unwrap();
    assert_eq!(everyone.iter().filter(|d| d.msp_id == msp_id).collect::<Vec<_>>(), vec![&replaced]);
    assert!(config.delete_destination(&msp_id, &connectwise).await.unwrap());
    assert_eq!(config.get_destination(&msp_id, &connectwise).await.unwrap(), None, "the legacy settings went with it");
    assert!(config.list_destinations(&msp_id).await.unwrap().is_empty());
}

/// Four callers (as four Lambdas would) each take 20 requests, all at once, from one budget
/// of 50 an hour: exactly 50 are granted, and everyone else is told to wait.
async fn concurrent_callers_never_exceed_the_share(client: &Client, alerts_table: &str) {
    let budget = Arc::new(DynamoRequestBudget::new(client.clone(), alerts_table));
    let msp_id = contract::unique_msp();
    let destination = DestinationId::parse("psa").unwrap();
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (budget, msp_id, destination) = (budget.clone(), msp_id.clone(), destination.clone());
            tokio::spawn(async move {
                let mut granted = 0u32;
                for _ in 0..20 {
                    match budget.take(&msp_id, &destination, 1, 50, chrono::Utc::now()).await.unwrap() {
                        BudgetGrant::Granted => granted += 1,
                        BudgetGrant::Exhausted { retry_after } => assert!(retry_after >= std::time::Duration::from_secs(1)),
                    }
                }
                granted
            })
        })
        .collect();
    let mut granted = 0;
    for caller in callers {
        granted += caller.await.unwrap();
    }
    assert_eq!(granted, 50, "never more than the share, and no request refused while there was room");
}

/// Six callers link one tenant (whose item has no `company_links` map yet) to six
/// destinations at once while a seventh records its webhook: every link and the webhook are
/// kept, because each writer touches only its own map entry or attribute.
async fn company_links_written_at_once_are_all_kept(client: &Client, config_table: &str) {
    let config = Arc::new(DynamoConfigStore::new(client.clone(), config_table));
    let msp_id = contract::unique_msp();
    let tenant = Tenant { company_links: BTreeMap::new(), ..contract::sample_tenant(&msp_id, &contract::unique_tenant()) };
    assert!(config.create_tenant(&tenant).await.unwrap());
    let changes: Vec<TenantChange> = (0..6)
        .map(|i| TenantChange::CompanyLink {
            destination: DestinationId::parse(&format!("psa-{i}")).unwrap(),
            company: Some(format!("{i}00")),
        })
        .chain([TenantChange::Webhook { auth_hash: "ab12".into(), registered: true }])
        .collect();
    let writers: Vec<_> = changes
        .into_iter()
        .map(|change| {
            let (config, msp_id, tenant_id) = (config.clone(), msp_id.clone(), tenant.tenant_id.clone());
            tokio::spawn(async move { config.update_tenant(&msp_id, &tenant_id, &change).await.unwrap().expect("the tenant exists") })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let stored = config.get_tenant(&msp_id, &tenant.tenant_id).await.unwrap().unwrap();
    let links: Vec<(&str, &str)> = stored.company_links.iter().map(|(d, c)| (d.as_str(), c.as_str())).collect();
    assert_eq!(links, [("psa-0", "000"), ("psa-1", "100"), ("psa-2", "200"), ("psa-3", "300"), ("psa-4", "400"), ("psa-5", "500")]);
    assert_eq!((stored.webhook_auth_hash.as_deref(), stored.webhook_registered), (Some("ab12"), true));
}
