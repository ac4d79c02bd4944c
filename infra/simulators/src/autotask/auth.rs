//! Zone discovery (`GET /atservicesrest/v1.0/zoneInformation?user=`, no authentication) and
//! the authentication every API call needs: the `ApiIntegrationCode`, `UserName` and `Secret`
//! headers (names case-insensitive) must match the configured [`AutotaskCredentials`]
//! (user name case-insensitively, secret and integration code exactly). A missing or wrong
//! header answers `401` with an empty body, as the real API does (no body schema).
//!
//! [`AutotaskCredentials`]: super::AutotaskCredentials

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::server::{ApiError, Shared, SimRequest, json_response};

/// The zone's `CI` (customer identifier) the simulator reports.
pub(crate) const SIM_CI: i64 = 8_675_309;

impl Shared {
    /// `GET /atservicesrest/v1.0/zoneInformation?user={email}`.
    pub(crate) fn zone_information(&self, req: &SimRequest) -> Response {
        let Some(user) = req.param("user").filter(|u| !u.trim().is_empty()) else {
            return ApiError::new(StatusCode::BAD_REQUEST, "The user parameter is required.").into_response();
        };
        if !user.trim().eq_ignore_ascii_case(&self.creds.username) {
            return ApiError::new(StatusCode::NOT_FOUND, format!("Zone information could not be determined for user '{user}'."))
                .into_response();
        }
        json_response(
            StatusCode::OK,
            &json!({
                "zoneName": "Vigil Simulator Zone",
                "url": format!("http://{}{}", self.addr, super::ZONE_PATH),
                "webUrl": format!("http://{}/", self.addr),
                "ci": SIM_CI,
            }),
        )
    }

    /// Whether the three authentication headers match the configured credentials.
    pub(crate) fn authenticate(&self, req: &SimRequest) -> bool {
        let username = req.header("username").map(str::trim);
        let secret = req.header("secret");
        let code = req.header("apiintegrationcode");
        username.is_some_and(|u| u.eq_ignore_ascii_case(&self.creds.username))
            && secret == Some(self.creds.secret.as_str())
            && code == Some(self.creds.integration_code.as_str())
    }
}
