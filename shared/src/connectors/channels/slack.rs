//! Slack through an incoming webhook: one message with blocks per alert change (a header, the
//! summary, the facts as fields, the details, a button to the alert, the alert id), `text` as
//! the notification fallback. Every text stays within Block Kit's limits (header 150, section
//! 3,000, field 2,000, all block text well under the ~12,000 Slack takes per message), cut with
//! a marker, never refused for its size. A `400 invalid_blocks` is retried once as plain text.

use super::{SecretUrlWebhook, escape_markup, test_outcome};
use crate::channel::{AlertMessage, fit};
use crate::error::SinkError;
use crate::ports::{MessageChannel, PostError, RequestGate};
use crate::secret::SecretString;
use async_trait::async_trait;
use serde_json::{Value, json};

/// The fallback `text` Vigil sends (Slack truncates above 40,000 and advises 4,000).
pub const FALLBACK_CHARS: usize = 4_000;
/// Room for the details section (a section's text may have 3,000).
pub const DETAILS_CHARS: usize = 2_900;

/// A Slack channel's incoming webhook.
#[derive(Debug)]
pub struct SlackChannel(SecretUrlWebhook);

impl SlackChannel {
    #[must_use]
    pub fn new(http: reqwest::Client, webhook_url: SecretString, gate: RequestGate) -> Self {
        Self(SecretUrlWebhook::new(http, webhook_url, gate, "Slack webhook"))
    }
}

fn mrkdwn(text: &str) -> Value {
    json!({"type": "mrkdwn", "text": text})
}

/// The request body for `message`.
#[must_use]
pub fn message_body(message: &AlertMessage) -> Value {
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": fit(&message.headline, 150), "emoji": false}}),
        json!({"type": "section", "text": mrkdwn(&fit(&escape_markup(&message.body.summary), 2_000))}),
    ];
    let fields: Vec<Value> = message
        .facts
        .iter()
        .take(10)
        .map(|(name, value)| mrkdwn(&fit(&format!("*{}*\n{}", escape_markup(name), escape_markup(value)), 300)))
        .collect();
    if !fields.is_empty() {
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    let details = escape_markup(&message.body.text_within(DETAILS_CHARS));
    blocks.push(json!({"type": "section", "text": mrkdwn(&fit(&details, DETAILS_CHARS))}));
    if let Some(link) = &message.link {
        blocks.push(json!({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open in Vigil"}, "url": fit(link, 3_000), "action_id": "open_alert"}
        ]}));
    }
    json!({"text": fit(&message.headline, FALLBACK_CHARS), "blocks": blocks})
}

#[async_trait]
impl MessageChannel for SlackChannel {
    async fn post(&self, message: &AlertMessage) -> Result<(), PostError> {
        match self.0.send(&message_body(message)).await {
            Err(PostError::NotPosted(SinkError::Rejected(why)))
                if why.contains("invalid_blocks") || why.contains("msg_blocks_too_long") =>
            {
                tracing::warn!(message = "Slack refused the blocks; posting the message as plain text.", reason = %why);
                let text =
                    format!("{}\n{}", message.headline, message.body.text_within(FALLBACK_CHARS - message.headline.len().min(1_000)));
                self.0.send(&json!({"text": fit(&text, FALLBACK_CHARS)})).await.map(drop)
            }
            other => other.map(drop),
        }
    }

    async fn test(&self) -> Result<Vec<String>, SinkError> {
        let body = json!({"text": "Vigil test message: this channel receives Vigil's alerts."});
        Ok(test_outcome(self.0.send(&body).await.map(drop)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{AlertChange, render_message};
    use crate::contract::sample_alert;

    #[test]
    fn every_block_text_stays_within_block_kit_limits_for_an_oversize_alert() {
        let mut alert = sample_alert(chrono::Utc::now());
        alert.title = "T".repeat(5_000);
        alert.detail.description = "<script> & more ".repeat(2_000);
        let body = message_body(&render_message(&alert, AlertChange::Raised, Some("https://vigil.example")));
        let blocks = body["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50);
        assert!(blocks[0]["text"]["text"].as_str().unwrap().chars().count() <= 150);
        let mut total = 0;
        for block in blocks {
            if let Some(text) = block["text"]["text"].as_str() {
                assert!(text.chars().count() <= 3_000);
                assert!(!text.contains("<script>"), "markup is escaped");
                total += text.chars().count();
            }
        }
        assert!(total < 12_000, "{total}");
        assert!(body["text"].as_str().unwrap().chars().count() <= FALLBACK_CHARS);
    }
}
