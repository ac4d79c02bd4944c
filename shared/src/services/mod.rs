//! Use cases. Each service depends only on ports, is built once per container (cold start)
//! and is called by a thin handler once per message or request.

pub mod access;
pub mod admin;
pub mod alert_feed;
pub mod alert_tickets;
pub mod billing;
pub mod billing_sync;
pub mod coverage;
pub mod destinations;
pub mod dispatch;
pub mod evaluate;
pub mod licences;
pub mod mailbox_counts;
pub mod offboarding;
pub mod onboarding;
pub mod poll;
pub mod relationship_removal;
pub mod relationships;
pub mod replay;
pub mod shadow;
pub mod tuning;

/// Reads an optional request field so that `null` differs from absent: absent stays `None`
/// (with `#[serde(default)]`), present — even as `null` — is `Some`.
///
/// # Errors
/// When the value present is not a `T`.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}
