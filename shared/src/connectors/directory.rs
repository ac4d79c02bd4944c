//! [`CustomerDirectory`] over the Microsoft identity platform and Microsoft Graph: a partner
//! technician's refresh token redeemed for a customer tenant, and the service principal and
//! app role assignment calls of direct onboarding.
//!
//! * Redeem: `POST {login}/{customer}/oauth2/v2.0/token` with `grant_type=refresh_token`, the
//!   MSP app's `client_id`/`client_secret` and `scope={graph}/.default`. Microsoft answers with
//!   an access token for the customer tenant and a new refresh token — only while the
//!   technician's GDAP relationship with that customer is active; otherwise `400` with
//!   `AADSTS50020` ("user account … does not exist in tenant", entra-docs
//!   `reference-error-codes.md`), and `AADSTS700082` / `AADSTS50173` for an expired or revoked
//!   refresh token. Failures are classified as for client credentials (`super::identity`).
//! * `GET {graph}/v1.0/servicePrincipals?$filter=appId eq '{appId}'&$select=id,appId,appRoles`.
//! * `POST {graph}/v1.0/servicePrincipals {"appId"}`: `201`, or `409` when one exists already.
//! * `GET {graph}/v1.0/servicePrincipals/{id}/appRoleAssignments` (pages followed).
//! * `POST {graph}/v1.0/servicePrincipals/{resource}/appRoleAssignedTo {principalId,
//!   resourceId, appRoleId}`: `201`; `409` when granted already; `403
//!   Authorization_RequestDenied` when the technician's roles cannot grant app roles
//!   (Privileged Role Administrator or Global Administrator needed).
//!
//! No token, refresh token or client secret ever reaches an error, log line or `Debug`.

use super::identity::classify_token_error;
use super::{LazyHttp, redact, retry_after, transport_failure, truncate_chars};
use crate::error::SourceError;
use crate::ids::TenantId;
use crate::onboarding::direct::{RoleGrant, ServicePrincipal};
use crate::ports::{CustomerDirectory, DelegatedSession};
use crate::secret::SecretString;
use crate::tenant::M365AppCredentials;
use async_trait::async_trait;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;

/// Longest Graph error message kept.
const MAX_MESSAGE_CHARS: usize = 300;
/// Most pages of app role assignments read (a principal has a handful).
const MAX_PAGES: usize = 20;

/// [`CustomerDirectory`] over HTTP.
#[derive(Debug, Clone)]
pub struct GraphDirectoryClient {
    http: LazyHttp,
    login_base: String,
    graph_base: String,
}

impl GraphDirectoryClient {
    /// A client of the token host `login_base` and the Graph at `graph_base`.
    #[must_use]
    pub fn new(http: impl Into<LazyHttp>, login_base: &str, graph_base: &str) -> Self {
        Self {
            http: http.into(),
            login_base: login_base.trim_end_matches('/').to_owned(),
            graph_base: graph_base.trim_end_matches('/').to_owned(),
        }
    }

    async fn send(&self, what: &str, request: reqwest::RequestBuilder, token: &SecretString) -> Result<(StatusCode, String), SourceError> {
        let response =
            request.bearer_auth(token.expose()).send().await.map_err(|e| SourceError::Unavailable(transport_failure(what, &e)))?;
        let status = response.status();
        let retry = retry_after(response.headers());
        let body = response.text().await.map_err(|e| SourceError::Unavailable(transport_failure(what, &e)))?;
        if status.is_success() || status == StatusCode::CONFLICT {
            return Ok((status, body));
        }
        Err(classify(what, status, retry, &body, token.expose()))
    }

    fn client(&self, what: &str) -> Result<&reqwest::Client, SourceError> {
        self.http.for_request(what)
    }
}

#[derive(Deserialize)]
struct Redeemed {
    access_token: String,
    #[serde(default)]
    refresh_token: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpBody {
    id: String,
    app_id: String,
    #[serde(default)]
    app_roles: Vec<RoleBody>,
}

#[derive(Deserialize)]
struct RoleBody {
    id: String,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
struct SpList {
    #[serde(default)]
    value: Vec<SpBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssignmentBody {
    resource_id: String,
    app_role_id: String,
}

#[derive(Deserialize)]
struct AssignmentPage {
    #[serde(default)]
    value: Vec<AssignmentBody>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
}

impl From<SpBody> for ServicePrincipal {
    fn from(body: SpBody) -> Self {
        Self {
            id: body.id,
            app_id: body.app_id,
            app_roles: body.app_roles.into_iter().filter_map(|r| r.value.map(|v| (r.id, v))).collect(),
        }
    }
}

fn unreadable(what: &str) -> SourceError {
    SourceError::Unavailable(format!("{what}: Microsoft answered with a body that is not the documented JSON"))
}

/// Classifies a failed Graph call; `token` is scrubbed from the message.
fn classify(what: &str, status: StatusCode, retry: Option<std::time::Duration>, body: &str, token: &str) -> SourceError {
    #[derive(Deserialize, Default)]
    struct Inner {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    #[derive(Deserialize, Default)]
    struct Outer {
        #[serde(default)]
        error: Inner,
    }
    let parsed: Outer = serde_json::from_str(body).unwrap_or_default();
    let code = if parsed.error.code.is_empty() { format!("HTTP{}", status.as_u16()) } else { parsed.error.code };
    let message = redact(&truncate_chars(&parsed.error.message, MAX_MESSAGE_CHARS), token);
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        SourceError::Throttled { retry_after: retry }
    } else if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        SourceError::Unavailable(format!("{what}: {code}: {message}"))
    } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        SourceError::AccessRefused { code, message }
    } else {
        SourceError::Rejected { code, message }
    }
}

/// `'` doubled, as OData string literals escape it.
fn odata_string(value: &str) -> String {
    value.replace('\'', "''")
}

#[async_trait]
impl CustomerDirectory for GraphDirectoryClient {
    async fn redeem(
        &self,
        tenant_id: &TenantId,
        app: &M365AppCredentials,
        refresh_token: &SecretString,
    ) -> Result<DelegatedSession, SourceError> {
        const WHAT: &str = "refresh token redemption";
        let scope = format!("{}/.default", self.graph_base);
        let form = [
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.client_secret.expose()),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
            ("scope", scope.as_str()),
        ];
        let response = self
            .client(WHAT)?
            .post(format!("{}/{tenant_id}/oauth2/v2.0/token", self.login_base))
            .form(&form)
            .send()
            .await
            .map_err(|e| SourceError::Unavailable(transport_failure(WHAT, &e)))?;
        let status = response.status();
        let retry = retry_after(response.headers());
        let body = response.text().await.map_err(|e| SourceError::Unavailable(transport_failure(WHAT, &e)))?;
        if !status.is_success() {
            let error = classify_token_error(status, retry, &body, app.client_secret.expose());
            tracing::warn!(%tenant_id, status = status.as_u16(), %error, "refresh token redemption refused");
            return Err(match error {
                SourceError::AccessRefused { code, message } | SourceError::Rejected { code, message } => {
                    SourceError::AccessRefused { message: redact(&message, refresh_token.expose()), code }
                }
                other => other,
            });
        }
        let redeemed: Redeemed = serde_json::from_str(&body).map_err(|_| unreadable(WHAT))?;
        if redeemed.access_token.trim().is_empty() || redeemed.refresh_token.trim().is_empty() {
            return Err(SourceError::Unavailable(format!("{WHAT}: the answer carries no access or refresh token")));
        }
        Ok(DelegatedSession {
            tenant_id: tenant_id.clone(),
            access_token: SecretString::new(redeemed.access_token),
            refresh_token: SecretString::new(redeemed.refresh_token),
        })
    }

    async fn service_principal(&self, session: &DelegatedSession, app_id: &str) -> Result<Option<ServicePrincipal>, SourceError> {
        const WHAT: &str = "service principal lookup";
        let filter = format!("appId eq '{}'", odata_string(app_id));
        let request = self
            .client(WHAT)?
            .get(format!("{}/v1.0/servicePrincipals", self.graph_base))
            .query(&[("$filter", filter.as_str()), ("$select", "id,appId,appRoles")]);
        let (_, body) = self.send(WHAT, request, &session.access_token).await?;
        let list: SpList = serde_json::from_str(&body).map_err(|_| unreadable(WHAT))?;
        Ok(list.value.into_iter().find(|sp| sp.app_id.eq_ignore_ascii_case(app_id)).map(ServicePrincipal::from))
    }

    async fn create_service_principal(&self, session: &DelegatedSession, app_id: &str) -> Result<Option<ServicePrincipal>, SourceError> {
        const WHAT: &str = "service principal creation";
        let request = self.client(WHAT)?.post(format!("{}/v1.0/servicePrincipals", self.graph_base)).json(&json!({ "appId": app_id }));
        let (status, body) = self.send(WHAT, request, &session.access_token).await?;
        if status == StatusCode::CONFLICT {
            return Ok(None);
        }
        let created: SpBody = serde_json::from_str(&body).map_err(|_| unreadable(WHAT))?;
        Ok(Some(created.into()))
    }

    async fn grants(&self, session: &DelegatedSession, principal_id: &str) -> Result<Vec<RoleGrant>, SourceError> {
        const WHAT: &str = "app role assignment listing";
        let mut url = format!("{}/v1.0/servicePrincipals/{principal_id}/appRoleAssignments", self.graph_base);
        let mut grants = Vec::new();
        for _ in 0..MAX_PAGES {
            let (_, body) = self.send(WHAT, self.client(WHAT)?.get(&url), &session.access_token).await?;
            let page: AssignmentPage = serde_json::from_str(&body).map_err(|_| unreadable(WHAT))?;
            grants.extend(page.value.into_iter().map(|a| RoleGrant { resource_id: a.resource_id, app_role_id: a.app_role_id }));
            match page.next_link {
                Some(next) if next.starts_with(&self.graph_base) => url = next,
                Some(_) => return Err(SourceError::Rejected { code: "NextLink".into(), message: "a next link off the Graph host".into() }),
                None => return Ok(grants),
            }
        }
        Err(SourceError::Rejected { code: "TooManyPages".into(), message: format!("more than {MAX_PAGES} pages of app role assignments") })
    }

    async fn grant(&self, session: &DelegatedSession, principal_id: &str, resource_id: &str, app_role_id: &str) -> Result<(), SourceError> {
        const WHAT: &str = "app role assignment";
        let request = self
            .client(WHAT)?
            .post(format!("{}/v1.0/servicePrincipals/{resource_id}/appRoleAssignedTo", self.graph_base))
            .json(&json!({ "principalId": principal_id, "resourceId": resource_id, "appRoleId": app_role_id }));
        self.send(WHAT, request, &session.access_token).await.map(drop)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::error::{Classified, ErrorClass};

    #[test]
    fn a_denied_grant_is_access_refused_with_graphs_code_and_no_token_in_its_message() {
        let body =
            r#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation. tok-123456"}}"#;
        let error = classify("grant", StatusCode::FORBIDDEN, None, body, "tok-123456");
        let SourceError::AccessRefused { code, message } = &error else { panic!("{error:?}") };
        assert_eq!(code, "Authorization_RequestDenied");
        assert!(!message.contains("tok-123456"), "{message}");
        assert_eq!(error.class(), ErrorClass::Permanent);
        assert_eq!(classify("x", StatusCode::SERVICE_UNAVAILABLE, None, "", "t").class(), ErrorClass::Transient);
        assert!(
            matches!(classify("x", StatusCode::BAD_REQUEST, None, "<html>", "t"), SourceError::Rejected { code, .. } if code == "HTTP400")
        );
    }

    #[test]
    fn app_roles_without_a_value_are_dropped_and_quotes_are_escaped_for_odata() {
        let sp: SpBody =
            serde_json::from_str(r#"{"id":"s","appId":"a","appRoles":[{"id":"r1","value":"X.Read"},{"id":"r2","value":null}]}"#).unwrap();
        assert_eq!(ServicePrincipal::from(sp).app_roles, [("r1".to_owned(), "X.Read".to_owned())]);
        assert_eq!(odata_string("o'brien"), "o''brien");
    }
}
