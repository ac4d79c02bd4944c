//! The SES mail sender over the wire to moto: a verified sender's mail is accepted with a
//! message id, an unverified sender is refused for good, and no sender configured is e-mail
//! off, not a failure to retry.
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
