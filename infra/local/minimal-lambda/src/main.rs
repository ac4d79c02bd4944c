//! The cold-start bench's baseline (`infra/local/src/bin/cold-start-bench.rs`): what every Rust
//! Lambda on the AWS SDK pays at cold start and no more. Telemetry as `cargo lambda new` sets
//! it up (the functions use the same subscriber), `aws_config::load`, one DynamoDB client built
//! at init, and a handler that answers `{}` without calling AWS.
//!
//! A package of its own, with no Vigil dependency, so the baseline builds (and stays minimal)
//! whatever state the workspace's crates are in.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    lambda_runtime::run(service_fn(|_event: LambdaEvent<Value>| {
        // Held like a real function holds its clients; never called.
        let _client = &dynamo;
        async { Ok::<_, Error>(serde_json::json!({})) }
    }))
    .await
}
