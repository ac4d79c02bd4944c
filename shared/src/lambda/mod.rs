//! Lambda glue shared by every function: telemetry setup, SQS partial-batch processing and
//! retry delays.

pub mod metrics;
pub mod retry;
pub mod sqs_batch;

/// Initialises `tracing` the way the Lambda runtime recommends: JSON when the function's
/// `LoggingConfig.LogFormat` is JSON (`AWS_LAMBDA_LOG_FORMAT`), level from
/// `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`. Call once, in `main`.
pub fn init_telemetry() {
    lambda_runtime::tracing::init_default_subscriber();
}
