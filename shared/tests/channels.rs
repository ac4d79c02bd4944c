//! Every channel connector (Teams Workflows, Slack incoming webhooks, signed webhooks) against
//! the channels simulator, built through the production provider from a destination and its
//! stored credentials: the message-port contract suite, the card and blocks as the simulator
//! validated and recorded them, and signatures across a secret rotation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use vigil::channel::{AlertChange, render_message};
use vigil::clock::{Clock, ManualClock};
use vigil::connectors::destination_url::DestinationPolicy;
use vigil::connectors::psa::PsaProvider;
use vigil::contract::{sample_alert, sample_destination};
use vigil::destination::{Destination, DestinationCredentials, DestinationSettings, WebhookSettings};
use vigil::memory::{MemoryRequestBudget, MemorySecretStore};
use vigil::message_contract::{ChannelHarness, message_channel_contract};
use vigil::ports::{MessageChannel, SecretName, SecretStore, TicketSystemProvider};
use vigil::secret::SecretString;
use vigil_simulators::channels::{ChannelOperation, ChannelsSim, ChannelsSimHandle};
use vigil_simulators::kit::FailureMode;

const POLICY: DestinationPolicy = DestinationPolicy::LOOPBACK_ALLOWED;
const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const NEXT_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The provider of production over in-memory secrets, with a client that gives up after two
/// seconds (so a lost answer is quick to see).
async fn channel_for(
    destination: &Destination,
    credentials: Option<DestinationCredentials>,
    clock: Arc<ManualClock>,
) -> Arc<dyn MessageChannel> {
    let secrets = Arc::new(MemorySecretStore::default());
    if let Some(credentials) = credentials {
        let name = SecretName::destination(&destination.msp_id, &destination.id);
        secrets.put_secret(&name, &SecretString::new(serde_json::to_string(&credentials).unwrap())).await.unwrap();
    }
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    let provider = PsaProvider::new(secrets, POLICY, Arc::new(MemoryRequestBudget::default()), clock).with_http(http);
    provider.channel_for(destination).await.unwrap()
}

struct SimHarness {
    sim: ChannelsSimHandle,
    url: String,
    operation: ChannelOperation,
    settings: DestinationSettings,
    channel: Arc<dyn MessageChannel>,
}

#[async_trait]
impl ChannelHarness for SimHarness {
    fn channel(&self) -> Arc<dyn MessageChannel> {
        self.channel.clone()
    }
    fn settings(&self) -> DestinationSettings {
        self.settings.clone()
    }
    async fn shown(&self) -> usize {
        self.sim.received(&self.url).len()
    }
    async fn lose_next_answer(&self) {
        self.sim.fail(self.operation, FailureMode::HangAfterCommit(4), 1);
    }
    async fn throttle_next(&self) {
        self.sim.fail(self.operation, FailureMode::Throttle { retry_after: 2 }, 1);
    }
    async fn revoke(&self) {
        self.sim.revoke(&self.url);
    }
}

fn destination(settings: DestinationSettings) -> Destination {
    let mut destination = sample_destination(&vigil::ids::MspId::parse("acme-msp").unwrap(), "channel");
    destination.settings = settings;
    destination
}

async fn teams(sim: &ChannelsSimHandle) -> SimHarness {
    let url = sim.teams_flow();
    let settings = DestinationSettings::Teams {};
    let credentials = DestinationCredentials::Teams { workflow_url: SecretString::new(url.clone()) };
    let channel = channel_for(&destination(settings.clone()), Some(credentials), Arc::new(ManualClock::at(Utc::now()))).await;
    SimHarness { sim: sim.clone(), url, operation: ChannelOperation::TeamsPost, settings, channel }
}

async fn slack(sim: &ChannelsSimHandle) -> SimHarness {
    let url = sim.slack_webhook();
    let settings = DestinationSettings::Slack {};
    let credentials = DestinationCredentials::Slack { webhook_url: SecretString::new(url.clone()) };
    let channel = channel_for(&destination(settings.clone()), Some(credentials), Arc::new(ManualClock::at(Utc::now()))).await;
    SimHarness { sim: sim.clone(), url, operation: ChannelOperation::SlackPost, settings, channel }
}

async fn webhook(sim: &ChannelsSimHandle) -> SimHarness {
    let url = sim.webhook_endpoint(&[SECRET]);
    let settings = DestinationSettings::Webhook(WebhookSettings { url: url.clone(), rotation_grace_hours: 24 });
    let credentials =
        DestinationCredentials::Webhook { secret: SecretString::new(SECRET), previous_secret: None, previous_valid_until: None };
    let channel = channel_for(&destination(settings.clone()), Some(credentials), Arc::new(ManualClock::at(Utc::now()))).await;
    SimHarness { sim: sim.clone(), url, operation: ChannelOperation::WebhookPost, settings, channel }
}

#[tokio::test]
async fn teams_passes_the_message_port_contract() {
    let sim = ChannelsSim::start().await.unwrap();
    message_channel_contract(&teams(&sim).await).await;
}

#[tokio::test]
async fn slack_passes_the_message_port_contract() {
    let sim = ChannelsSim::start().await.unwrap();
    message_channel_contract(&slack(&sim).await).await;
}

#[tokio::test]
async fn a_signed_webhook_passes_the_message_port_contract() {
    let sim = ChannelsSim::start().await.unwrap();
    message_channel_contract(&webhook(&sim).await).await;
}

#[tokio::test]
async fn a_teams_card_carries_the_alert_its_facts_and_a_link_back() {
    let sim = ChannelsSim::start().await.unwrap();
    let harness = teams(&sim).await;
    let mut alert = sample_alert(Utc::now());
    alert.hit_count = 4;
    harness.channel.post(&render_message(&alert, AlertChange::Refired, Some("https://vigil.example"))).await.unwrap();
    let received = sim.received(&harness.url);
    let card = &received[0].body["attachments"][0]["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert!(card["body"][0]["text"].as_str().unwrap().starts_with("Fired again: [Vigil]"), "{card}");
    let facts = card["body"][2]["facts"].as_array().unwrap();
    assert!(facts.iter().any(|f| f["title"] == "Hits" && f["value"] == "4"), "{facts:?}");
    assert_eq!(card["actions"][0]["url"], format!("https://vigil.example/v1/alerts/{}", alert.id));
    assert!(vigil_simulators::channels::teams::card_problems(card).is_empty(), "valid against the Adaptive Card 1.5 schema");
}

#[tokio::test]
async fn a_slack_message_has_a_header_fields_and_a_button_within_block_kit_limits() {
    let sim = ChannelsSim::start().await.unwrap();
    let harness = slack(&sim).await;
    let alert = sample_alert(Utc::now());
    harness.channel.post(&render_message(&alert, AlertChange::Raised, Some("https://vigil.example"))).await.unwrap();
    let body = &sim.received(&harness.url)[0].body;
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert!(blocks.iter().any(|b| b["fields"].as_array().is_some_and(|f| f.len() >= 5)), "{blocks:?}");
    assert!(blocks.iter().any(|b| b["type"] == "actions"));
    assert!(body["text"].as_str().unwrap().starts_with("Raised: [Vigil]"));
    assert!(vigil_simulators::channels::slack::block_problems(blocks).is_ok());
}

#[tokio::test]
async fn a_rotated_webhook_secret_keeps_signing_beside_the_new_one_for_its_grace_period_only() {
    let sim = ChannelsSim::start().await.unwrap();
    let url = sim.webhook_endpoint(&[SECRET]);
    let settings = DestinationSettings::Webhook(WebhookSettings { url: url.clone(), rotation_grace_hours: 24 });
    let clock = Arc::new(ManualClock::at(Utc::now()));
    let stored = DestinationCredentials::Webhook { secret: SecretString::new(SECRET), previous_secret: None, previous_valid_until: None };
    let rotated =
        DestinationCredentials::Webhook { secret: SecretString::new(NEXT_SECRET), previous_secret: None, previous_valid_until: None }
            .replacing(Some(&stored), clock.now(), chrono::Duration::hours(24));
    let channel = channel_for(&destination(settings), Some(rotated.clone()), clock.clone()).await;
    let mut alert = sample_alert(Utc::now());
    alert.hit_count = 1;
    channel.post(&render_message(&alert, AlertChange::Raised, None)).await.expect("the receiver still on the old secret accepts it");
    sim.set_endpoint_secrets(&url, &[NEXT_SECRET]);
    alert.hit_count = 2;
    channel.post(&render_message(&alert, AlertChange::Refired, None)).await.expect("the receiver on the new secret accepts it");
    let signatures = sim.received(&url)[1].headers["webhook-signature"].clone();
    assert_eq!(signatures.split(' ').count(), 2, "both secrets sign during the grace period");

    // After the grace period only the new secret signs: a receiver still on the old one refuses.
    clock.advance(chrono::Duration::hours(25));
    sim.advance_clock(Duration::from_secs(25 * 3600));
    let channel = channel_for(
        &destination(DestinationSettings::Webhook(WebhookSettings { url: url.clone(), rotation_grace_hours: 24 })),
        Some(rotated),
        clock.clone(),
    )
    .await;
    sim.set_endpoint_secrets(&url, &[SECRET]);
    alert.hit_count = 3;
    let refused = channel.post(&render_message(&alert, AlertChange::Refired, None)).await.expect_err("the old secret no longer signs");
    assert!(refused.to_string().contains("401"), "{refused}");
}

fn schemas_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/schemas")
}

#[test]
fn the_signer_reproduces_every_sign_vector_of_the_specification() {
    let vectors: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schemas_dir().join("standard-webhooks-test-vectors.json")).unwrap()).unwrap();
    let sign = vectors["sign_vectors"].as_array().unwrap();
    assert!(!sign.is_empty());
    for vector in sign {
        let header = vigil::connectors::channels::signed_webhook::signature_header(
            &[vector["secret"].as_str().unwrap()],
            vector["id"].as_str().unwrap(),
            vector["timestamp"].as_i64().unwrap(),
            vector["payload"].as_str().unwrap().as_bytes(),
        );
        assert_eq!(header, vector["expected_signature"].as_str().unwrap(), "{}", vector["name"]);
    }
}

#[tokio::test]
async fn every_event_validates_against_the_published_json_schema() {
    let schema = vigil_simulators::json_schema::JsonSchema::parse(
        &std::fs::read_to_string(schemas_dir().join("webhook-event.v1.schema.json")).unwrap(),
    )
    .unwrap();
    let sim = ChannelsSim::start().await.unwrap();
    let harness = webhook(&sim).await;
    let mut alert = sample_alert(Utc::now());
    alert.hit_count = 1;
    harness.channel.post(&render_message(&alert, AlertChange::Raised, Some("https://vigil.example"))).await.unwrap();
    alert.hit_count = 2;
    alert.status = vigil::alert::AlertStatus::Resolved;
    alert.resolved_at = Some(Utc::now());
    harness.channel.post(&render_message(&alert, AlertChange::Resolved, None)).await.unwrap();
    assert_eq!(harness.channel.test().await.unwrap(), Vec::<String>::new(), "the test event is accepted");
    let received = sim.received(&harness.url);
    assert_eq!(received.len(), 3);
    for event in &received {
        let violations = schema.validate(&event.body);
        assert!(violations.is_empty(), "{} violates the schema: {violations:?}", event.body);
    }
    let mut wrong = received[0].body.clone();
    wrong["data"]["severity"] = "Critical".into();
    assert!(!schema.validate(&wrong).is_empty(), "the schema is strict enough to notice");
}

/// The specification's own Python library (`standardwebhooks`, in the tools venv) verifies
/// what Vigil signed, as a consumer would.
#[tokio::test]
async fn the_specifications_own_library_verifies_vigils_signature() {
    let python = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/python");
    assert!(python.exists(), "the tools venv is missing: run infra/scripts/install-tools.sh");
    let sim = ChannelsSim::start().await.unwrap();
    let harness = webhook(&sim).await;
    let mut alert = sample_alert(Utc::now());
    alert.hit_count = 1;
    harness.channel.post(&render_message(&alert, AlertChange::Raised, Some("https://vigil.example"))).await.unwrap();
    let received = sim.received(&harness.url).remove(0);
    let verify = |body: &[u8]| {
        let script = "import json, sys\nfrom standardwebhooks.webhooks import Webhook\n\
                      headers = json.loads(sys.argv[2])\nbody = sys.stdin.buffer.read()\n\
                      Webhook(sys.argv[1]).verify(body, headers)\nprint('verified')";
        let mut child = std::process::Command::new(&python)
            .args(["-c", script, SECRET, &serde_json::to_string(&received.headers).unwrap()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), body).unwrap();
        child.wait_with_output().unwrap()
    };
    let accepted = verify(&received.raw);
    assert!(accepted.status.success(), "{}", String::from_utf8_lossy(&accepted.stderr));
    assert_eq!(String::from_utf8_lossy(&accepted.stdout).trim(), "verified");
    let mut tampered = received.raw.clone();
    tampered.push(b' ');
    assert!(!verify(&tampered).status.success(), "a changed body does not verify");
}
