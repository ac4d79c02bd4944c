//! Lambda entry point of ticket-dispatcher: builds everything once, then serves the tickets
//! queue's batches and the read-back schedule's ticks.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    vigil::lambda::init_telemetry();
    let config = ticket_dispatcher::Config::from_lookup(&vigil::settings::process_env)?;
    let sdk = vigil::aws::sdk_config_from_env().await;
    let dispatcher = ticket_dispatcher::build(&config, &sdk);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async {
        if ticket_dispatcher::is_sqs_batch(&event.payload) {
            let batch: SqsEvent = serde_json::from_value(event.payload)?;
            Ok::<_, Error>(serde_json::to_value(ticket_dispatcher::handle(&dispatcher, batch).await)?)
        } else {
            let report = ticket_dispatcher::handle_tick(&dispatcher).await?;
            tracing::info!(message = "Ticket states read back.", checked = report.checked, closed = report.closed, gone = report.gone);
            Ok(serde_json::json!({ "checked": report.checked, "closed": report.closed, "gone": report.gone }))
        }
    }))
    .await
}
