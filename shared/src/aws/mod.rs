//! AWS adapters for the ports: DynamoDB stores, SQS queues, Secrets Manager. Compiled only with
//! the `aws` feature, so the domain provably builds without any AWS crate.

mod alert_changes;
pub mod alert_store;
pub mod billing;
pub mod config_store;
mod deliveries;
mod destinations;
pub mod dynamodb;
pub mod ingest_state;
pub mod licences;
pub mod mail;
pub mod offboarding;
pub mod onboarding;
pub mod policy_store;
pub mod principals;
pub mod rate_limits;
pub mod relationships;
pub mod replays;
pub mod request_budget;
pub mod secrets;
pub mod selfmon;
pub mod sqs;

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// SDK configuration from the environment (region, credentials, and `AWS_ENDPOINT_URL` when
/// set, which is how tests and the local stack point the SDK at moto).
pub async fn sdk_config_from_env() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// SDK configuration for an AWS emulator at `endpoint` (moto), with dummy credentials.
pub async fn sdk_config_for_emulator(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "vigil-emulator"))
        .load()
        .await
}
