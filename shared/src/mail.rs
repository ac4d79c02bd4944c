//! Outgoing e-mail (alerts to an e-mail destination, a customer told that the MSP removed its
//! delegated admin access): the
//! message, the address rules, and how sending can fail. The sending itself is a port
//! ([`crate::ports::MailSender`]), Amazon SES in production.

use crate::error::{Classified, ErrorClass};

/// How long to wait after SES throttled a send (it sends no `Retry-After`).
pub const THROTTLED_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Longest address accepted (RFC 5321's path limit).
pub const ADDRESS_MAX: usize = 254;

/// One e-mail to send: plain text, and an HTML alternative of the same text when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// Every recipient (one message to all, at most 50).
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// Why a mail was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// Throttled or unavailable: nothing was sent; try again.
    #[error("the mail service is unavailable: {0}")]
    Unavailable(String),
    /// Refused (an unverified sender, a rejected recipient, sending paused): retrying will
    /// not help.
    #[error("the mail service refused the message: {0}")]
    Rejected(String),
    /// Throttled (sending rate or daily quota): nothing was sent; SES gives no `Retry-After`, so
    /// the wait is [`THROTTLED_WAIT`] (AWS advises waiting before retrying a quota breach).
    #[error("the mail service is throttling: {0}")]
    Throttled(String),
    /// The request was sent and no answer came (a timeout): the mail may have gone out.
    #[error("the mail service did not answer: {0}")]
    Unanswered(String),
    /// No sender address is configured: e-mail is off in this deployment.
    #[error("e-mail is not configured (NOTIFY_FROM_ADDRESS)")]
    NotConfigured,
}

impl Classified for MailError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Unavailable(_) | Self::Unanswered(_) | Self::Throttled(_) => ErrorClass::Transient,
            Self::Rejected(_) | Self::NotConfigured => ErrorClass::Permanent,
        }
    }
    fn retry_after(&self) -> Option<std::time::Duration> {
        matches!(self, Self::Throttled(_)).then_some(THROTTLED_WAIT)
    }
}

/// Checks an e-mail address as far as is useful before sending: one `@` with text on both
/// sides, a dot in the domain, no spaces or control characters, at most [`ADDRESS_MAX`] bytes.
///
/// # Errors
/// The reason, for a 422.
pub fn check_address(address: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{address:?} is not an e-mail address: {why}"));
    if address.len() > ADDRESS_MAX {
        return bad(&format!("longer than {ADDRESS_MAX} characters"));
    }
    if address.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it contains spaces or control characters");
    }
    match address.split_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.contains('@') && domain.contains('.') && !domain.ends_with('.') => Ok(()),
        _ => bad("it needs one @ between a name and a domain"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plausible_addresses_pass_and_others_say_why() {
        assert!(check_address("it@contoso.com").is_ok());
        assert!(check_address("first.last+vigil@sub.contoso.co.uk").is_ok());
        for bad in [
            "",
            "contoso.com",
            "@contoso.com",
            "it@",
            "it@contoso",
            "it@@contoso.com",
            "it@contoso.",
            "i t@contoso.com",
            "it@contoso.com\n",
        ] {
            assert!(check_address(bad).is_err(), "{bad:?}");
        }
        assert!(check_address(&format!("{}@contoso.com", "a".repeat(250))).is_err());
    }
}
