//! Lambda entry point of webhook-receiver: the axum router served by `lambda_http`.

use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    vigil::lambda::init_telemetry();
    let config = webhook_receiver::Config::from_lookup(&vigil::settings::process_env)?;
    let sdk = vigil::aws::sdk_config_from_env().await;
    lambda_http::run(webhook_receiver::app(webhook_receiver::build(&config, &sdk))).await
}
