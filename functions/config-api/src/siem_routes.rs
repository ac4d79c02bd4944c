//! `GET /v1/siem/alerts?since=&limit=&from=&to=`: the SIEM feed — every alert created or changed after
//! the cursor, in the order of the changes, at least once, with a cursor that survives restarts
//! (it is a position in the alerts' change index, not server state). See
//! [`vigil::services::alert_feed`] for the guarantee and the overlap a caught-up feed re-reads.

use crate::AppState;
use crate::extract::Caller;
use crate::problem::Problem;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vigil::alert::Alert;
use vigil::changes::ChangeKey;
use vigil::services::alert_feed::{CursorUse, FEED_MAX, OVERLAP, Position, decode_cursor};

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/siem/alerts", get(siem_alerts))
}

/// The feed's query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct FeedQuery {
    /// The `next_cursor` of the previous poll; absent: from the oldest retained alert.
    since: Option<String>,
    /// 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
    /// For pollers that read time windows: changes stored at or after this time (when there
    /// is no `since`; `since` wins, so a window can be paged with it).
    from: Option<DateTime<Utc>>,
    /// For pollers that read time windows: changes stored before this time.
    to: Option<DateTime<Utc>>,
}

/// An alert as the feed returns it (schema `infra/schemas/siem-alert.schema.json`): the alert
/// and when its last change was stored. A change may come more than once: deduplicate on `id`
/// and `version`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct FeedAlert {
    #[serde(flatten)]
    alert: Alert,
    changed_at: DateTime<Utc>,
}

/// One poll.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct FeedResponse {
    alerts: Vec<FeedAlert>,
    /// Poll with this next time (also when `alerts` is empty).
    next_cursor: String,
    /// More changes are waiting: poll again now rather than at the next interval.
    has_more: bool,
}

/// The SIEM feed: alerts created or changed after the cursor, in the order of the changes, at
/// least once (deduplicate on `id` + `version`).
#[utoipa::path(get, path = "/v1/siem/alerts", tag = "alerts", params(FeedQuery), responses((status = 200, body = FeedResponse)))]
pub(crate) async fn siem_alerts(
    State(state): State<AppState>,
    Caller(access): Caller,
    query: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<FeedResponse>, Problem> {
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=FEED_MAX).contains(&limit) {
        return Err(Problem::bad_request(format!("limit: 1 to {FEED_MAX}")));
    }
    let position = match &query.since {
        Some(cursor) => decode_cursor(cursor, CursorUse::Feed, access.msp_id()).map_err(|e| Problem::bad_request(format!("since: {e}")))?,
        None => query.from.map(|from| Position::after(ChangeKey::start_of(from))).unwrap_or_default(),
    };
    let page = state.tuning.alert_changes(&access, position, query.to, limit, OVERLAP).await?;
    Ok(Json(FeedResponse {
        alerts: page.alerts.into_iter().map(|entry| FeedAlert { changed_at: entry.key.at(), alert: entry.alert }).collect(),
        next_cursor: page.next_cursor,
        has_more: page.more,
    }))
}
