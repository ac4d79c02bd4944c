//! Management Activity API subscriptions: `subscriptions/start` (with the webhook validation
//! handshake run outside the lock), `subscriptions/stop` and `subscriptions/list`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::webhooks::{self, PendingStart, Webhook, WebhookStatus};

use super::activity::{Ctx, content_type_param};
use super::state::{Inner, SimState, Subscription};
use super::wire::{AfError, af_error, json_response};

/// The start response: like [`subscription_json`], but with `contentType` cased the way the live
/// service answers a start (`Audit.Sharepoint` for `Audit.SharePoint`): clients must compare
/// content types case-insensitively.
pub(super) fn start_response_json(content_type: &str, sub: &Subscription) -> Value {
    let mut body = subscription_json(content_type, sub);
    if content_type == "Audit.SharePoint" {
        body["contentType"] = json!("Audit.Sharepoint");
    }
    body
}

pub(super) fn subscription_json(content_type: &str, sub: &Subscription) -> Value {
    json!({
        "contentType": content_type,
        "status": if sub.enabled { "enabled" } else { "disabled" },
        "webhook": sub.webhook.as_ref().map_or(Value::Null, Webhook::to_json),
    })
}

/// Requires an enabled subscription for `content_type` (AF20022 none, AF20023 disabled).
pub(super) fn require_subscription(st: &SimState, ctx: &Ctx<'_>, content_type: &str) -> Result<(), AfError> {
    match st.tenants.get(&ctx.tkey).and_then(|t| t.subscriptions.get(content_type)) {
        None => Err(AfError::bad_request("AF20022", "No subscription found for the specified content type.")),
        Some(sub) if !sub.enabled => {
            Err(AfError::bad_request("AF20023", "The subscription was disabled by the tenant administrator or service administrator."))
        }
        Some(_) => Ok(()),
    }
}

pub(super) fn start_subscription(st: &mut SimState, ctx: &Ctx<'_>) -> Response {
    let content_type = match content_type_param(ctx) {
        Ok(ct) => ct.to_owned(),
        Err(err) => return err.into_response(),
    };
    // Optional body `{"webhook": {"address": ..., "authId": ..., "expiration": ...}}`.
    let webhook = match webhooks::parse_start_body(ctx.body, ctx.now) {
        Ok(webhook) => webhook,
        Err(err) => return af_error(StatusCode::BAD_REQUEST, err.code, &err.message),
    };
    let disabled_after_start = st.disabled_after_start;
    let Some(tenant) = st.tenants.get_mut(&ctx.tkey) else {
        return af_error(StatusCode::BAD_REQUEST, "AF20011", "Specified tenant ID does not exist in the system or has been deleted.");
    };
    // The real service also asks for 15 minutes between starts; not enforced here.
    let current = tenant.subscriptions.get(&content_type);
    if current.is_some_and(|s| s.held_disabled) {
        return af_error(
            StatusCode::BAD_REQUEST,
            "AF20023",
            "The subscription was disabled by the tenant administrator or service administrator.",
        );
    }
    let unchanged = match (current.and_then(|s| s.webhook.as_ref()), &webhook) {
        (None, None) => true,
        // A disabled or expired webhook is re-enabled by starting with it again.
        (Some(hook), Some(request)) => hook.registers(request) && hook.status(ctx.now) == WebhookStatus::Enabled,
        _ => false,
    };
    if current.is_some_and(|s| s.enabled) && unchanged {
        return af_error(StatusCode::BAD_REQUEST, "AF20024", "The subscription is already enabled. No property change.");
    }
    if let Some(request) = webhook {
        // The validation handshake needs the network: `manage` runs it without the lock, then
        // commits through `Inner::finish_start`. Nothing changes until it succeeds.
        let mut pending = StatusCode::ACCEPTED.into_response();
        pending.extensions_mut().insert(PendingStart { tkey: ctx.tkey.clone(), content_type, request });
        return pending;
    }
    let sub = tenant.subscriptions.entry(content_type.clone()).or_insert(Subscription {
        enabled: false,
        webhook: None,
        disabled_lists_left: 0,
        held_disabled: false,
    });
    sub.enabled = true;
    sub.webhook = None;
    sub.disabled_lists_left = disabled_after_start;
    json_response(StatusCode::OK, &start_response_json(&content_type, sub))
}

impl Inner {
    /// Second half of a start with a webhook: the validation POST (no lock held), then the
    /// subscription is enabled with the webhook, or the start fails with AF20021 and nothing
    /// changes.
    pub(super) async fn finish_start(&self, pending: PendingStart) -> Response {
        let validated = webhooks::validate(&pending.request.target()).await;
        if let Err(reason) = validated {
            tracing::debug!(address = pending.request.address(), reason = %reason, "m365 simulator: webhook validation failed");
            let address = pending.request.address();
            return af_error(
                StatusCode::BAD_REQUEST,
                "AF20021",
                &format!("The webhook endpoint {{{address}}} could not be validated. {reason}"),
            );
        }
        let mut guard = self.lock();
        let st = &mut *guard;
        st.seq += 1;
        let id = st.seq;
        let disabled_after_start = st.disabled_after_start;
        let Some(tenant) = st.tenants.get_mut(&pending.tkey) else {
            return af_error(StatusCode::BAD_REQUEST, "AF20011", "Specified tenant ID does not exist in the system or has been deleted.");
        };
        let sub = tenant.subscriptions.entry(pending.content_type.clone()).or_insert(Subscription {
            enabled: false,
            webhook: None,
            disabled_lists_left: 0,
            held_disabled: false,
        });
        sub.enabled = true;
        sub.webhook = Some(Webhook::new(id, pending.request));
        sub.disabled_lists_left = disabled_after_start;
        json_response(StatusCode::OK, &start_response_json(&pending.content_type, sub))
    }
}

pub(super) fn stop_subscription(st: &mut SimState, ctx: &Ctx<'_>) -> Response {
    let content_type = match content_type_param(ctx) {
        Ok(ct) => ct.to_owned(),
        Err(err) => return err.into_response(),
    };
    let sub = st.tenants.get_mut(&ctx.tkey).and_then(|t| t.subscriptions.get_mut(&content_type));
    match sub {
        None => af_error(StatusCode::BAD_REQUEST, "AF20022", "No subscription found for the specified content type."),
        Some(sub) => {
            sub.enabled = false;
            // Documented as 200 with no body.
            StatusCode::OK.into_response()
        }
    }
}

pub(super) fn list_subscriptions(st: &SimState, ctx: &Ctx<'_>) -> Response {
    let list: Vec<Value> =
        st.tenants.get(&ctx.tkey).map(|t| t.subscriptions.iter().map(|(ct, sub)| subscription_json(ct, sub)).collect()).unwrap_or_default();
    json_response(StatusCode::OK, &Value::Array(list))
}
