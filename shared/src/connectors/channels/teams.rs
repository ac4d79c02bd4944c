//! Microsoft Teams through a Workflows webhook ("When a Teams webhook request is received"):
//! one Adaptive Card per alert change, in the `{"type": "message", "attachments": [...]}`
//! envelope the Workflows templates loop over. The Office 365 connector webhooks are retired;
//! only Workflows URLs are accepted (the destination URL rules check the host).
//!
//! Cards stay under [`CARD_BYTES_MAX`] (Workflows refuses about 28 KB; 20 KB leaves room): the
//! details are cut with a marker before anything else, never refused. Any 2xx is accepted
//! (Workflows answers 202: the flow runs later).

use super::{SecretUrlWebhook, test_outcome};
use crate::alert::Severity;
use crate::channel::{AlertMessage, fit};
use crate::error::SinkError;
use crate::ports::{MessageChannel, PostError, RequestGate};
use crate::secret::SecretString;
use async_trait::async_trait;
use serde_json::{Value, json};

/// The largest card Vigil posts (bytes of the whole request body).
pub const CARD_BYTES_MAX: usize = 20_000;
/// The Adaptive Card version Vigil writes: what Workflows renders safely (Teams renders up to 1.5).
pub const CARD_VERSION: &str = "1.4";

/// A Teams channel's Workflows webhook.
#[derive(Debug)]
pub struct TeamsChannel(SecretUrlWebhook);

impl TeamsChannel {
    #[must_use]
    pub fn new(http: reqwest::Client, workflow_url: SecretString, gate: RequestGate) -> Self {
        Self(SecretUrlWebhook::new(http, workflow_url, gate, "Teams workflow"))
    }
}

fn color(severity: Severity) -> &'static str {
    match severity {
        Severity::High => "Attention",
        Severity::Medium => "Warning",
        Severity::Low | Severity::Informational => "Default",
    }
}

/// The `{"type": "message", "attachments": [card]}` envelope of `card`.
fn envelope(card: Value) -> Value {
    json!({
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": card}]
    })
}

fn card(message: &AlertMessage, details: &str) -> Value {
    let mut body = vec![
        json!({"type": "TextBlock", "text": fit(&message.headline, 400), "weight": "Bolder", "size": "Medium", "wrap": true, "color": color(message.severity)}),
        json!({"type": "TextBlock", "text": fit(&message.body.summary, 2_000), "wrap": true}),
        json!({"type": "FactSet", "facts": message.facts.iter().map(|(title, value)| json!({"title": fit(title, 50), "value": fit(value, 300)})).collect::<Vec<_>>()}),
    ];
    if !details.is_empty() {
        body.push(json!({"type": "TextBlock", "text": details, "wrap": true, "isSubtle": true, "size": "Small", "separator": true}));
    }
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    });
    if let Some(link) = &message.link {
        card["actions"] = json!([{"type": "Action.OpenUrl", "title": "Open in Vigil", "url": link}]);
    }
    card
}

/// The request body for `message`: the card with as much of the alert's text as fits in
/// [`CARD_BYTES_MAX`].
#[must_use]
pub fn message_body(message: &AlertMessage) -> Value {
    let mut room = 12_000usize;
    loop {
        let details = if room == 0 { String::new() } else { fit(&message.body.text_within(room), room) };
        let body = envelope(card(message, &details));
        if room == 0 || serde_json::to_vec(&body).map_or(usize::MAX, |b| b.len()) <= CARD_BYTES_MAX {
            return body;
        }
        room = if room > 500 { room / 2 } else { 0 };
    }
}

#[async_trait]
impl MessageChannel for TeamsChannel {
    async fn post(&self, message: &AlertMessage) -> Result<(), PostError> {
        self.0.send(&message_body(message)).await.map(drop)
    }

    async fn test(&self) -> Result<Vec<String>, SinkError> {
        let card = json!({
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": CARD_VERSION,
            "body": [{"type": "TextBlock", "text": "Vigil test message: this channel receives Vigil's alerts.", "wrap": true}],
        });
        Ok(test_outcome(self.0.send(&envelope(card)).await.map(drop)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{AlertChange, render_message};
    use crate::contract::sample_alert;

    #[test]
    fn an_oversize_alert_becomes_a_card_within_the_limit_that_says_it_was_cut() {
        let mut alert = sample_alert(chrono::Utc::now());
        alert.detail.description = "A very long description. ".repeat(4_000);
        let body = message_body(&render_message(&alert, AlertChange::Raised, Some("https://vigil.example")));
        let bytes = serde_json::to_vec(&body).unwrap().len();
        assert!(bytes <= CARD_BYTES_MAX, "{bytes}");
        assert!(body.to_string().contains(crate::channel::TRUNCATION_MARKER));
        assert_eq!(body["attachments"][0]["content"]["actions"][0]["url"], format!("https://vigil.example/v1/alerts/{}", alert.id));
    }
}
