//! Lambda entry point of config-api: the axum router served by `lambda_http`.

use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    vigil::lambda::init_telemetry();
    let config = config_api::Config::from_lookup(&vigil::settings::process_env)?;
    let sdk = vigil::aws::sdk_config_from_env().await;
    lambda_http::run(config_api::app(config_api::build(&config, &sdk))).await
}
