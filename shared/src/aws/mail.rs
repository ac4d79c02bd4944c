//! [`MailSender`] on Amazon SES (v2 `SendEmail`, plain text and optional HTML, from the deployment's verified
//! sender address). Throttling and SES outages are transient; a refusal (`MessageRejected`, an
//! unverified sender, sending paused, a bad address) is not.

use crate::mail::{MailError, OutgoingMail};
use crate::ports::MailSender;
use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

/// SES, sending from one verified address (`None`: e-mail is off).
#[derive(Debug, Clone)]
pub struct SesMailSender {
    client: Client,
    from: Option<String>,
}

impl SesMailSender {
    #[must_use]
    pub fn new(client: Client, from: Option<String>) -> Self {
        Self { client, from: from.filter(|f| !f.trim().is_empty()) }
    }
}

fn mail_error<E, R>(error: &SdkError<E, R>) -> MailError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(service) = error {
        let code = service.err().code().unwrap_or("Unknown");
        let message = service.err().message().unwrap_or_default();
        return match code {
            "TooManyRequestsException" | "Throttling" | "ThrottlingException" | "LimitExceededException" => {
                MailError::Throttled(format!("{code}: {message}"))
            }
            "InternalFailure" | "ServiceUnavailable" => MailError::Unavailable(format!("{code}: {message}")),
            _ => MailError::Rejected(format!("{code}: {message}")),
        };
    }
    let detail = DisplayErrorContext(error).to_string();
    match error {
        // Sent, and the answer did not come (or could not be read): the mail may be out.
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => MailError::Unanswered(detail),
        SdkError::DispatchFailure(failure) if failure.is_timeout() => MailError::Unanswered(detail),
        _ => MailError::Unavailable(detail),
    }
}

fn content(text: &str) -> Result<Content, MailError> {
    Content::builder().data(text).charset("UTF-8").build().map_err(|e| MailError::Rejected(e.to_string()))
}

#[async_trait]
impl MailSender for SesMailSender {
    async fn send(&self, mail: &OutgoingMail) -> Result<String, MailError> {
        let from = self.from.as_deref().ok_or(MailError::NotConfigured)?;
        let mut body = Body::builder().text(content(&mail.text)?);
        if let Some(html) = &mail.html {
            body = body.html(content(html)?);
        }
        let message = Message::builder().subject(content(&mail.subject)?).body(body.build()).build();
        let output = self
            .client
            .send_email()
            .from_email_address(from)
            .destination(Destination::builder().set_to_addresses(Some(mail.to.clone())).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| mail_error(&e))?;
        Ok(output.message_id().unwrap_or_default().to_owned())
    }
}
