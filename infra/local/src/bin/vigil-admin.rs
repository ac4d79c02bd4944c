//! Operator tool:
//! - `vigil-admin create-msp <msp-id> <display name>` creates an MSP in the config table and
//!   prints a new API token for it (shown once; only its hash is stored);
//! - `vigil-admin index-deliveries` indexes the open tickets and held alerts of deliveries saved
//!   before destinations (once, after upgrading; repeating it is harmless), so the ticket
//!   read-back sees them;
//! - `vigil-admin index-alerts` stamps alerts written before the change index (the alerts
//!   table's `by-change` GSI) with the time they were last updated (once, after upgrading;
//!   repeating it is harmless), so the SIEM feed and the alert list see them.
//!
//! Reads `CONFIG_TABLE` and `ALERTS_TABLE` (the stack outputs `ConfigTableName`,
//! `AlertsTableName`) and the usual AWS environment (`AWS_PROFILE`/`AWS_REGION`, or
//! `AWS_ENDPOINT_URL` for moto).

use std::process::ExitCode;
use std::sync::Arc;
use vigil::aws::dynamodb::{DynamoAlertStore, DynamoConfigStore};
use vigil::aws::secrets::SecretsManagerStore;
use vigil::clock::SystemClock;
use vigil::ids::MspId;
use vigil::services::admin::AdminService;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("index-deliveries") {
        return index_deliveries().await;
    }
    if args.first().map(String::as_str) == Some("index-alerts") {
        return index_alerts().await;
    }
    let (Some("create-msp"), Some(id), Some(name)) = (args.first().map(String::as_str), args.get(1), args.get(2)) else {
        eprintln!(
            "usage: vigil-admin create-msp <msp-id> <display name> | vigil-admin index-deliveries | vigil-admin index-alerts\n  env: CONFIG_TABLE, ALERTS_TABLE, AWS credentials/region"
        );
        return ExitCode::from(2);
    };
    let msp_id = match MspId::parse(id) {
        Ok(id) => id,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let (Ok(config_table), Ok(alerts_table)) = (std::env::var("CONFIG_TABLE"), std::env::var("ALERTS_TABLE")) else {
        eprintln!("set CONFIG_TABLE and ALERTS_TABLE to the stack's table names");
        return ExitCode::from(2);
    };
    let sdk = vigil::aws::sdk_config_from_env().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let admin = AdminService {
        ingest: Arc::new(vigil::memory::MemoryIngestState::default()),
        config: Arc::new(DynamoConfigStore::new(dynamo.clone(), config_table)),
        alerts: Arc::new(DynamoAlertStore::new(dynamo, alerts_table)),
        secrets: Arc::new(SecretsManagerStore::new(
            aws_sdk_secretsmanager::Client::new(&sdk),
            std::env::var("SECRET_PREFIX").unwrap_or_default(),
        )),
        clock: Arc::new(SystemClock),
    };
    match admin.create_msp_with_token(&msp_id, name).await {
        Ok(token) => {
            println!("MSP {msp_id} is ready. Its API token (shown once, store it in your password manager):\n{}", token.expose());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("could not create the MSP: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Indexes deliveries saved before the open-ticket and held indexes existed.
async fn index_deliveries() -> ExitCode {
    let Ok(alerts_table) = std::env::var("ALERTS_TABLE") else {
        eprintln!("set ALERTS_TABLE to the stack's alerts table name");
        return ExitCode::from(2);
    };
    let sdk = vigil::aws::sdk_config_from_env().await;
    let store = DynamoAlertStore::new(aws_sdk_dynamodb::Client::new(&sdk), alerts_table);
    match store.index_earlier_deliveries().await {
        Ok(indexed) => {
            println!("{indexed} deliveries indexed.");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("could not index deliveries: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Stamps alerts written before the change index existed.
async fn index_alerts() -> ExitCode {
    let Ok(alerts_table) = std::env::var("ALERTS_TABLE") else {
        eprintln!("set ALERTS_TABLE to the stack's alerts table name");
        return ExitCode::from(2);
    };
    let sdk = vigil::aws::sdk_config_from_env().await;
    let store = DynamoAlertStore::new(aws_sdk_dynamodb::Client::new(&sdk), alerts_table);
    match store.index_earlier_alerts().await {
        Ok(stamped) => {
            println!("{stamped} alerts indexed.");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("could not index alerts: {error}");
            ExitCode::FAILURE
        }
    }
}
