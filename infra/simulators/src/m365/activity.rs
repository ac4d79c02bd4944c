//! The Office 365 Management Activity API: request classification, authentication and
//! authorization, content listing (windows, paging), the notification history and blob fetches.
//! Subscription start/stop/list live in `subscriptions.rs`.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::webhooks;

use super::faults::{Op, management_failure};
use super::state::{Blob, BlobBody, Inner, PageCursor, SimState, tenant_key};
use super::subscriptions::{list_subscriptions, require_subscription, start_subscription, stop_subscription};
use super::wire::{
    AfError, Params, af_error, bearer_token, content_time, json_response, parse_window_time, random_bytes, unauthorized, window_time,
};
use super::{BLOB_FETCH_DAYS, CONTENT_TYPES, RETENTION_DAYS, START_GRACE_MINUTES};

/// Per-request context for the Management API handlers.
pub(super) struct Ctx<'a> {
    /// Tenant exactly as written in the URL.
    pub(super) tenant: &'a str,
    /// Lower-cased tenant.
    pub(super) tkey: String,
    pub(super) management_base: String,
    pub(super) query: Params,
    pub(super) body: &'a [u8],
    pub(super) now: DateTime<Utc>,
}

pub(super) fn classify(method: &Method, segments: &[&str]) -> Op {
    let is = |seg: &str, name: &str| seg.eq_ignore_ascii_case(name);
    match segments {
        [s, op] if is(s, "subscriptions") && is(op, "start") && method == Method::POST => Op::StartSubscription,
        [s, op] if is(s, "subscriptions") && is(op, "content") => Op::ListContent,
        [a, _] if is(a, "audit") => Op::FetchBlob,
        _ => Op::Other,
    }
}

pub(super) fn method_not_allowed(method: &Method) -> Response {
    json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &json!({ "Message": format!("The requested resource does not support http method '{method}'.") }),
    )
}

impl Inner {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn handle_manage(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        version: &str,
        tenant: &str,
        rest: &str,
        body: &[u8],
    ) -> Response {
        let ctx = Ctx {
            tenant,
            tkey: tenant_key(tenant),
            management_base: self.management_base(),
            query: Params::parse(uri.query().unwrap_or_default().as_bytes()),
            body,
            now: Utc::now(),
        };
        let segments: Vec<&str> = rest.splitn(2, '/').collect();
        let mut guard = self.lock();
        let st = &mut *guard;
        let op = classify(method, &segments);
        self.log(method, uri, op);
        let publisher = ctx.query.get_ci("PublisherIdentifier").filter(|p| !p.is_empty());
        if publisher.is_none() {
            st.missing_publisher += 1;
        }
        if !(version.eq_ignore_ascii_case("v1.0") || version.eq_ignore_ascii_case("v1")) {
            return not_found(uri);
        }

        if let Some(failure) = self.take_failure(op) {
            return management_failure(failure, op, publisher);
        }

        // Authentication.
        let Some(token) = bearer_token(headers).and_then(|t| st.tokens.get(t)) else {
            return unauthorized();
        };
        if token.expires <= ctx.now || !self.is_management_audience(&token.audience) {
            return unauthorized();
        }
        // Authorization. HTTP statuses for AF codes are undocumented; 403 for "not yours".
        if token.tenant != ctx.tkey {
            return af_error(
                StatusCode::FORBIDDEN,
                "AF20010",
                &format!(
                    "The tenant ID passed in the URL ({tenant}) does not match the tenant ID passed in the access token ({}).",
                    token.tenant
                ),
            );
        }
        if !token.has_role {
            return af_error(
                StatusCode::FORBIDDEN,
                "AF10001",
                "The permission set () sent in the request does not include the expected permission ActivityFeed.Read.",
            );
        }
        if !st.tenants.contains_key(&ctx.tkey) {
            return af_error(
                StatusCode::BAD_REQUEST,
                "AF20011",
                &format!("Specified tenant ID ({tenant}) does not exist in the system or has been deleted."),
            );
        }

        match segments.as_slice() {
            [s, op] if s.eq_ignore_ascii_case("subscriptions") => {
                let op = op.to_ascii_lowercase();
                match (op.as_str(), method) {
                    ("start", &Method::POST) => start_subscription(st, &ctx),
                    ("stop", &Method::POST) => stop_subscription(st, &ctx),
                    ("list", &Method::GET) => list_subscriptions(st, &ctx),
                    ("content", &Method::GET) => list_content(st, &ctx),
                    ("notifications", &Method::GET) => list_notifications(st, &ctx),
                    ("start" | "stop" | "list" | "content" | "notifications", _) => method_not_allowed(method),
                    _ => not_found(uri),
                }
            }
            [a, content_id] if a.eq_ignore_ascii_case("audit") => {
                if method == Method::GET {
                    fetch_blob(st, &ctx, content_id)
                } else {
                    method_not_allowed(method)
                }
            }
            _ => not_found(uri),
        }
    }
}

pub(super) fn not_found(uri: &Uri) -> Response {
    json_response(StatusCode::NOT_FOUND, &json!({ "Message": format!("No HTTP resource was found that matches the request URI '{uri}'.") }))
}

/// Validates `contentType` (AF20001 missing, AF20020 unknown) and returns its canonical form.
pub(super) fn content_type_param<'q>(ctx: &'q Ctx<'_>) -> Result<&'q str, AfError> {
    match ctx.query.get_ci("contentType") {
        None | Some("") => Err(AfError::bad_request("AF20001", "A required parameter is missing: contentType.")),
        Some(ct) if CONTENT_TYPES.contains(&ct) => Ok(ct),
        Some(ct) => Err(AfError::bad_request("AF20020", format!("The specified content type is not valid: {ct}."))),
    }
}

/// Parses and validates the `startTime`/`endTime` window (section 2.3).
pub(super) fn window(ctx: &Ctx<'_>) -> Result<(DateTime<Utc>, DateTime<Utc>, String, String), AfError> {
    let start = ctx.query.get_ci("startTime").filter(|s| !s.is_empty());
    let end = ctx.query.get_ci("endTime").filter(|s| !s.is_empty());
    let (start, end, start_text, end_text) = match (start, end) {
        (None, None) => {
            let end = ctx.now;
            let start = end - TimeDelta::hours(24);
            return Ok((start, end, window_time(start), window_time(end)));
        }
        (Some(s), Some(e)) => {
            let parse = |name: &str, v: &str| {
                parse_window_time(v).ok_or_else(|| {
                    AfError::bad_request(
                        "AF20002",
                        format!(
                            "Invalid parameter type: {name}={v}. Expected YYYY-MM-DD, YYYY-MM-DDTHH:MM or YYYY-MM-DDTHH:MM:SS (UTC, no 'Z', no fractional seconds)."
                        ),
                    )
                })
            };
            (parse("startTime", s)?, parse("endTime", e)?, s.to_owned(), e.to_owned())
        }
        _ => {
            return Err(AfError::bad_request(
                "AF20001",
                "A required parameter is missing: startTime and endTime must both be specified or both be omitted.",
            ));
        }
    };
    // Documented as "less than or equal to 24 hours apart", but the live service refuses a window
    // of exactly 24 hours with AF20055 (observed), and a start more than 7 days back with AF20055
    // too (observed: -9 days). AF20030 (same message) is kept for an end not after the start.
    let oldest = ctx.now - TimeDelta::days(RETENTION_DAYS) - TimeDelta::minutes(START_GRACE_MINUTES);
    let code = if end <= start {
        "AF20030"
    } else if end - start >= TimeDelta::hours(24) || start < oldest {
        "AF20055"
    } else {
        return Ok((start, end, start_text, end_text));
    };
    Err(AfError::bad_request(
        code,
        "Start time and end time must both be specified (or both omitted) and must be less than or equal to 24 hours apart, with the start time no more than 7 days in the past.",
    ))
}

pub(super) fn new_page_token(now: DateTime<Utc>) -> String {
    let r = u64::from_be_bytes(random_bytes::<8>()) % 10_000_000_000_000;
    format!("{}R{r:013}", now.format("%Y%m%d%H"))
}

pub(super) fn list_content(st: &mut SimState, ctx: &Ctx<'_>) -> Response {
    let content_type = match content_type_param(ctx) {
        Ok(ct) => ct.to_owned(),
        Err(err) => return err.into_response(),
    };
    if let Err(resp) = require_subscription(st, ctx, &content_type) {
        return resp.into_response();
    }
    // Observed live: a freshly started subscription can keep answering AF20023 for a while.
    if let Some(sub) =
        st.tenants.get_mut(&ctx.tkey).and_then(|t| t.subscriptions.get_mut(&content_type)).filter(|s| s.disabled_lists_left > 0)
    {
        sub.disabled_lists_left -= 1;
        return AfError::bad_request("AF20023", "The subscription was disabled by the tenant administrator or service administrator.")
            .into_response();
    }

    let (start, end, start_text, end_text, after) = match ctx.query.get_ci("nextPage").filter(|p| !p.is_empty()) {
        Some(token) => match st.pages.get(token) {
            Some(c) if c.tenant == ctx.tkey && c.content_type == content_type => {
                (c.start, c.end, c.start_text.clone(), c.end_text.clone(), Some(c.after))
            }
            _ => {
                return af_error(StatusCode::BAD_REQUEST, "AF20031", "Invalid nextPage Input: the value is not valid for this request.");
            }
        },
        None => match window(ctx) {
            Ok((s, e, st_text, en_text)) => (s, e, st_text, en_text, None),
            Err(err) => return err.into_response(),
        },
    };

    let expiry_cutoff = ctx.now - TimeDelta::days(RETENTION_DAYS);
    let mut matching: Vec<&Blob> = st
        .blobs
        .get(&ctx.tkey)
        .map(|blobs| {
            blobs
                .iter()
                .filter(|b| b.content_type == content_type)
                .filter(|b| b.created >= start && b.created < end)
                .filter(|b| b.created > expiry_cutoff)
                .filter(|b| after.is_none_or(|a| (b.created, b.seq) > a))
                .collect()
        })
        .unwrap_or_default();
    matching.sort_by_key(|b| (b.created, b.seq));

    let page_size = st.page_size.max(1);
    let has_more = matching.len() > page_size;
    matching.truncate(page_size);
    let last = matching.last().map(|b| (b.created, b.seq));
    let items: Vec<Value> = matching
        .iter()
        .map(|b| {
            json!({
                "contentType": b.content_type,
                "contentId": b.content_id,
                "contentUri": format!(
                    "{}/api/v1.0/{}/activity/feed/audit/{}",
                    ctx.management_base, ctx.tenant, b.content_id
                ),
                "contentCreated": content_time(b.created),
                "contentExpiration": content_time(b.created + TimeDelta::days(BLOB_FETCH_DAYS)),
            })
        })
        .collect();

    let mut resp = json_response(StatusCode::OK, &Value::Array(items));
    if let Some(last) = last.filter(|_| has_more) {
        let token = new_page_token(ctx.now);
        // Like Microsoft's example: `/api/v1/`, original window, no PublisherIdentifier.
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("contentType", &content_type)
            .append_pair("startTime", &start_text)
            .append_pair("endTime", &end_text)
            .append_pair("nextPage", &token)
            .finish();
        let next = format!("{}/api/v1/{}/activity/feed/subscriptions/content?{query}", ctx.management_base, ctx.tenant);
        st.pages.insert(token, PageCursor { tenant: ctx.tkey.clone(), content_type, start, end, start_text, end_text, after: last });
        if let Ok(value) = HeaderValue::from_str(&next) {
            resp.headers_mut().insert(HeaderName::from_static("nextpageuri"), value);
        }
    }
    resp
}

pub(super) fn list_notifications(st: &SimState, ctx: &Ctx<'_>) -> Response {
    let content_type = match content_type_param(ctx) {
        Ok(ct) => ct.to_owned(),
        Err(err) => return err.into_response(),
    };
    if let Err(resp) = require_subscription(st, ctx, &content_type) {
        return resp.into_response();
    }
    let (start, end) = match window(ctx) {
        Ok((start, end, _, _)) => (start, end),
        Err(resp) => return resp.into_response(),
    };
    // Service notifications sent in the window (not `send_notification_now`), with the
    // `notificationStatus` values the live service uses.
    let mut history = webhooks::history(&st.webhook_deliveries, &ctx.tkey, &content_type, start, end);
    for entry in &mut history {
        let live = match entry["notificationStatus"].as_str() {
            Some("success") => "Succeeded",
            Some("failed") => "Failed",
            _ => continue,
        };
        entry["notificationStatus"] = json!(live);
    }
    json_response(StatusCode::OK, &Value::Array(history))
}

pub(super) fn fetch_blob(st: &mut SimState, ctx: &Ctx<'_>, content_id: &str) -> Response {
    // axum has already percent-decoded the path, so `%24` and a raw `$` both arrive as `$`.
    let Some(blob) = st.blobs.get(&ctx.tkey).and_then(|blobs| blobs.iter().find(|b| b.content_id == content_id)) else {
        return af_error(StatusCode::NOT_FOUND, "AF20050", "The specified content does not exist.");
    };
    // Listing stops after 7 days, but the URI keeps serving until `contentExpiration`.
    if blob.created <= ctx.now - TimeDelta::days(BLOB_FETCH_DAYS) {
        return af_error(StatusCode::NOT_FOUND, "AF20051", "Content requested with the content ID has already expired.");
    }
    let disabled = st.tenants.get(&ctx.tkey).and_then(|t| t.subscriptions.get(&blob.content_type)).is_some_and(|s| !s.enabled);
    if disabled {
        return af_error(
            StatusCode::BAD_REQUEST,
            "AF20023",
            "The subscription was disabled by the tenant administrator or service administrator.",
        );
    }
    let body = match &blob.body {
        BlobBody::Records(records) => Value::Array(records.clone()).to_string(),
        BlobBody::Raw(raw) => raw.clone(),
    };
    st.blob_fetches += 1;
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body).into_response()
}
