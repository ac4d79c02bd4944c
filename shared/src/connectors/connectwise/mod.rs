//! ConnectWise Manage (ConnectWise PSA) as a [`TicketSystem`], built per destination by
//! [`super::psa::PsaProvider`].
//!
//! Every request carries `Authorization: Basic base64("{company}+{public}:{private}")`, the
//! integration's `clientId` header and `Accept: application/vnd.connectwise.com+json;
//! version=2025.1`, and is admitted by the destination's [`RequestGate`] first. A ticket
//! carries its reference in `externalXRef`, so it is found again after a lost response; a
//! note carries its marker in its text.
//!
//! Errors are classified once, in [`http`]: `429` is [`SinkError::Throttled`] (with
//! `Retry-After`), timeouts, connection failures and 5xx are [`SinkError::Unavailable`],
//! `401`/`403` are [`SinkError::Unauthorized`], ConnectWise's JSON `404` on a ticket is
//! [`SinkError::Gone`], anything else is [`SinkError::Rejected`] with ConnectWise's `code`,
//! `message` and per-field `errors`. The keys never appear in an error, a log line or `Debug`.
//!
//! The API root is an MSP-supplied address: no client is built for one the
//! [`DestinationPolicy`] refuses, every request URL is checked again, and the provider hands a
//! [`super::destination_url::destination_http_client`] (public addresses only, no redirect to
//! another host).
//!
//! The modules: [`body`] (the pure wire mapping), [`http`] (transport and errors), `tickets`
//! (find, create, notes, close, states), `lookups` (lookups and the destination check) and
//! `billing` (agreement additions as a [`crate::ports::BillingTarget`]).
//! Wire format: `shared/reference/psa-apis.md` §1.

mod billing;
pub mod body;
pub mod callbacks;
pub mod http;
pub mod links;
mod lookups;
mod tickets;

pub use body::{DESCRIPTION_MAX, EXTERNAL_XREF_MAX, SUMMARY_MAX, ticket_body};
pub use http::ACCEPT_HEADER;

use super::destination_url::DestinationPolicy;
use crate::destination::{Destination, DestinationCredentials, DestinationSettings};
use crate::error::SinkError;
use crate::ports::{Lookup, LookupItem, NewTicket, RequestGate, SinkSetupError, TicketSystem};
use crate::secret::SecretString;
use crate::ticket::{TicketNote, TicketRef, TicketState};
use async_trait::async_trait;
use reqwest::header::HeaderMap;
use std::collections::HashMap;
use std::sync::Mutex;

/// A ConnectWise Manage client for one destination.
pub struct ConnectWiseClient {
    http: reqwest::Client,
    /// Without a trailing slash.
    api_root: String,
    /// Ticket type and source of new tickets (ids or names), from the destination's settings.
    ticket_type: Option<String>,
    source: Option<String>,
    /// The destination's default board, for a status lookup that names none.
    default_place: Option<String>,
    /// Sent on every request.
    headers: HeaderMap,
    /// Kept only to scrub it from anything the server echoes back.
    private_key: SecretString,
    /// Checked on every request URL (strict unless the local stack opts into loopback).
    policy: DestinationPolicy,
    /// Admits every request against the destination's hourly share.
    gate: RequestGate,
    /// Board id → the id of its first closed status (statuses rarely change; a rebuilt client
    /// reads them again).
    closed_statuses: Mutex<HashMap<i64, i64>>,
    /// Callback `key_url` → the signing key it served.
    signing_keys: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for ConnectWiseClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectWiseClient")
            .field("api_root", &self.api_root)
            .field("ticket_type", &self.ticket_type)
            .field("source", &self.source)
            .field("default_place", &self.default_place)
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

impl ConnectWiseClient {
    /// The client of a ConnectWise `destination`, calling `settings.api_root` (e.g.
    /// `https://api-na.myconnectwise.net/v4_6_release/apis/3.0`) through `http`, every request
    /// admitted by `gate`, every URL checked against `policy`.
    ///
    /// # Errors
    /// [`SinkSetupError::NotConfigured`] when the destination or its credentials are not
    /// ConnectWise's, the policy refuses the API root, or the keys or client id cannot be sent in
    /// a header. Nothing is sent.
    pub fn for_destination(
        http: reqwest::Client,
        destination: &Destination,
        credentials: DestinationCredentials,
        gate: RequestGate,
        policy: DestinationPolicy,
    ) -> Result<Self, SinkSetupError> {
        let not_configured = |why: &str| SinkSetupError::NotConfigured(format!("destination {} {why}", destination.id));
        let DestinationSettings::ConnectWise { api_root, ticket_type, source } = &destination.settings else {
            return Err(not_configured("is not a ConnectWise destination"));
        };
        let DestinationCredentials::ConnectWise { company_id, public_key, private_key, client_id } = credentials else {
            return Err(not_configured("has credentials of another kind"));
        };
        if let Err(refused) = policy.validate(api_root) {
            tracing::warn!(msp_id = %destination.msp_id, destination = %destination.id, reason = %refused, "the ConnectWise api_root is refused");
            return Err(not_configured("has a refused address"));
        }
        let headers = http::request_headers(&company_id, &public_key, &private_key, &client_id)
            .ok_or_else(|| not_configured("has a client id or API keys that cannot be sent in a header"))?;
        Ok(Self {
            http,
            api_root: api_root.trim().trim_end_matches('/').to_owned(),
            ticket_type: ticket_type.clone(),
            source: source.clone(),
            default_place: destination.routing.default_place.clone(),
            headers,
            private_key,
            policy,
            gate,
            closed_statuses: Mutex::new(HashMap::new()),
            signing_keys: Mutex::new(HashMap::new()),
        })
    }
}

#[async_trait]
impl TicketSystem for ConnectWiseClient {
    async fn find_ticket(&self, reference: &str) -> Result<Option<TicketRef>, SinkError> {
        self.find_by_reference(reference).await
    }

    async fn create_ticket(&self, ticket: &NewTicket) -> Result<TicketRef, SinkError> {
        self.create(ticket).await
    }

    async fn add_note(&self, ticket: &TicketRef, note: &TicketNote) -> Result<(), SinkError> {
        self.post_note(ticket, note).await
    }

    async fn has_note(&self, ticket: &TicketRef, marker: &str) -> Result<bool, SinkError> {
        self.find_note(ticket, marker).await
    }

    /// The resolution text is not written here: the dispatcher adds its resolution note (with a
    /// marker, so exactly once) before it closes, and a note here would repeat with every retry.
    async fn close_ticket(&self, ticket: &TicketRef, status: Option<&str>, _resolution: &str) -> Result<(), SinkError> {
        self.close(ticket, status).await
    }

    async fn ticket_states(&self, tickets: &[TicketRef]) -> Result<Vec<(TicketRef, TicketState)>, SinkError> {
        self.states(tickets).await
    }

    async fn lookup(&self, what: &Lookup) -> Result<Vec<LookupItem>, SinkError> {
        self.look_up(what).await
    }

    async fn check(&self, destination: &Destination) -> Result<Vec<String>, SinkError> {
        self.check_destination(destination).await
    }

    async fn register_callback(&self, url: &str) -> Result<bool, SinkError> {
        self.register_ticket_callback(url).await
    }

    async fn verify_callback(&self, body: &[u8], headers: &[(String, String)]) -> Result<Option<TicketRef>, SinkError> {
        self.verify_ticket_callback(body, headers).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::destination::Routing;
    use crate::error::{Classified, ErrorClass};
    use crate::ids::{DestinationId, MspId};
    use chrono::Utc;

    fn destination(api_root: &str) -> Destination {
        Destination {
            msp_id: MspId::parse("acme").unwrap(),
            id: DestinationId::parse("cw").unwrap(),
            name: "ConnectWise".into(),
            enabled: true,
            settings: DestinationSettings::ConnectWise { api_root: api_root.into(), ticket_type: None, source: None },
            routing: Routing { default_place: Some("7".into()), ..Routing::default() },
            requests_per_hour: None,
            credentials_set: true,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn credentials() -> DestinationCredentials {
        DestinationCredentials::ConnectWise {
            company_id: "acme".into(),
            public_key: "pub".into(),
            private_key: SecretString::new("priv-key-1"),
            client_id: "cid".into(),
        }
    }

    fn client(api_root: &str, policy: DestinationPolicy) -> Result<ConnectWiseClient, SinkSetupError> {
        ConnectWiseClient::for_destination(reqwest::Client::new(), &destination(api_root), credentials(), RequestGate::open(), policy)
    }

    #[test]
    fn a_client_keeps_its_api_root_without_the_trailing_slash_and_never_shows_the_key() {
        let client = client("https://cw.example/v4_6_release/apis/3.0/", DestinationPolicy::STRICT).unwrap();
        assert_eq!(client.api_root, "https://cw.example/v4_6_release/apis/3.0");
        assert_eq!(client.default_place.as_deref(), Some("7"));
        let shown = format!("{client:?}");
        assert!(!shown.contains("priv-key-1") && !shown.contains("Basic"), "{shown}");
    }

    #[test]
    fn no_client_is_built_for_an_api_root_the_policy_refuses() {
        for api_root in
            ["http://cw.example/v4_6_release/apis/3.0", "https://169.254.169.254/apis/3.0", "http://localhost@evil.example/apis/3.0"]
        {
            let refused = client(api_root, DestinationPolicy::STRICT).unwrap_err();
            assert!(matches!(&refused, SinkSetupError::NotConfigured(m) if m.contains("refused address")), "{api_root}: {refused:?}");
        }
        assert!(client("http://127.0.0.1:9/v4_6_release/apis/3.0", DestinationPolicy::STRICT).is_err(), "strict by default");
        assert!(client("http://127.0.0.1:9/v4_6_release/apis/3.0", DestinationPolicy::LOOPBACK_ALLOWED).is_ok(), "the local opt-in");
    }

    #[test]
    fn no_client_is_built_from_credentials_of_another_kind_or_keys_that_cannot_be_sent() {
        let autotask = DestinationCredentials::Autotask {
            username: "api@msp.example".into(),
            secret: SecretString::new("s"),
            integration_code: SecretString::new("c"),
        };
        let policy = DestinationPolicy::STRICT;
        let d = destination("https://cw.example/v4_6_release/apis/3.0");
        let wrong_kind = ConnectWiseClient::for_destination(reqwest::Client::new(), &d, autotask, RequestGate::open(), policy);
        assert!(matches!(wrong_kind, Err(SinkSetupError::NotConfigured(_))));
        let broken = DestinationCredentials::ConnectWise {
            company_id: "acme".into(),
            public_key: "pub".into(),
            private_key: SecretString::new("priv-key-1"),
            client_id: "bad\nid".into(),
        };
        let error = ConnectWiseClient::for_destination(reqwest::Client::new(), &d, broken, RequestGate::open(), policy).unwrap_err();
        assert!(!format!("{error} {error:?}").contains("priv-key-1"));
    }

    #[tokio::test]
    async fn an_allowed_but_unreachable_api_root_is_tried_and_unavailable() {
        let client = client("http://127.0.0.1:1/v4_6_release/apis/3.0", DestinationPolicy::LOOPBACK_ALLOWED).unwrap();
        let error = client.find_ticket("vigil:x").await.unwrap_err();
        assert!(matches!(error, SinkError::Unavailable(_)), "{error:?}");
        assert_eq!(error.class(), ErrorClass::Transient);
    }
}
