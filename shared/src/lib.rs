//! Vigil's domain crate: Microsoft 365 audit records, alert policies, alerts and PSA tickets,
//! the ports (traits) the services need, and the services themselves.
//!
//! The core knows nothing of AWS: DynamoDB, SQS and Secrets Manager adapters live behind the
//! `aws` feature, HTTP connectors to Microsoft 365 and ConnectWise behind `connectors`, and the
//! Lambda glue shared by the functions behind `lambda`. `cargo test -p vigil` builds none of them.

pub mod access;
pub mod alert;
pub mod audit;
pub mod billing;
pub mod call_budget;
pub mod changes;
pub mod channel;
pub mod clock;
pub mod coverage;
pub mod destination;
pub mod destination_checks;
pub mod error;
pub mod ids;
pub mod licences;
pub mod limits;
pub mod mac;
pub mod mail;
pub mod memory;
pub mod messages;
pub mod offboarding;
pub mod onboarding;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod policy;
pub mod ports;
pub mod records;
pub mod relationships;
pub mod render;
pub mod replay;
pub mod secret;
pub mod secret_cache;
pub mod selfmon;
pub mod services;
pub mod settings;
pub mod tape;
pub mod tenant;
pub mod ticket;

#[cfg(any(test, feature = "contract"))]
pub mod contract;
#[cfg(any(test, feature = "contract"))]
pub mod message_contract;
#[cfg(any(test, feature = "contract"))]
pub mod random_json;
#[cfg(any(test, feature = "contract"))]
pub mod ticket_contract;

#[cfg(feature = "connectors")]
pub mod connectors;

/// Without the `connectors` feature, only the destination URL rules (the config API checks
/// addresses before saving them, with or without HTTP clients).
#[cfg(not(feature = "connectors"))]
pub mod connectors {
    pub mod destination_url;
}

#[cfg(feature = "aws")]
pub mod aws;

#[cfg(feature = "lambda")]
pub mod lambda;
