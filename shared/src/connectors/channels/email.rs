//! E-mail as a channel: one message per alert change to the destination's recipients, through
//! the [`MailSender`] port (Amazon SES in production, the same sender the admin-relationship
//! notices use), with a plain-text and an HTML body rendered from the same neutral text.
//!
//! E-mail has no idempotency key: a send that got no answer is "maybe posted" and is not sent
//! again (see the dispatcher); throttling, outages and refusals are "not posted" (SES answered).

use crate::channel::{AlertMessage, fit};
use crate::destination::EmailSettings;
use crate::error::SinkError;
use crate::mail::{MailError, OutgoingMail};
use crate::ports::{MailSender, MessageChannel, PostError};
use async_trait::async_trait;
use std::fmt::Write as _;
use std::sync::Arc;

/// Longest subject (mail clients cut long ones anyway).
pub const SUBJECT_CHARS: usize = 200;
/// Longest plain-text body.
pub const TEXT_CHARS: usize = 100_000;

/// An e-mail destination.
pub struct EmailChannel {
    sender: Arc<dyn MailSender>,
    settings: EmailSettings,
}

impl std::fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailChannel").field("recipients", &self.settings.recipients.len()).finish_non_exhaustive()
    }
}

impl EmailChannel {
    #[must_use]
    pub fn new(sender: Arc<dyn MailSender>, settings: EmailSettings) -> Self {
        Self { sender, settings }
    }

    fn subject(&self, text: &str) -> String {
        let subject = match &self.settings.subject_prefix {
            Some(prefix) => format!("{prefix} {text}"),
            None => text.to_owned(),
        };
        fit(&subject.replace(['\r', '\n'], " "), SUBJECT_CHARS)
    }

    async fn send(&self, mail: &OutgoingMail) -> Result<(), PostError> {
        self.sender.send(mail).await.map(drop).map_err(|error| match error {
            MailError::Unavailable(why) => PostError::NotPosted(SinkError::Unavailable(why)),
            MailError::Throttled(_) => PostError::NotPosted(SinkError::Throttled { retry_after: Some(crate::mail::THROTTLED_WAIT) }),
            MailError::Unanswered(why) => PostError::MaybePosted(SinkError::Unavailable(why)),
            MailError::Rejected(why) => PostError::NotPosted(SinkError::Rejected(why)),
            MailError::NotConfigured => PostError::NotPosted(SinkError::Rejected(MailError::NotConfigured.to_string())),
        })
    }
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The HTML body: the same text as the plain one, as headings, a fact table and lines.
#[must_use]
pub fn html_body(message: &AlertMessage) -> String {
    let mut html = String::from("<!DOCTYPE html><html><body style=\"font-family:sans-serif\">");
    let _ = write!(
        html,
        "<h2>{}</h2><p>{}</p><table>",
        escape_html(&message.headline),
        escape_html(&message.body.summary).replace('\n', "<br>")
    );
    for (name, value) in &message.facts {
        let _ = write!(html, "<tr><th align=\"left\">{}</th><td>{}</td></tr>", escape_html(name), escape_html(value));
    }
    html.push_str("</table>");
    for section in &message.body.sections {
        let _ = write!(html, "<h3>{}</h3><ul>", escape_html(&section.heading));
        for line in &section.lines {
            let _ = write!(html, "<li>{}</li>", escape_html(line));
        }
        html.push_str("</ul>");
    }
    if let Some(link) = &message.link {
        let _ = write!(html, "<p><a href=\"{0}\">Open the alert in Vigil</a></p>", escape_html(link));
    }
    let _ = write!(html, "<p><small>{}</small></p></body></html>", escape_html(&message.body.footer));
    html
}

#[async_trait]
impl MessageChannel for EmailChannel {
    async fn post(&self, message: &AlertMessage) -> Result<(), PostError> {
        let text = format!("{}\n\n{}", message.headline, message.body.text_within(TEXT_CHARS));
        let mail = OutgoingMail {
            to: self.settings.recipients.clone(),
            subject: self.subject(&message.headline),
            text,
            html: Some(html_body(message)),
        };
        self.send(&mail).await
    }

    async fn test(&self) -> Result<Vec<String>, SinkError> {
        let mail = OutgoingMail {
            to: self.settings.recipients.clone(),
            subject: self.subject("[Vigil] Test message"),
            text: "Vigil test message: these recipients receive Vigil's alerts.".to_owned(),
            html: None,
        };
        Ok(super::test_outcome(self.send(&mail).await))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{AlertChange, render_message};
    use crate::contract::sample_alert;

    #[test]
    fn the_html_body_escapes_what_the_alert_says() {
        let mut alert = sample_alert(chrono::Utc::now());
        alert.title = "<img src=x onerror=alert(1)>".into();
        let html = html_body(&render_message(&alert, AlertChange::Raised, None));
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;img"));
    }
}
