//! Vigil off AWS: reads template.yaml, provisions its tables and queues on moto server, starts
//! the Microsoft 365, ConnectWise and Autotask simulators, and runs the real handlers of every function
//! behind a local schedule, local SQS event source mappings and a local HTTP gateway.

pub mod bench_cli;
pub mod demo;
pub mod demo_billing;
mod demo_channels;
mod demo_halo_tigerpaw;
pub mod demo_licences;
mod demo_offboarding;
mod demo_onboarding;
mod demo_psa;
mod demo_relationships;
mod demo_roles;
mod demo_self_monitoring;
mod demo_tenant_queue;
mod demo_threats;
mod demo_ticket_links;
pub mod dlq;
pub mod esm;
pub mod gateway;
pub mod moto;
pub mod package_check;
pub mod provision;
pub mod scale;
pub mod stack;
pub mod template;

pub use stack::{LocalOptions, LocalStack, StackError};

use std::path::PathBuf;

/// The repository root (where template.yaml lives).
#[must_use]
pub fn repo_root() -> PathBuf {
    std::env::var_os("VIGIL_REPO_ROOT").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."), PathBuf::from)
}
