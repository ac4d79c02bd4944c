//! The Tigerpaw client: the keys and both authorization forms, the MSP's base URL, the request
//! gate and the destination policy in front of every request, and the one place a request is
//! sent and its answer (an HTTP failure, or a 200 saying `"Success": false`) classified.

use super::errors::{classify, refusal};
use super::lookup::Statuses;
use crate::connectors::destination_url::DestinationPolicy;
use crate::connectors::{retry_after, transport_failure};
use crate::destination::{Destination, DestinationCredentials, DestinationSettings, TigerpawAuth, TigerpawSettings};
use crate::error::SinkError;
use crate::ports::{RequestGate, SinkSetupError};
use crate::secret::SecretString;
use base64::Engine;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use url::Url;

/// The scheme word of an authorization form.
#[must_use]
pub fn scheme(form: TigerpawAuth) -> &'static str {
    match form {
        TigerpawAuth::Tsi => "TSI",
        TigerpawAuth::Basic => "Basic",
    }
}

/// The other authorization form.
#[must_use]
pub fn other(form: TigerpawAuth) -> TigerpawAuth {
    match form {
        TigerpawAuth::Tsi => TigerpawAuth::Basic,
        TigerpawAuth::Basic => TigerpawAuth::Tsi,
    }
}

/// `{scheme} base64("{public}:{private}")`, marked sensitive; `None` when it cannot be a header.
fn authorization(form: TigerpawAuth, public_key: &str, private_key: &SecretString) -> Option<HeaderValue> {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", public_key.trim(), private_key.expose()));
    let mut value = HeaderValue::from_str(&format!("{} {token}", scheme(form))).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// The API root of a configured URL: with a trailing `/`, without a trailing `api/` (paths
/// start with `api/`).
pub(crate) fn root_of(url: &str) -> String {
    let mut root = url.trim().trim_end_matches('/').to_owned();
    if root.to_ascii_lowercase().ends_with("/api") {
        root.truncate(root.len() - 4);
    }
    root.push('/');
    root
}

/// Tigerpaw as a [`crate::ports::TicketSystem`], for one destination.
pub struct TigerpawClient {
    http: reqwest::Client,
    public_key: String,
    private_key: SecretString,
    /// The `Authorization` value of each form (TSI, Basic).
    tsi: HeaderValue,
    basic: HeaderValue,
    pub(super) settings: TigerpawSettings,
    /// The routing's closing status override.
    pub(super) closed_status: Option<String>,
    root: Url,
    gate: RequestGate,
    policy: DestinationPolicy,
    pub(super) statuses: tokio::sync::Mutex<Option<Arc<Statuses>>>,
    pub(super) note_topic: tokio::sync::Mutex<Option<Option<String>>>,
}

impl std::fmt::Debug for TigerpawClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TigerpawClient")
            .field("url", &self.settings.url)
            .field("auth", &self.settings.auth)
            .field("public_key", &self.public_key)
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

impl TigerpawClient {
    /// The client of `destination` (a Tigerpaw one, with Tigerpaw credentials), sending through
    /// `http`, asking `gate` before every request and checking every URL against `policy`.
    ///
    /// # Errors
    /// [`SinkSetupError::NotConfigured`] for another kind of settings or credentials, a URL the
    /// policy refuses, or keys that cannot be sent in a header.
    pub fn for_destination(
        http: reqwest::Client,
        destination: &Destination,
        credentials: DestinationCredentials,
        gate: RequestGate,
        policy: DestinationPolicy,
    ) -> Result<Self, SinkSetupError> {
        let not_configured = |why: &str| SinkSetupError::NotConfigured(format!("destination {}: {why}", destination.id));
        let DestinationSettings::Tigerpaw(settings) = &destination.settings else {
            return Err(not_configured("not a Tigerpaw destination"));
        };
        let DestinationCredentials::Tigerpaw { public_key, private_key } = credentials else {
            return Err(not_configured("the credentials are not Tigerpaw credentials"));
        };
        let root = policy.validate(&root_of(&settings.url)).map_err(|refused| not_configured(&format!("the Tigerpaw URL {refused}")))?;
        let (Some(tsi), Some(basic)) =
            (authorization(TigerpawAuth::Tsi, &public_key, &private_key), authorization(TigerpawAuth::Basic, &public_key, &private_key))
        else {
            return Err(not_configured("the Tigerpaw keys contain characters that cannot be sent in a header"));
        };
        Ok(Self {
            http,
            public_key: public_key.trim().to_owned(),
            private_key,
            tsi,
            basic,
            settings: settings.clone(),
            closed_status: destination.routing.closed_status.clone(),
            root,
            gate,
            policy,
            statuses: tokio::sync::Mutex::new(None),
            note_topic: tokio::sync::Mutex::new(None),
        })
    }

    fn header(&self, form: TigerpawAuth) -> HeaderValue {
        match form {
            TigerpawAuth::Tsi => self.tsi.clone(),
            TigerpawAuth::Basic => self.basic.clone(),
        }
    }

    /// Sends one request in `form` (after the gate admits it and the policy permits the URL):
    /// the status, `Retry-After` and body text, or a transport failure.
    async fn send(
        &self,
        form: TigerpawAuth,
        method: Method,
        path: &str,
        body: Option<&Value>,
        operation: &str,
    ) -> Result<(StatusCode, Option<std::time::Duration>, String), SinkError> {
        let url = self.root.join(path).map_err(|e| SinkError::Invalid(format!("{operation}: {path} is not a valid API path: {e}")))?;
        let url = self.policy.validate(url.as_str()).map_err(|refused| SinkError::Rejected(format!("{operation}: the URL {refused}")))?;
        self.gate.admit().await?;
        let mut request = self
            .http
            .request(method, url)
            .header(AUTHORIZATION, self.header(form))
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(body) = body {
            // A body of known length: reqwest sends Content-Length, which Tigerpaw requires.
            request = request.header(CONTENT_TYPE, HeaderValue::from_static("application/json")).body(body.to_string());
        }
        let response = request.send().await.map_err(|e| SinkError::Unavailable(transport_failure(operation, &e)))?;
        let status = response.status();
        let retry = retry_after(response.headers());
        let text = response.text().await.map_err(|e| SinkError::Unavailable(transport_failure(operation, &e)))?;
        Ok((status, retry, text))
    }

    /// Interprets an answer: a success is its JSON (`Null` when empty) unless it says
    /// `"Success": false`; a failure is classified.
    fn interpret(&self, answer: (StatusCode, Option<std::time::Duration>, String), operation: &str) -> Result<Value, SinkError> {
        let (status, retry, text) = answer;
        if !status.is_success() {
            let error = classify(status, retry, &text, operation, self.private_key.expose());
            tracing::warn!(operation, status = status.as_u16(), error = %error, "Tigerpaw request failed");
            return Err(error);
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        let value: Value =
            serde_json::from_str(&text).map_err(|e| SinkError::Unavailable(format!("{operation}: unreadable answer: {e}")))?;
        if value.get("Success") == Some(&Value::Bool(false)) {
            let error = refusal(value.get("Message").and_then(Value::as_str), operation, self.private_key.expose());
            tracing::warn!(operation, error = %error, "Tigerpaw refused the request (Success: false)");
            return Err(error);
        }
        Ok(value)
    }

    /// `{method} api/…` in the configured authorization form.
    pub(super) async fn call(&self, method: Method, path: &str, body: Option<&Value>, operation: &str) -> Result<Value, SinkError> {
        self.call_as(self.settings.auth, method, path, body, operation).await
    }

    /// [`Self::call`] in `form`.
    pub(super) async fn call_as(
        &self,
        form: TigerpawAuth,
        method: Method,
        path: &str,
        body: Option<&Value>,
        operation: &str,
    ) -> Result<Value, SinkError> {
        let answer = self.send(form, method, path, body, operation).await?;
        self.interpret(answer, operation)
    }

    /// `GET api/…`; `None` when Tigerpaw answers 404 (the thing does not exist).
    pub(super) async fn get_optional(&self, path: &str, operation: &str) -> Result<Option<Value>, SinkError> {
        let answer = self.send(self.settings.auth, Method::GET, path, None, operation).await?;
        if answer.0 == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        self.interpret(answer, operation).map(Some)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::destination::Routing;
    use crate::ids::MspId;

    fn destination(url: &str) -> Destination {
        let mut destination = crate::contract::sample_destination(&MspId::parse("acme").unwrap(), "tigerpaw");
        destination.settings = DestinationSettings::Tigerpaw(TigerpawSettings {
            url: url.into(),
            auth: TigerpawAuth::Tsi,
            rep_number: None,
            service_order_type: None,
            new_status: None,
            note_topic: None,
        });
        destination.routing = Routing::default();
        destination
    }

    fn credentials() -> DestinationCredentials {
        DestinationCredentials::Tigerpaw { public_key: "pub-key-1".into(), private_key: SecretString::new("PrivateKey0001") }
    }

    fn client(url: &str) -> Result<TigerpawClient, SinkSetupError> {
        TigerpawClient::for_destination(
            reqwest::Client::new(),
            &destination(url),
            credentials(),
            RequestGate::open(),
            DestinationPolicy::STRICT,
        )
    }

    #[test]
    fn both_authorization_forms_carry_the_keys_as_sensitive_values() {
        let tsi = authorization(TigerpawAuth::Tsi, "pub", &SecretString::new("priv")).unwrap();
        assert_eq!(tsi, "TSI cHViOnByaXY=");
        assert!(tsi.is_sensitive());
        assert_eq!(authorization(TigerpawAuth::Basic, "pub", &SecretString::new("priv")).unwrap(), "Basic cHViOnByaXY=");
        assert!(authorization(TigerpawAuth::Tsi, "pub\n", &SecretString::new("bad\nkey")).is_some(), "base64 keeps it one line");
    }

    #[test]
    fn the_api_root_never_doubles_api() {
        assert_eq!(root_of("https://tigerpaw.msp.example"), "https://tigerpaw.msp.example/");
        assert_eq!(root_of("https://tigerpaw.msp.example/api/"), "https://tigerpaw.msp.example/");
        assert_eq!(root_of(" https://tigerpaw.msp.example/tsi/API"), "https://tigerpaw.msp.example/tsi/");
    }

    #[test]
    fn the_client_never_shows_its_private_key_and_refuses_foreign_settings() {
        let shown = format!("{:?}", client("https://tigerpaw.msp.example").unwrap());
        assert!(!shown.contains("PrivateKey0001") && !shown.contains("cHVi"), "{shown}");
        assert!(shown.contains("pub-key-1"));
        assert!(matches!(client("http://tigerpaw.msp.example"), Err(SinkSetupError::NotConfigured(_))), "plain HTTP is refused");
        let mut autotask = destination("https://tigerpaw.msp.example");
        autotask.settings = DestinationSettings::autotask(None);
        let built = TigerpawClient::for_destination(
            reqwest::Client::new(),
            &autotask,
            credentials(),
            RequestGate::open(),
            DestinationPolicy::STRICT,
        );
        assert!(matches!(built, Err(SinkSetupError::NotConfigured(_))));
    }
}
