//! Operator tool:
//! - `vigil-admin create-msp <msp-id> <display name> <owner name> <owner e-mail>` creates an MSP
//!   in the config table (or keeps an existing one) and its first owner, and prints the owner's
//!   API token (shown once; only its hash is stored). Every other principal and token is made
//!   through the API by an owner; running it again for an existing MSP adds another owner (the
//!   way back in for an MSP that lost its owners' tokens);
//! - `vigil-admin index-deliveries` indexes the open tickets and held alerts of deliveries saved
//!   before destinations (once, after upgrading; repeating it is harmless), so the ticket
//!   read-back sees them;
//! - `vigil-admin index-alerts` stamps alerts written before the change indexes (the alerts
//!   table's `by-change` and `by-tenant-change` GSIs) with the time they were last updated and
//!   their tenant's key, whichever they lack (once, after upgrading; repeating it is harmless),
//!   so the SIEM feed and the alert list, filtered to a tenant or not, see them;
//! - `vigil-admin dlq inspect <poll-jobs|events|tickets>` lists what waits on that queue's
//!   dead-letter queue and why each message failed as far as the message tells
//!   ([`vigil_local::dlq`]); `vigil-admin dlq redrive <queue> <message-id>… | --all [--force]`
//!   sends the chosen messages back to the queue they came from (safe: every effect is
//!   idempotent). Reads `<QUEUE>_QUEUE_URL` and `<QUEUE>_DLQ_URL` (e.g. `TICKETS_QUEUE_URL`,
//!   `TICKETS_DLQ_URL`: the stack outputs `TicketsQueueUrl`, `TicketsDeadLetterQueueUrl`).
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
    if args.first().map(String::as_str) == Some("dlq") {
        return dlq(&args[1..]).await;
    }
    let (Some("create-msp"), Some(id), Some(name), Some(owner), Some(email)) =
        (args.first().map(String::as_str), args.get(1), args.get(2), args.get(3), args.get(4))
    else {
        eprintln!(
            "usage: vigil-admin create-msp <msp-id> <display name> <owner name> <owner e-mail> | vigil-admin index-deliveries | vigil-admin index-alerts | vigil-admin dlq inspect <queue> | vigil-admin dlq redrive <queue> <message-id>...|--all [--force]\n  env: CONFIG_TABLE, ALERTS_TABLE, AWS credentials/region"
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

/// `dlq inspect <queue>` / `dlq redrive <queue> <ids>… | --all [--force]`.
async fn dlq(args: &[String]) -> ExitCode {
    use vigil_local::dlq::{Dlq, QueueKind};
    let usage = "usage: vigil-admin dlq inspect <poll-jobs|events|tickets> | vigil-admin dlq redrive <poll-jobs|events|tickets> <message-id>... | --all [--force]";
    let (Some(action), Some(kind)) = (args.first().map(String::as_str), args.get(1).and_then(|k| QueueKind::parse(k))) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let (source_variable, dlq_variable) = kind.variables();
    let (Ok(source_url), Ok(dlq_url)) = (std::env::var(source_variable), std::env::var(dlq_variable)) else {
        eprintln!("set {source_variable} and {dlq_variable} (the stack outputs) to the queue's and its DLQ's URLs");
        return ExitCode::from(2);
    };
    let sdk = vigil::aws::sdk_config_from_env().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    // Held for five minutes while the operator's command runs; released at the end.
    let dlq = match Dlq::read(sqs, kind, &dlq_url, 1000, 300).await {
        Ok(dlq) => dlq,
        Err(error) => {
            eprintln!("could not read the DLQ: {error}");
            return ExitCode::FAILURE;
        }
    };
    match action {
        "inspect" => {
            println!("{} message(s) on the {} dead-letter queue:", dlq.letters.len(), kind.consumer());
            for letter in &dlq.letters {
                let sent = letter
                    .sent_at_ms
                    .and_then(chrono::DateTime::from_timestamp_millis)
                    .map_or_else(|| "?".to_owned(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string());
                let subject: Vec<String> = letter.subject.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!("\n{}  received {} time(s), first sent {sent}", letter.message_id, letter.receive_count);
                println!("  about: {}", if subject.is_empty() { "-".to_owned() } else { subject.join(" ") });
                println!("  why:   {}", letter.diagnosis);
                println!(
                    "  redrive: {}",
                    if letter.diagnosis.redrivable() { "yes, once the cause is fixed" } else { "no (--force sends it anyway)" }
                );
                println!("  logs:  {}", dlq.log_query(&letter.message_id));
            }
            match dlq.release().await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("{error}");
                    ExitCode::FAILURE
                }
            }
        }
        "redrive" => {
            let rest = &args[2..];
            let all = rest.iter().any(|a| a == "--all");
            let force = rest.iter().any(|a| a == "--force");
            let ids: Vec<String> = rest.iter().filter(|a| !a.starts_with("--")).cloned().collect();
            if ids.is_empty() && !all {
                eprintln!("name the message ids to redrive (see dlq inspect), or --all for every redrivable one");
                let _ = dlq.release().await;
                return ExitCode::from(2);
            }
            match dlq.redrive(&source_url, &ids, all, force).await {
                Ok(moved) => {
                    println!("{} message(s) sent back to the {} queue: {}", moved.len(), kind.consumer(), moved.join(" "));
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("nothing redriven: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!("{usage}");
            let _ = dlq.release().await;
            ExitCode::from(2)
        }
    }
}
