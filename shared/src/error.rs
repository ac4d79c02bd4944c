//! Error classification shared by every port and service.
//!
//! Every error Vigil handles is classified exactly once, where it is created, as
//! [`ErrorClass::Transient`] (retry later: throttling, timeouts, 5xx), [`ErrorClass::Permanent`]
//! (will not succeed by retrying: revoked consent, 4xx, missing configuration) or
//! [`ErrorClass::Invalid`] (the input itself is wrong). Transports map the class once:
//! HTTP → status code, SQS → batch item failure (and, after `maxReceiveCount`, the DLQ).

use std::time::Duration;

/// How an error should be handled by whoever transports the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Worth retrying as is, possibly after a delay.
    Transient,
    /// Retrying will not help until someone changes configuration; dead-letter and alarm.
    Permanent,
    /// The input is malformed or refers to something that does not exist.
    Invalid,
}

impl ErrorClass {
    /// A short, bounded label for logs and metric dimensions.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::Permanent => "permanent",
            Self::Invalid => "invalid",
        }
    }
}

/// Implemented by every error type that crosses a port.
pub trait Classified: std::error::Error {
    /// The class of this error.
    fn class(&self) -> ErrorClass;
    /// How long the transport should wait before retrying, when the remote said so.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// Errors from the stores (DynamoDB, in-memory).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost against a concurrent writer.
    #[error("concurrent modification of {what}")]
    Conflict { what: String },
    /// The backend is throttling, timed out or failed on its side.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// An item could not be mapped to or from the domain.
    #[error("corrupt item {what}: {reason}")]
    Corrupt { what: String, reason: String },
    /// The request was refused (permissions, validation): retrying will not help.
    #[error("store request rejected: {0}")]
    Rejected(String),
}

impl Classified for StoreError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Conflict { .. } | Self::Unavailable(_) => ErrorClass::Transient,
            Self::Corrupt { .. } | Self::Rejected(_) => ErrorClass::Permanent,
        }
    }
}

/// Errors from message queues (SQS, in-memory).
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueueError {
    /// The queue is throttling or unreachable.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// The message was refused (too large, bad attributes, permissions).
    #[error("message rejected: {0}")]
    Rejected(String),
}

impl Classified for QueueError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Unavailable(_) => ErrorClass::Transient,
            Self::Rejected(_) => ErrorClass::Permanent,
        }
    }
}

/// Errors from the secret store (Secrets Manager, in-memory).
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The backend is throttling or unreachable.
    #[error("secret store unavailable: {0}")]
    Unavailable(String),
    /// The request was refused (permissions, invalid name).
    #[error("secret request rejected: {0}")]
    Rejected(String),
    /// A stored secret does not have the expected shape. Never includes the value.
    #[error("secret {name} is malformed")]
    Malformed { name: String },
}

impl Classified for SecretError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Unavailable(_) => ErrorClass::Transient,
            Self::Rejected(_) | Self::Malformed { .. } => ErrorClass::Permanent,
        }
    }
}

/// Errors from an audit source (the Management Activity API).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Throttled (429, or 403 with AF429); retry after the given delay if known.
    #[error("throttled by the audit source")]
    Throttled { retry_after: Option<Duration> },
    /// Network failure, timeout or 5xx.
    #[error("audit source unavailable: {0}")]
    Unavailable(String),
    /// Consent missing or revoked, app disabled, permission missing (AADSTS700016, AF10001 …).
    #[error("access to the tenant was refused: {code}: {message}")]
    AccessRefused { code: String, message: String },
    /// The time window of a listing was refused (AF20055 "not less than 24 hours" on the live
    /// service, AF20030 bad or too old a range): list a shorter or later window, not the same
    /// one again.
    #[error("the audit source refused the time window: {code}: {message}")]
    WindowRefused { code: String, message: String },
    /// Any other refusal that retrying will not fix (bad request, tenant offboarded).
    #[error("audit source rejected the request: {code}: {message}")]
    Rejected { code: String, message: String },
}

impl Classified for SourceError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Throttled { .. } | Self::Unavailable(_) | Self::WindowRefused { .. } => ErrorClass::Transient,
            Self::AccessRefused { .. } | Self::Rejected { .. } => ErrorClass::Permanent,
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after } => *retry_after,
            _ => None,
        }
    }
}

/// Errors from a ticket sink (a PSA).
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Throttled (429); retry after the given delay if known.
    #[error("throttled by the PSA")]
    Throttled { retry_after: Option<Duration> },
    /// Network failure, timeout or 5xx.
    #[error("PSA unavailable: {0}")]
    Unavailable(String),
    /// Credentials refused (401/403).
    #[error("PSA refused our credentials: {0}")]
    Unauthorized(String),
    /// The PSA rejected the request body (400) or the target does not exist (404).
    #[error("PSA rejected the request: {0}")]
    Rejected(String),
    /// A value Vigil was given cannot be what the PSA needs (a reference that is not one of its
    /// ids, a missing parameter): nothing was sent.
    #[error("not a request this PSA can take: {0}")]
    Invalid(String),
    /// The ticket was deleted or merged into another: it will never take a note or a close.
    #[error("the ticket is gone from the PSA: {0}")]
    Gone(String),
    /// Vigil's own share of the destination's request allowance is used up: the request was
    /// not sent. Retry after the given delay.
    #[error("the destination's hourly request share is used up")]
    OverBudget { retry_after: Duration },
}

impl Classified for SinkError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Throttled { .. } | Self::Unavailable(_) | Self::OverBudget { .. } => ErrorClass::Transient,
            Self::Unauthorized(_) | Self::Rejected(_) | Self::Invalid(_) | Self::Gone(_) => ErrorClass::Permanent,
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after } => *retry_after,
            Self::OverBudget { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_is_transient_and_keeps_its_delay() {
        let error = SourceError::Throttled { retry_after: Some(Duration::from_secs(7)) };
        assert_eq!(error.class(), ErrorClass::Transient);
        assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
    }

    #[test]
    fn revoked_consent_is_permanent() {
        let error = SourceError::AccessRefused { code: "AADSTS700016".into(), message: "x".into() };
        assert_eq!(error.class(), ErrorClass::Permanent);
    }

    #[test]
    fn psa_rejection_is_permanent_and_outage_is_transient() {
        assert_eq!(SinkError::Rejected("400".into()).class(), ErrorClass::Permanent);
        assert_eq!(SinkError::Unavailable("500".into()).class(), ErrorClass::Transient);
    }
}
