//! Lambda entry point of webhook-receiver.

use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    vigil::lambda::init_telemetry();
    lambda_http::run(webhook_receiver::app()).await
}
