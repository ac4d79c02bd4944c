//! Lambda entry point of audit-poller: builds everything once, then serves the schedule's
//! ticks and the poll-jobs queue's batches.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    vigil::lambda::init_telemetry();
    let config = audit_poller::Config::from_lookup(&vigil::settings::process_env)?;
    let sdk = vigil::aws::sdk_config_from_env().await;
    let poller = audit_poller::build(&config, &sdk);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async {
        if audit_poller::is_sqs_batch(&event.payload) {
            let batch: SqsEvent = serde_json::from_value(event.payload)?;
            let (response, report) = audit_poller::handle_jobs(&poller, batch).await;
            tracing::info!(
                message = "Poll jobs done.",
                enqueued = report.records_enqueued,
                blobs = report.blobs_fetched,
                failed = response.batch_item_failures.len()
            );
            Ok::<_, Error>(serde_json::to_value(response)?)
        } else {
            let jobs = audit_poller::handle_tick(&poller).await?;
            Ok(serde_json::json!({ "jobs": jobs }))
        }
    }))
    .await
}
