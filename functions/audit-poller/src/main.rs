//! Lambda entry point of audit-poller: builds everything once, then serves invocations.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    vigil::lambda::init_telemetry();
    let config = audit_poller::Config::from_lookup(&vigil::settings::process_env)?;
    let sdk = vigil::aws::sdk_config_from_env().await;
    let service = audit_poller::build(&config, &sdk)?;
    lambda_runtime::run(service_fn(|_event: LambdaEvent<Value>| async {
        let report = audit_poller::handle(&service).await?;
        tracing::info!(
            message = "Poll run finished.",
            streams = report.streams_polled,
            failed = report.streams_failed,
            enqueued = report.records_enqueued,
            quarantined = report.quarantined
        );
        Ok::<_, Error>(
            serde_json::json!({ "streams": report.streams_polled, "failed": report.streams_failed, "enqueued": report.records_enqueued }),
        )
    }))
    .await
}
