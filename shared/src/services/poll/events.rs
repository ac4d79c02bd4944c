//! Vigil's own events about a tenant's streams, emitted as synthetic audit records that
//! built-in policies turn into alerts: connection problems (and their resolution), and streams
//! whose coverage stopped moving (and moves again).

use super::{PollError, PollReport, PollService, to_json};
use crate::error::Classified;
use crate::ids::AuditStream;
use crate::messages::{AuditEventsMessage, VIGIL_EVENTS_PREFIX};
use crate::ports::StreamState;
use crate::tenant::Tenant;
use chrono::{DateTime, Utc};
use serde_json::json;

/// The operation names of Vigil's own connection events.
pub const CONNECTION_PROBLEM: &str = "Vigil.ConnectionProblem";
/// See [`CONNECTION_PROBLEM`].
pub const CONNECTION_RESTORED: &str = "Vigil.ConnectionRestored";
/// The operation names of Vigil's own stuck-stream events.
pub const STREAM_STUCK: &str = "Vigil.StreamStuck";
/// See [`STREAM_STUCK`].
pub const STREAM_MOVING: &str = "Vigil.StreamMoving";

impl PollService {
    /// Emits a connection event for the evaluator. Both events of one episode carry the
    /// episode's start as `CreationTime`, so they land on the same alert.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn emit_connection_event(
        &self,
        tenant: &Tenant,
        stream: AuditStream,
        ledger: &StreamState,
        operation: &str,
        episode_start: DateTime<Utc>,
        error: Option<&PollError>,
    ) -> Result<(), PollError> {
        let now = self.clock.now();
        // Streams that break together (revoked consent breaks them all) form one episode: the
        // event is keyed by the 15-minute window the episode began in, so they count once.
        let (episode_start, _) = crate::alert::AggregationWindow::minutes(15).containing(episode_start);
        let record = json!({
            "Id": format!("vigil-connection:{}:{}:{}", tenant.tenant_id, episode_start.timestamp(), if operation == CONNECTION_PROBLEM { "problem" } else { "restored" }),
            "RecordType": 0,
            "CreationTime": episode_start.format("%Y-%m-%dT%H:%M:%S").to_string(),
            "Operation": operation,
            "OrganizationId": tenant.tenant_id.as_str(),
            "OrganizationName": tenant.name,
            "UserId": "Vigil",
            "Workload": "Vigil",
            "Stream": stream.as_str(),
            "ObservedAt": now.to_rfc3339(),
            "ErrorClass": error.map(|e| e.class().as_str()),
            "ErrorMessage": error.map(PollError::summary).or_else(|| ledger.last_error.clone()),
            "ConsecutiveFailures": ledger.consecutive_failures,
        });
        self.send_synthetic(tenant, stream, &format!("{VIGIL_EVENTS_PREFIX}connection"), record).await
    }

    /// Watches a stream's coverage after a poll: one that has not moved for
    /// [`super::PollSettings::stuck_after`] raises "stream stuck" (unless a connection problem
    /// already speaks for it), and the first poll that moves it resolves that.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn watch_progress(
        &self,
        tenant: &Tenant,
        stream: AuditStream,
        ledger: &mut StreamState,
        succeeded: bool,
        covered_before: DateTime<Utc>,
        now: DateTime<Utc>,
        report: &mut PollReport,
    ) -> Result<(), PollError> {
        let moved = succeeded || ledger.covered_until > covered_before;
        if moved || ledger.advanced_at.is_none() {
            ledger.advanced_at = Some(now);
        }
        if moved {
            if let Some(since) = ledger.stuck_since {
                self.emit_stream_event(tenant, stream, ledger, STREAM_MOVING, since).await?;
                ledger.stuck_since = None;
                report.stuck_streams_moving += 1;
            }
            return Ok(());
        }
        let still_since = ledger.advanced_at.unwrap_or(now);
        if ledger.stuck_since.is_none() && ledger.problem_since.is_none() && now - still_since >= self.settings.stuck_after {
            self.emit_stream_event(tenant, stream, ledger, STREAM_STUCK, still_since).await?;
            ledger.stuck_since = Some(still_since);
            report.streams_stuck += 1;
            tracing::warn!(message = "A stream's coverage has not moved; alert raised.", covered_until = %ledger.covered_until, since = %still_since);
        }
        Ok(())
    }

    /// Emits a stuck-stream event for the evaluator. Both events of one episode carry the
    /// episode's start (when coverage last moved) as `CreationTime`, so they land on one alert.
    async fn emit_stream_event(
        &self,
        tenant: &Tenant,
        stream: AuditStream,
        ledger: &StreamState,
        operation: &str,
        episode_start: DateTime<Utc>,
    ) -> Result<(), PollError> {
        let kind = if operation == STREAM_STUCK { "stuck" } else { "moving" };
        let record = json!({
            "Id": format!("vigil-stream:{}:{}:{}:{kind}", tenant.tenant_id, stream.as_str(), episode_start.timestamp()),
            "RecordType": 0,
            "CreationTime": episode_start.format("%Y-%m-%dT%H:%M:%S").to_string(),
            "Operation": operation,
            "OrganizationId": tenant.tenant_id.as_str(),
            "OrganizationName": tenant.name,
            "UserId": "Vigil",
            "Workload": "Vigil",
            "Stream": stream.as_str(),
            "ObservedAt": self.clock.now().to_rfc3339(),
            "CoveredUntil": ledger.covered_until.to_rfc3339(),
            "ErrorMessage": ledger.last_error,
            "ConsecutiveFailures": ledger.consecutive_failures,
        });
        self.send_synthetic(tenant, stream, &format!("{VIGIL_EVENTS_PREFIX}stream"), record).await
    }

    /// Sends one of Vigil's own events about a tenant's stream to the evaluator, as if it were
    /// an audit record of that stream.
    async fn send_synthetic(
        &self,
        tenant: &Tenant,
        stream: AuditStream,
        content_id: &str,
        record: serde_json::Value,
    ) -> Result<(), PollError> {
        let message = AuditEventsMessage {
            msp_id: tenant.msp_id.clone(),
            tenant_id: tenant.tenant_id.clone(),
            stream,
            content_id: content_id.into(),
            records: vec![record],
        };
        self.events.send_all(&[to_json(&message)]).await?;
        Ok(())
    }
}
