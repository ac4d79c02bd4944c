//! Authentication: the API credentials the simulated tenant accepts, `Basic` + `clientId`
//! checking, and the unauthenticated codebase discovery (`/login/companyinfo/{company}`).

use std::fmt;

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use super::http::{ApiError, SimRequest, cw_error, json_response};
use super::{API_VERSION, CODEBASE, Shared};

/// The API credentials the simulated tenant accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectWiseCredentials {
    /// Login company id (compared case-insensitively, like the CW login page).
    pub company_id: String,
    /// API member public key (compared exactly).
    pub public_key: String,
    /// API member private key (compared exactly).
    pub private_key: String,
    /// Integration client id sent in the `clientId` header (compared case-insensitively: it
    /// is a GUID).
    pub client_id: String,
}

impl ConnectWiseCredentials {
    /// Fixed, obviously fake credentials for tests and the local stack.
    pub fn sample() -> Self {
        ConnectWiseCredentials {
            company_id: "vigilsim".to_string(),
            public_key: "SimPublicKey0001".to_string(),
            private_key: "SimPrivateKey0001".to_string(),
            client_id: "00000000-0000-4000-8000-00000000c1d0".to_string(),
        }
    }

    /// The `Authorization` header value a correct client sends:
    /// `Basic base64("{companyId}+{publicKey}:{privateKey}")`.
    pub fn authorization_header(&self) -> String {
        let raw = format!("{}+{}:{}", self.company_id, self.public_key, self.private_key);
        format!("Basic {}", BASE64.encode(raw))
    }
}

impl fmt::Debug for ConnectWiseCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectWiseCredentials")
            .field("company_id", &self.company_id)
            .field("public_key", &self.public_key)
            .field("private_key", &"<redacted>")
            .field("client_id", &self.client_id)
            .finish()
    }
}

impl Shared {
    pub(super) fn company_info(&self, company: &str) -> Response {
        if !company.eq_ignore_ascii_case(&self.creds.company_id) {
            // The real server answers an unknown company with a `null` body.
            return json_response(StatusCode::OK, &Value::Null);
        }
        json_response(
            StatusCode::OK,
            &json!({
                "CompanyName": "Simulated MSP",
                "Codebase": CODEBASE,
                "VersionCode": format!("v{API_VERSION}"),
                "VersionNumber": "v4.6.0",
                "CompanyID": self.creds.company_id,
                "IsCloud": false,
                "SiteUrl": self.addr.to_string(),
            }),
        )
    }

    /// Checks `Authorization` and `clientId`; `Err` is the 401 to send.
    pub(super) fn authenticate(&self, req: &SimRequest) -> Result<(), ApiError> {
        let unauthorized = |msg: &str| cw_error(StatusCode::UNAUTHORIZED, "Unauthorized", msg);
        let Some(auth) = req.header("authorization") else {
            return Err(unauthorized("Authorization header is missing: expected Basic base64(\"{companyId}+{publicKey}:{privateKey}\")"));
        };
        let mut parts = auth.trim().splitn(2, ' ');
        let scheme = parts.next().unwrap_or("");
        let encoded = parts.next().unwrap_or("").trim();
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(unauthorized("Authorization scheme must be Basic"));
        }
        let decoded = BASE64.decode(encoded).ok().and_then(|b| String::from_utf8(b).ok());
        let Some(decoded) = decoded else {
            return Err(unauthorized("Authorization header is not valid base64"));
        };
        let (user, password) = decoded.split_once(':').unwrap_or((decoded.as_str(), ""));
        let (company, public_key) = user.split_once('+').unwrap_or(("", user));
        let creds = &self.creds;
        if !company.eq_ignore_ascii_case(&creds.company_id) || public_key != creds.public_key || password != creds.private_key {
            return Err(unauthorized("UserNotAuthenticated: the company, public key or private key is wrong"));
        }
        match req.header("clientid") {
            None => Err(unauthorized("clientId header is required (register one at developer.connectwise.com/ClientID)")),
            Some(id) if !id.trim().eq_ignore_ascii_case(&creds.client_id) => {
                Err(unauthorized("clientId header does not match a registered integration"))
            }
            Some(_) => Ok(()),
        }
    }
}
