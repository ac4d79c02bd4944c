//! Operator tool:
//! - `vigil-admin create-msp <msp-id> <display name> <owner name> <owner e-mail>` creates an MSP
//!   in the config table (or keeps an existing one) and its first owner, and prints the owner's
//!   API token (shown once; only its hash is stored). Every other principal and token is made
//!   through the API by an owner; running it again for an existing MSP adds another owner (the
//!   way back in for an MSP that lost its owners' tokens);
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
use vigil::clock::SystemClock;
use vigil::ids::MspId;
use vigil::services::access::{AccessService, AuditTrail};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("index-deliveries") {
        return index_deliveries().await;
    }
    if args.first().map(String::as_str) == Some("index-alerts") {
        return index_alerts().await;
    }
    let (Some("create-msp"), Some(id), Some(name), Some(owner), Some(email)) =
        (args.first().map(String::as_str), args.get(1), args.get(2), args.get(3), args.get(4))
    else {
        eprintln!(
            "usage: vigil-admin create-msp <msp-id> <display name> <owner name> <owner e-mail> | vigil-admin index-deliveries | vigil-admin index-alerts\n  env: CONFIG_TABLE, ALERTS_TABLE, AWS credentials/region"
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
    let Ok(config_table) = std::env::var("CONFIG_TABLE") else {
        eprintln!("set CONFIG_TABLE to the stack's config table name");
        return ExitCode::from(2);
    };
    let sdk = vigil::aws::sdk_config_from_env().await;
    let store = Arc::new(DynamoConfigStore::new(aws_sdk_dynamodb::Client::new(&sdk), config_table));
    let access = AccessService {
        config: store.clone(),
        principals: store.clone(),
        audit: AuditTrail { log: store, clock: Arc::new(SystemClock) },
        clock: Arc::new(SystemClock),
    };
    match access.create_msp_with_owner(&msp_id, name, owner, email).await {
        Ok((principal, issued)) => {
            println!(
                "MSP {msp_id} is ready; its owner {} is principal {}. The owner's API token (shown once, store it in your password manager; it expires {}):\n{}",
                principal.name,
                principal.principal_id,
                issued.stored.expires_at.map_or_else(|| "never".to_owned(), |at| at.date_naive().to_string()),
                issued.token.expose()
            );
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
