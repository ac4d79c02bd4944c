//! Lambda entry point of ticket-dispatcher.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    vigil::lambda::init_telemetry();
    let config = ticket_dispatcher::Config::from_lookup(&vigil::settings::process_env)?;
    let sdk = vigil::aws::sdk_config_from_env().await;
    let service = ticket_dispatcher::build(&config, &sdk)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<_, Error>(ticket_dispatcher::handle(&service, event.payload).await)
    }))
    .await
}
