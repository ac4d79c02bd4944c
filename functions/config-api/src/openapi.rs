//! The API's OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations
//! and the request and response types, so it cannot drift from the code. Served at
//! `GET /v1/openapi.json` and checked in at `functions/config-api/openapi.json` (a test fails
//! when the two differ: `VIGIL_UPDATE_OPENAPI=1 cargo test -p config-api --test openapi`
//! rewrites it).
//!
//! Every error is RFC 7807 `application/problem+json`. The statuses every authenticated route
//! can answer (400, 401, 403, 404, 422, 429, 500, 503; 413 and 415 for routes with a body) are
//! added to each operation here; the ones particular to a route (409, 410, 502) are in its
//! annotation.

use crate::problem::Problem;
use axum::Json;
use axum::response::IntoResponse;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as OpenApiDocument, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Vigil config API",
        description = "Microsoft 365 security monitoring for MSPs: tenants, destinations (PSAs), alert policies, alerts and their triage, the SIEM feed, staff principals and the audit log. Every route but health and this document takes `Authorization: Bearer <token>`; the token's principal decides what the caller may do and see (see the role table in the README).",
        version = "1"
    ),
    paths(
        crate::routes::health,
        crate::openapi::openapi_json,
        crate::routes::get_msp,
        crate::routes::set_msp,
        crate::routes::connect_partner_tenant,
        crate::routes::list_tenants,
        crate::routes::register_tenant,
        crate::routes::get_tenant,
        crate::routes::set_m365_credentials,
        crate::routes::stream_health,
        crate::routes::set_streams,
        crate::alert_routes::get_alert,
        crate::routes::company_route_gone,
        crate::routes::psa_route_gone_get,
        crate::routes::psa_route_gone_put,
        crate::tuning_routes::list_alerts,
        crate::tuning_routes::triage_alert,
        crate::tuning_routes::suppress_like,
        crate::tuning_routes::list_policies,
        crate::tuning_routes::create_policy,
        crate::tuning_routes::get_policy,
        crate::tuning_routes::replace_policy,
        crate::tuning_routes::delete_policy,
        crate::tuning_routes::test_policy,
        crate::tuning_routes::tenant_switches,
        crate::tuning_routes::switch_policy,
        crate::tuning_routes::set_policy_context,
        crate::tuning_routes::list_suppressions,
        crate::tuning_routes::create_suppression,
        crate::tuning_routes::delete_suppression,
        crate::siem_routes::siem_alerts,
        crate::destination_routes::list_destinations,
        crate::destination_routes::get_destination,
        crate::destination_routes::put_destination,
        crate::destination_routes::delete_destination,
        crate::destination_routes::test_destination,
        crate::destination_routes::companies,
        crate::destination_routes::places,
        crate::destination_routes::priorities,
        crate::destination_routes::statuses,
        crate::destination_routes::contacts,
        crate::destination_routes::technicians,
        crate::destination_routes::sites,
        crate::destination_routes::link_company,
        crate::replay_routes::start_replay,
        crate::replay_routes::get_replay,
        crate::offboarding_routes::offboard_tenant,
        crate::offboarding_routes::get_offboarding,
        crate::access_routes::me,
        crate::access_routes::list_principals,
        crate::access_routes::create_principal,
        crate::access_routes::get_principal,
        crate::access_routes::update_principal,
        crate::access_routes::delete_principal,
        crate::access_routes::list_tokens,
        crate::access_routes::issue_token,
        crate::access_routes::revoke_token,
        crate::access_routes::rotate_token,
        crate::access_routes::audit_log,
        crate::relationship_routes::admin_relationships,
        crate::relationship_routes::admin_relationship_summary,
        crate::relationship_routes::admin_relationship_export,
        crate::relationship_routes::preview_removal,
        crate::relationship_routes::confirm_removal,
        crate::relationship_routes::list_removals,
        crate::relationship_routes::refresh,
        crate::mailbox_routes::current_counts,
        crate::mailbox_routes::current_counts_export,
        crate::mailbox_routes::tenant_series,
        crate::mailbox_routes::tenant_series_export,
        crate::mailbox_routes::billing_settings,
        crate::mailbox_routes::set_billing_settings,
        crate::licence_routes::tenant_licences,
        crate::billing_routes::list_mappings,
        crate::billing_routes::put_mapping,
        crate::billing_routes::delete_mapping,
        crate::billing_routes::dry_run,
        crate::billing_routes::run_sync,
        crate::coverage_routes::coverage,
        crate::onboarding_routes::register_app,
        crate::onboarding_routes::get_app,
        crate::onboarding_routes::issue_link,
        crate::onboarding_routes::list_links,
        crate::onboarding_routes::consent_redirect,
        crate::onboarding_routes::run_access_test,
        crate::onboarding_routes::last_access_test,
        crate::onboarding_routes::discovery,
        crate::onboarding_routes::bulk_onboard,
        crate::onboarding_routes::bulk_job,
        crate::onboarding_routes::store_delegated_credential,
        crate::onboarding_routes::forget_delegated_credential,
    ),
    components(schemas(Problem, vigil::policy::condition::Condition, vigil::secret::SecretString, vigil::ids::AuditStream)),
    modifiers(&Conventions),
    security(("bearer" = []))
)]
pub struct ApiDoc;

/// The bearer scheme, the public routes, and the problem responses every route shares.
struct Conventions;

/// Routes anyone may call.
const PUBLIC: [&str; 3] = ["/v1/health", "/v1/openapi.json", "/v1/consent/{msp_id}"];

fn problem(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/problem+json", ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build())
        .build()
}

fn add_shared_problems(operation: &mut Operation) {
    let has_body = operation.request_body.is_some();
    let responses = &mut operation.responses.responses;
    let mut shared = vec![
        ("400", "The path, query or body cannot be read (a malformed id, cursor or JSON)"),
        ("401", "Missing, unknown, expired or revoked API token"),
        ("403", "The token's role or scopes do not allow this route"),
        ("404", "Not found for this MSP (also another MSP's, or of a category the caller does not see)"),
        ("422", "Well-formed but not acceptable; the detail names the field"),
        ("429", "Over a rate limit; `Retry-After` says when to retry"),
        ("500", "An unexpected failure"),
        ("503", "A backend is unavailable; retry"),
    ];
    if has_body {
        shared.push(("413", "The body is larger than this route accepts"));
        shared.push(("415", "The body is not `application/json`"));
    }
    for (status, description) in shared {
        responses.entry(status.to_owned()).or_insert_with(|| problem(description).into());
    }
}

/// A link for stateful testing and clients: what a creation answers leads to the operations
/// on what it created.
struct DocLink {
    /// The creating operation (a POST).
    path: &'static str,
    status: &'static str,
    name: &'static str,
    /// The operation id it leads to (the handler's name).
    target: &'static str,
    parameters: &'static [(&'static str, &'static str)],
}

const fn link(
    path: &'static str,
    status: &'static str,
    name: &'static str,
    target: &'static str,
    parameters: &'static [(&'static str, &'static str)],
) -> DocLink {
    DocLink { path, status, name, target, parameters }
}

const TENANT_FROM_BODY: &[(&str, &str)] = &[("tenant_id", "$response.body#/tenant_id")];
const PRINCIPAL_FROM_BODY: &[(&str, &str)] = &[("principal_id", "$response.body#/principal_id")];
const TOKEN_FROM_BODY: &[(&str, &str)] = &[("principal_id", "$request.path.principal_id"), ("token_id", "$response.body#/token_id")];
const POLICY_FROM_BODY: &[(&str, &str)] = &[("policy_id", "$response.body#/policy/id")];

const LINKS: &[DocLink] = &[
    link("/v1/tenants", "201", "ReadTenant", "get_tenant", TENANT_FROM_BODY),
    link("/v1/tenants", "201", "TenantStreams", "stream_health", TENANT_FROM_BODY),
    link("/v1/principals", "201", "ReadPrincipal", "get_principal", PRINCIPAL_FROM_BODY),
    link("/v1/principals", "201", "IssueToken", "issue_token", PRINCIPAL_FROM_BODY),
    link("/v1/principals", "201", "DeletePrincipal", "delete_principal", PRINCIPAL_FROM_BODY),
    link("/v1/principals/{principal_id}/tokens", "201", "RevokeToken", "revoke_token", TOKEN_FROM_BODY),
    link("/v1/principals/{principal_id}/tokens", "201", "RotateToken", "rotate_token", TOKEN_FROM_BODY),
    link("/v1/suppressions", "201", "DeleteSuppression", "delete_suppression", &[("suppression_id", "$response.body#/id")]),
    link("/v1/policies", "201", "ReadPolicy", "get_policy", POLICY_FROM_BODY),
    link("/v1/policies", "201", "DeletePolicy", "delete_policy", POLICY_FROM_BODY),
    link(
        "/v1/tenants/{tenant_id}/replays",
        "202",
        "ReadReplay",
        "get_replay",
        &[("tenant_id", "$request.path.tenant_id"), ("replay_id", "$response.body#/replay_id")],
    ),
];

/// Adds [`LINKS`] to the document's JSON. (utoipa 5.5 writes a link's `operationId` as
/// `operation_id`, which the OpenAPI schema refuses, so links are written here.)
fn add_links(document: &mut serde_json::Value) {
    for link in LINKS {
        let pointer = format!("/paths/{}/post/responses/{}", link.path.replace('~', "~0").replace('/', "~1"), link.status);
        let Some(response) = document.pointer_mut(&pointer).and_then(serde_json::Value::as_object_mut) else { continue };
        let parameters: serde_json::Map<String, serde_json::Value> =
            link.parameters.iter().map(|(name, value)| ((*name).to_owned(), serde_json::Value::from(*value))).collect();
        let links = response.entry("links").or_insert_with(|| serde_json::json!({}));
        links[link.name] = serde_json::json!({"operationId": link.target, "parameters": parameters});
    }
}

impl Modify for Conventions {
    fn modify(&self, openapi: &mut OpenApiDocument) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("A Vigil API token: vgl_<msp>_<secret>")).build(),
            ),
        );
        for (path, item) in &mut openapi.paths.paths {
            let public = PUBLIC.contains(&path.as_str());
            for operation in [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten() {
                if public {
                    operation.security = Some(Vec::new());
                } else {
                    add_shared_problems(operation);
                }
            }
        }
    }
}

/// The OpenAPI 3.1 document of this API, as JSON.
#[must_use]
pub fn document() -> serde_json::Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| unreachable!("the document always serialises"));
    add_links(&mut document);
    document
}

/// `GET /v1/openapi.json`.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta", responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json")))]
pub(crate) async fn openapi_json() -> impl IntoResponse {
    Json(document())
}
