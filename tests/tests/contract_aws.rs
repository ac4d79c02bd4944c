//! The port contract suites, run against the AWS adapters over the wire on moto server, with
//! tables and queues created from template.yaml.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use vigil::aws::dynamodb::{DynamoAlertStore, DynamoConfigStore, DynamoIngestState};
use vigil::aws::policy_store::{DynamoPolicyStore, DynamoTriggerStore};
use vigil::aws::secrets::SecretsManagerStore;
use vigil::aws::sqs::SqsQueue;
use vigil::contract;
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
        loop {
            let output = client.receive_message().queue_url(&url).max_number_of_messages(10).wait_time_seconds(1).send().await.unwrap();
            if output.messages().is_empty() {
                return bodies;
            }
            for message in output.messages() {
                bodies.push(message.body().unwrap().to_owned());
                client.delete_message().queue_url(&url).receipt_handle(message.receipt_handle().unwrap()).send().await.unwrap();
            }
        }
    })
    .await;
}
