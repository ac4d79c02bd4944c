//! Vigil's own events about a tenant's streams: connection problems (and their resolution),
//! emitted as synthetic audit records that built-in policies turn into alerts.

use super::{PollError, PollService, to_json};
use crate::error::Classified;
use crate::ids::AuditStream;
use crate::messages::AuditEventsMessage;
use crate::ports::StreamState;
use crate::tenant::Tenant;
use chrono::{DateTime, Utc};
use serde_json::json;

/// The operation names of Vigil's own connection events.
pub const CONNECTION_PROBLEM: &str = "Vigil.ConnectionProblem";
/// See [`CONNECTION_PROBLEM`].
pub const CONNECTION_RESTORED: &str = "Vigil.ConnectionRestored";

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
        let message = AuditEventsMessage {
            msp_id: tenant.msp_id.clone(),
            tenant_id: tenant.tenant_id.clone(),
            stream,
            content_id: "vigil-connection".into(),
            records: vec![record],
        };
        self.events.send_all(&[to_json(&message)]).await?;
        Ok(())
    }
}
