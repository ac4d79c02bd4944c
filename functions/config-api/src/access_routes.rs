//! Routes for the caller itself, principals, their tokens and the audit log: parse, call
//! [`vigil::services::access::AccessService`], map the result. A token's text appears only in
//! the answer that created it.

use crate::AppState;
use crate::extract::{ApiJson, Caller};
use crate::problem::Problem;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use vigil::access::{AuditEntry, Permission, Principal, Role, StoredToken};
use vigil::alert::Category;
use vigil::ids::{PrincipalId, TokenId};
use vigil::services::access::{IssuedToken, NewPrincipal, NewToken, PrincipalChange};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/me", get(me))
        .route("/v1/principals", get(list_principals).post(create_principal))
        .route("/v1/principals/{principal_id}", get(get_principal).patch(update_principal).delete(delete_principal))
        .route("/v1/principals/{principal_id}/tokens", get(list_tokens).post(issue_token))
        .route("/v1/principals/{principal_id}/tokens/{token_id}", axum::routing::delete(revoke_token))
        .route("/v1/principals/{principal_id}/tokens/{token_id}/rotate", post(rotate_token))
        .route("/v1/audit-log", get(audit_log))
}

fn principal_id(raw: &str) -> Result<PrincipalId, Problem> {
    PrincipalId::parse(raw).map_err(|e| Problem::bad_request(e.to_string()))
}

fn token_id(raw: &str) -> Result<TokenId, Problem> {
    TokenId::parse(raw).map_err(|e| Problem::bad_request(e.to_string()))
}

/// A principal as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PrincipalView {
    principal_id: PrincipalId,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    role: Role,
    /// `null`: every category.
    categories: Option<BTreeSet<Category>>,
    /// What the principal may do (its role's permissions, or an automation's scopes).
    permissions: BTreeSet<Permission>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<&Principal> for PrincipalView {
    fn from(p: &Principal) -> Self {
        Self {
            principal_id: p.principal_id.clone(),
            name: p.name.clone(),
            email: p.email.clone(),
            role: p.role,
            categories: p.categories.clone(),
            permissions: p.permissions(),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// A token as the API lists it: never its text or hash.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TokenView {
    token_id: TokenId,
    name: String,
    /// The token's last four characters.
    ends_with: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    live: bool,
}

impl TokenView {
    fn of(token: &StoredToken, now: DateTime<Utc>) -> Self {
        Self {
            token_id: token.token_id.clone(),
            name: token.name.clone(),
            ends_with: token.ends_with.clone(),
            created_at: token.created_at,
            expires_at: token.expires_at,
            revoked_at: token.revoked_at,
            live: token.is_live(now),
        }
    }
}

/// The MSP's principals.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PrincipalList {
    principals: Vec<PrincipalView>,
}

/// A principal's tokens.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TokenList {
    tokens: Vec<TokenView>,
}

/// A token just issued: the one answer that holds its text.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct IssuedTokenView {
    /// Shown once: store it now.
    token: String,
    #[serde(flatten)]
    details: TokenView,
}

fn issued(state: &AppState, issued: &IssuedToken) -> Response {
    let view =
        IssuedTokenView { token: issued.token.expose().to_owned(), details: TokenView::of(&issued.stored, state.access.clock.now()) };
    (StatusCode::CREATED, [(axum::http::header::CACHE_CONTROL, "no-store")], Json(view)).into_response()
}

/// `GET /v1/me`: who the token is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct MeView {
    principal_id: PrincipalId,
    name: String,
    role: Role,
    categories: Option<BTreeSet<Category>>,
    permissions: BTreeSet<Permission>,
}

/// Who the token is: principal, role, categories, permissions.
#[utoipa::path(get, path = "/v1/me", tag = "principals", responses((status = 200, body = MeView)))]
pub(crate) async fn me(State(state): State<AppState>, Caller(access): Caller) -> Result<Json<MeView>, Problem> {
    let principal = state.access.me(&access).await?;
    let permissions = Permission::ALL.into_iter().filter(|p| access.may(*p)).collect();
    Ok(Json(MeView {
        principal_id: access.principal_id().clone(),
        name: principal.as_ref().map_or_else(|| access.actor(), |p| p.name.clone()),
        role: access.role(),
        categories: principal.and_then(|p| p.categories),
        permissions,
    }))
}

/// The MSP's principals.
#[utoipa::path(get, path = "/v1/principals", tag = "principals", responses((status = 200, body = PrincipalList)))]
pub(crate) async fn list_principals(State(state): State<AppState>, Caller(access): Caller) -> Result<Json<PrincipalList>, Problem> {
    let principals: Vec<PrincipalView> = state.access.principals(&access).await?.iter().map(PrincipalView::from).collect();
    Ok(Json(PrincipalList { principals }))
}

/// Creates a principal (without tokens).
#[utoipa::path(post, path = "/v1/principals", tag = "principals", request_body = NewPrincipal, responses((status = 201, body = PrincipalView),
    (status = 409, description = "The MSP has as many principals as it may", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn create_principal(
    State(state): State<AppState>,
    Caller(access): Caller,
    ApiJson(body): ApiJson<NewPrincipal>,
) -> Result<Response, Problem> {
    let principal = state.access.create_principal(&access, body).await?;
    Ok((StatusCode::CREATED, Json(PrincipalView::from(&principal))).into_response())
}

/// One principal.
#[utoipa::path(get, path = "/v1/principals/{principal_id}", tag = "principals", params(("principal_id" = String, Path, description = "p-…")), responses((status = 200, body = PrincipalView)))]
pub(crate) async fn get_principal(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
) -> Result<Json<PrincipalView>, Problem> {
    Ok(Json(PrincipalView::from(&state.access.principal(&access, &principal_id(&raw)?).await?)))
}

/// Changes a principal; the last owner stays an owner.
#[utoipa::path(patch, path = "/v1/principals/{principal_id}", tag = "principals", request_body = PrincipalChange, params(("principal_id" = String, Path, description = "p-…")),
    responses((status = 200, body = PrincipalView), (status = 409, description = "The MSP's last owner", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn update_principal(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<PrincipalChange>,
) -> Result<Json<PrincipalView>, Problem> {
    Ok(Json(PrincipalView::from(&state.access.update_principal(&access, &principal_id(&raw)?, body).await?)))
}

/// Deletes a principal and revokes its tokens; the last owner stays.
#[utoipa::path(delete, path = "/v1/principals/{principal_id}", tag = "principals", params(("principal_id" = String, Path, description = "p-…")),
    responses((status = 204, description = "Deleted"), (status = 409, description = "The MSP's last owner", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn delete_principal(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
) -> Result<StatusCode, Problem> {
    state.access.delete_principal(&access, &principal_id(&raw)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A principal's tokens (never their text).
#[utoipa::path(get, path = "/v1/principals/{principal_id}/tokens", tag = "principals", params(("principal_id" = String, Path, description = "p-…")), responses((status = 200, body = TokenList)))]
pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
) -> Result<Json<TokenList>, Problem> {
    let now = state.access.clock.now();
    let tokens: Vec<TokenView> = state.access.tokens(&access, &principal_id(&raw)?).await?.iter().map(|t| TokenView::of(t, now)).collect();
    Ok(Json(TokenList { tokens }))
}

/// Issues a token: the answer is the only time its text is shown.
#[utoipa::path(post, path = "/v1/principals/{principal_id}/tokens", tag = "principals", request_body = NewToken, params(("principal_id" = String, Path, description = "p-…")),
    responses((status = 201, body = IssuedTokenView), (status = 409, description = "The principal holds as many live tokens as it may", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn issue_token(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<Response, Problem> {
    let token = state.access.issue_token(&access, &principal_id(&raw)?, body).await?;
    Ok(issued(&state, &token))
}

/// Revokes a token at once.
#[utoipa::path(delete, path = "/v1/principals/{principal_id}/tokens/{token_id}", tag = "principals", params(("principal_id" = String, Path, description = "p-…"), ("token_id" = String, Path, description = "t-…")),
    responses((status = 204, description = "Revoked")))]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path((principal, token)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    state.access.revoke_token(&access, &principal_id(&principal)?, &token_id(&token)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST …/rotate` body.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rotation {
    /// How long the old token keeps working, 0 to 1,440 minutes (default 0: it stops at once).
    #[serde(default)]
    grace_minutes: u32,
}

/// Rotates a token: a new one, the old one revoked after the grace period.
#[utoipa::path(post, path = "/v1/principals/{principal_id}/tokens/{token_id}/rotate", tag = "principals", request_body = Rotation, params(("principal_id" = String, Path, description = "p-…"), ("token_id" = String, Path, description = "t-…")),
    responses((status = 201, body = IssuedTokenView), (status = 409, description = "The token is expired or revoked", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn rotate_token(
    State(state): State<AppState>,
    Caller(access): Caller,
    Path((principal, token)): Path<(String, String)>,
    ApiJson(body): ApiJson<Rotation>,
) -> Result<Response, Problem> {
    let token = state.access.rotate_token(&access, &principal_id(&principal)?, &token_id(&token)?, body.grace_minutes).await?;
    Ok(issued(&state, &token))
}

/// `GET /v1/audit-log` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<usize>,
    /// `next_cursor` of the page before.
    cursor: Option<String>,
}

/// A page of the audit log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AuditLogView {
    entries: Vec<AuditEntry>,
    next_cursor: Option<String>,
}

/// The MSP's configuration audit log, newest first.
#[utoipa::path(get, path = "/v1/audit-log", tag = "principals", params(AuditQuery), responses((status = 200, body = AuditLogView)))]
pub(crate) async fn audit_log(
    State(state): State<AppState>,
    Caller(access): Caller,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditLogView>, Problem> {
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let page = state.access.audit_log(&access, query.limit.unwrap_or(50), query.cursor.as_deref()).await?;
    Ok(Json(AuditLogView { entries: page.entries, next_cursor: page.next }))
}
