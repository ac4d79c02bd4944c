//! The SES mail sender over the wire to moto: a verified sender's mail is accepted with a
//! message id, an unverified sender is refused for good, and no sender configured is e-mail
//! off, not a failure to retry; and e-mail as a channel passes the message-port contract suite
//! over SES on moto, with failures injected at the mail port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use vigil::aws::mail::SesMailSender;
use vigil::error::{Classified, ErrorClass};
use vigil::mail::{MailError, OutgoingMail};
use vigil::ports::MailSender;
use vigil_tests::moto_sdk;

fn mail() -> OutgoingMail {
    OutgoingMail {
        to: vec!["it@contoso.example".into()],
        subject: "Demo MSP removed its delegated admin access to Contoso".into(),
        text: "Hello,\n\nThe relationship ended.\n".into(),
        html: None,
    }
}

#[tokio::test]
async fn a_verified_sender_sends_an_unverified_one_is_refused_and_no_sender_is_mail_off() {
    let (sdk, _moto) = moto_sdk().await;
    let client = aws_sdk_sesv2::Client::new(&sdk);
    let verified = format!("notify-{}@msp.example", std::process::id());
    client.create_email_identity().email_identity(&verified).send().await.unwrap();

    let sender = SesMailSender::new(client.clone(), Some(verified));
    let message_id = sender.send(&mail()).await.unwrap();
    assert!(!message_id.is_empty());

    let unverified = SesMailSender::new(client.clone(), Some("nobody@unverified.example".into()));
    let refused = unverified.send(&mail()).await.unwrap_err();
    assert!(matches!(refused, MailError::Rejected(_)), "{refused:?}");
    assert_eq!(refused.class(), ErrorClass::Permanent);

    let off = SesMailSender::new(client, Some("  ".into()));
    assert_eq!(off.send(&mail()).await.unwrap_err(), MailError::NotConfigured);
}

/// Failures injected at the port, over SES on moto: a send whose answer is lost (it goes out,
/// then the SDK reports no answer), throttling (nothing goes out), and the sender's identity
/// removed (SES refuses for good).
struct FaultySes {
    inner: SesMailSender,
    lose_answer: std::sync::atomic::AtomicBool,
    throttle: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl MailSender for FaultySes {
    async fn send(&self, mail: &OutgoingMail) -> Result<String, MailError> {
        use std::sync::atomic::Ordering::SeqCst;
        if self.throttle.swap(false, SeqCst) {
            return Err(MailError::Throttled("TooManyRequestsException: injected".into()));
        }
        let sent = self.inner.send(mail).await?;
        if self.lose_answer.swap(false, SeqCst) {
            return Err(MailError::Unanswered(format!("injected: the answer to {sent} was lost")));
        }
        Ok(sent)
    }
}

struct SesHarness {
    channel: std::sync::Arc<vigil::connectors::channels::email::EmailChannel>,
    faults: std::sync::Arc<FaultySes>,
    client: aws_sdk_sesv2::Client,
    endpoint: String,
    sender: String,
    recipient: String,
}

#[async_trait::async_trait]
impl vigil::message_contract::ChannelHarness for SesHarness {
    fn channel(&self) -> std::sync::Arc<dyn vigil::ports::MessageChannel> {
        self.channel.clone()
    }
    fn settings(&self) -> vigil::destination::DestinationSettings {
        vigil::destination::DestinationSettings::Email(vigil::destination::EmailSettings {
            recipients: vec![self.recipient.clone()],
            subject_prefix: None,
        })
    }
    async fn shown(&self) -> usize {
        let data: serde_json::Value = reqwest::get(format!("{}/moto-api/data.json", self.endpoint)).await.unwrap().json().await.unwrap();
        data["ses"]["Message"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["destinations"]["ToAddresses"].as_array().is_some_and(|to| to.iter().any(|a| a == self.recipient.as_str())))
            .count()
    }
    async fn lose_next_answer(&self) {
        self.faults.lose_answer.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    async fn throttle_next(&self) {
        self.faults.throttle.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    async fn revoke(&self) {
        self.client.delete_email_identity().email_identity(&self.sender).send().await.unwrap();
    }
}

/// E-mail passes the message-port contract suite like every channel, over SES on moto.
#[tokio::test]
async fn email_passes_the_message_port_contract_over_ses() {
    let (sdk, moto) = moto_sdk().await;
    let endpoint = match &moto {
        Some(server) => server.endpoint().to_owned(),
        None => std::env::var("AWS_ENDPOINT_URL").unwrap(),
    };
    let client = aws_sdk_sesv2::Client::new(&sdk);
    let suffix = vigil::contract::unique_suffix();
    let sender = format!("alerts-{suffix}@msp.example");
    client.create_email_identity().email_identity(&sender).send().await.unwrap();
    let faults = std::sync::Arc::new(FaultySes {
        inner: SesMailSender::new(client.clone(), Some(sender.clone())),
        lose_answer: false.into(),
        throttle: false.into(),
    });
    let recipient = format!("soc-{suffix}@msp.example");
    let settings = vigil::destination::EmailSettings { recipients: vec![recipient.clone()], subject_prefix: Some("[SOC]".into()) };
    let channel = std::sync::Arc::new(vigil::connectors::channels::email::EmailChannel::new(faults.clone(), settings));
    let harness = SesHarness { channel, faults, client, endpoint, sender, recipient };
    vigil::message_contract::message_channel_contract(&harness).await;
}
