//! The Microsoft identity platform token endpoint (OAuth2 client credentials, v1 and v2):
//! `{base}/login/{tenant}/oauth2/v2.0/token` and `{base}/login/{tenant}/oauth2/token`.

use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use super::TOKEN_LIFETIME_SECS;
use super::faults::{Op, token_failure};
use super::state::{Inner, IssuedToken, tenant_key};
use super::wire::{Params, aad_error, json_response, new_guid, no_store, random_bytes};

/// `client_id`/`client_secret` from the form body, falling back to HTTP Basic (RFC 6749 2.3.1:
/// both parts form-urlencoded before base64).
pub(super) fn client_credentials(form: &Params, headers: &HeaderMap) -> (Option<String>, Option<String>) {
    let mut id = form.get("client_id").map(str::to_owned);
    let mut secret = form.get("client_secret").map(str::to_owned);
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, b64)| STANDARD.decode(b64.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    if let Some((u, p)) = basic.as_deref().and_then(|d| d.split_once(':')) {
        let decode =
            |s: &str| url::form_urlencoded::parse(format!("v={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default();
        if id.is_none() {
            id = Some(decode(u));
        }
        if secret.is_none() {
            secret = Some(decode(p));
        }
    }
    (id.filter(|s| !s.is_empty()), secret.filter(|s| !s.is_empty()))
}

/// An unsigned, JWT-shaped opaque token (header.payload.garbage-signature).
pub(super) fn make_access_token(tenant: &str, client_id: &str, audience: &str, now: DateTime<Utc>, roles: &[&str]) -> String {
    let header = json!({ "typ": "JWT", "alg": "RS256", "x5t": "vigil-sim", "kid": "vigil-sim" });
    let iat = now.timestamp() - 300;
    let issuer = format!("https://sts.windows.net/{tenant}/");
    let oid = new_guid();
    let mut claims = json!({
        "aud": audience,
        "iss": issuer,
        "iat": iat,
        "nbf": iat,
        "exp": now.timestamp() + TOKEN_LIFETIME_SECS,
        "appid": client_id,
        "appidacr": "1",
        "idp": issuer,
        "idtyp": "app",
        "oid": oid,
        "sub": oid,
        "tid": tenant,
        "uti": URL_SAFE_NO_PAD.encode(random_bytes::<16>()),
        "ver": "1.0",
    });
    if !roles.is_empty()
        && let Some(obj) = claims.as_object_mut()
    {
        obj.insert("roles".to_owned(), json!(roles));
    }
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(random_bytes::<64>())
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenVersion {
    V1,
    V2,
}

impl Inner {
    pub(super) fn handle_token(&self, version: TokenVersion, tenant: &str, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
        let now = Utc::now();
        let form = Params::parse(body);
        let mut guard = self.lock();
        let st = &mut *guard;
        self.log(&Method::POST, uri, Op::Token);
        if let Some(failure) = self.take_failure(Op::Token) {
            return token_failure(failure);
        }

        let tkey = tenant_key(tenant);
        if tkey == "common" || tkey == "consumers" {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                9001023,
                "The grant type is not supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.",
            );
        }
        // A technician's delegated token (direct onboarding): any tenant the GDAP relationships
        // reach, registered here or not.
        if form.get("grant_type") == Some("refresh_token") && version == TokenVersion::V2 {
            return self.handle_refresh_grant(st, tenant, &form, headers);
        }
        let Some(registered) = st.tenants.get(&tkey) else {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                90002,
                &format!(
                    "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
                ),
            );
        };

        match form.get("grant_type") {
            None | Some("") => {
                return aad_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: 'grant_type'.",
                );
            }
            Some("client_credentials") => {}
            Some(other) => {
                return aad_error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    70003,
                    &format!("The app requested an unsupported grant type '{other}'."),
                );
            }
        }

        let (client_id, client_secret) = client_credentials(&form, headers);
        let Some(client_id) = client_id else {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            );
        };

        // Resource (v1) / scope (v2).
        let resource = match version {
            TokenVersion::V2 => {
                let Some(scope) = form.get("scope").map(str::trim).filter(|s| !s.is_empty()) else {
                    return aad_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_scope",
                        70011,
                        "The provided request must include a 'scope' input parameter.",
                    );
                };
                let resource = scope.strip_suffix("/.default").unwrap_or_default();
                if scope.split_whitespace().count() != 1 || !self.is_acceptable_resource(resource) {
                    return aad_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_scope",
                        70011,
                        &format!(
                            "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid. For the client credentials flow the scope must be a single '<resource>/.default' value."
                        ),
                    );
                }
                resource.to_owned()
            }
            TokenVersion::V1 => {
                let Some(resource) = form.get("resource").map(str::trim).filter(|s| !s.is_empty()) else {
                    return aad_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        900144,
                        "The request body must contain the following parameter: 'resource'.",
                    );
                };
                if !self.is_acceptable_resource(resource) {
                    return aad_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_resource",
                        500011,
                        &format!(
                            "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."
                        ),
                    );
                }
                resource.to_owned()
            }
        };

        if !registered.client_id.eq_ignore_ascii_case(&client_id) || !registered.consented {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                700016,
                &format!(
                    "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
                ),
            );
        }
        match client_secret {
            None => {
                return aad_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7000218,
                    "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                );
            }
            Some(secret) if secret != registered.client_secret => {
                return aad_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7000215,
                    &format!(
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                    ),
                );
            }
            Some(_) => {}
        }

        // The app role in the token depends on its resource, like the real `roles` claim.
        let graph = crate::graph::is_graph_audience(&resource, self.port());
        let (has_role, role) = if graph {
            (st.graph.role_granted(&tkey), crate::graph::ALERTS_ROLE)
        } else {
            (registered.activity_feed_role, "ActivityFeed.Read")
        };
        let partner_role = graph && st.partner.role_granted(&tkey);
        let partner_write = graph && st.partner.write_granted(&tkey);
        let sign_in_role = graph && st.sign_ins.role_granted(&tkey);
        let users_role = graph && st.users.role_granted(&tkey);
        let licences_role = graph && st.licences.role_granted(&tkey);
        let roles: Vec<&str> = [
            has_role.then_some(role),
            partner_role.then_some(crate::partner::RELATIONSHIPS_ROLE),
            partner_write.then_some(crate::partner::RELATIONSHIPS_WRITE_ROLE),
            sign_in_role.then_some(crate::sign_ins::SIGN_INS_ROLE),
            users_role.then_some(super::users::USERS_ROLE),
            licences_role.then_some(super::licences::LICENCES_ROLE),
        ]
        .into_iter()
        .flatten()
        .collect();
        let access_token = make_access_token(tenant, &client_id, &resource, now, &roles);
        st.tokens.insert(
            access_token.clone(),
            IssuedToken {
                tenant: tkey,
                audience: resource.clone(),
                expires: now + TimeDelta::seconds(TOKEN_LIFETIME_SECS),
                has_role,
                partner_role,
                partner_write,
                sign_in_role,
                users_role,
                licences_role,
            },
        );

        let body = match version {
            TokenVersion::V2 => json!({
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_SECS,
                "ext_expires_in": TOKEN_LIFETIME_SECS,
                "access_token": access_token,
            }),
            // v1 returns the numeric fields as strings.
            TokenVersion::V1 => json!({
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_SECS.to_string(),
                "ext_expires_in": TOKEN_LIFETIME_SECS.to_string(),
                "expires_on": (now.timestamp() + TOKEN_LIFETIME_SECS).to_string(),
                "not_before": (now.timestamp() - 300).to_string(),
                "resource": resource,
                "access_token": access_token,
            }),
        };
        let mut resp = json_response(StatusCode::OK, &body);
        no_store(&mut resp);
        resp
    }
}
