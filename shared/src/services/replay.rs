//! Replays behind the config API: `POST /v1/tenants/{t}/replays` checks the request, fixes the
//! policy definition and the interval, stores the replay as `queued` and puts a
//! [`PollJob::Replay`] on the poll-jobs queue; the audit-poller runs it
//! ([`crate::services::poll`]), since it holds the Microsoft clients and the tenant's
//! credentials. `GET` reads how far it got and what it found. Nothing here touches alerts,
//! deliveries or the tickets queue.

use super::admin::AdminError;
use super::tuning::TuningService;
use crate::access::{Access, Permission};
use crate::clock::Clock;
use crate::ids::{AuditStream, ContentType, MspId, TenantId};
use crate::messages::PollJob;
use crate::policy::{CompiledPolicy, GRAPH_ALERT_RECORD_TYPE};
use crate::ports::{MessageQueue, ReplayStore};
use crate::replay::{self, Replay};
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// The body of `POST /v1/tenants/{t}/replays`: a policy by id or given whole, and how many
/// hours back (1–168, default 168).
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    #[serde(default)]
    pub policy_id: Option<String>,
    #[serde(default)]
    pub policy: Option<Value>,
    #[serde(default)]
    pub hours: Option<u32>,
}

/// The replay use cases of the API.
pub struct ReplayService {
    /// Tenants, and the policy in force for an id.
    pub tuning: Arc<TuningService>,
    pub replays: Arc<dyn ReplayStore>,
    /// The poll-jobs queue.
    pub jobs: Arc<dyn MessageQueue>,
    pub clock: Arc<dyn Clock>,
}

/// How long an unfinished replay that has not moved blocks the next one of its tenant.
pub const STALLED_AFTER_MINUTES: i64 = 15;

fn invalid(detail: impl Into<String>) -> AdminError {
    AdminError::Invalid(detail.into())
}

impl ReplayService {
    /// Stores a queued replay and sends its job.
    ///
    /// # Errors
    /// Invalid request (both or neither policy form, hours out of range, a definition that does
    /// not parse or compile, a policy that reads no Management Activity content), NotFound for
    /// an unknown tenant or policy, Conflict while the tenant's previous replay is unfinished,
    /// Queue when the job cannot be sent.
    pub async fn start(&self, access: &Access, tenant_id: &TenantId, request: ReplayRequest) -> Result<Replay, AdminError> {
        let msp_id = access.permit(Permission::ConfigWrite)?;
        let hours = request.hours.unwrap_or(replay::HOURS_MAX);
        if !(1..=replay::HOURS_MAX).contains(&hours) {
            return Err(invalid(format!("hours: between 1 and {} (Microsoft lists content for 7 days)", replay::HOURS_MAX)));
        }
        let policy = match (request.policy_id, request.policy) {
            (Some(id), None) => Value::String(id),
            (None, Some(definition @ Value::Object(_))) => definition,
            (None, Some(_)) => return Err(invalid("policy: a policy definition (an object), as in POST /v1/policies/test")),
            _ => return Err(invalid("give either policy_id or policy (a definition), not both")),
        };
        let tenant =
            self.tuning.config.get_tenant(msp_id, tenant_id).await?.ok_or_else(|| AdminError::NotFound(format!("tenant {tenant_id}")))?;
        // Whole seconds: listing windows have one-second resolution.
        let now = self.clock.now();
        let now = now.duration_trunc(Duration::seconds(1)).unwrap_or(now);
        self.refuse_a_second_at_once(msp_id, tenant_id, now).await?;
        let definition = self.tuning.definition_for(msp_id, policy).await?;
        CompiledPolicy::compile(definition.clone()).map_err(invalid)?;
        let record_types = &definition.activity.record_types;
        if !record_types.is_empty() && record_types.iter().all(|t| *t == GRAPH_ALERT_RECORD_TYPE) {
            return Err(invalid(
                "policy: it looks only at record type 0 (Microsoft Graph alerts, Vigil's own events), which a replay of audit content never reads",
            ));
        }
        let content_types: Vec<ContentType> =
            tenant.streams.clone().unwrap_or_else(AuditStream::all).into_iter().filter_map(AuditStream::content_type).collect();
        if content_types.is_empty() {
            return Err(invalid("the tenant polls no Management Activity content type (PUT /v1/tenants/{id}/streams)"));
        }
        let mut notes = Vec::new();
        if !definition.scope.covers_tenant(tenant_id) {
            notes.push("the policy's scope leaves this tenant out: live, it would raise nothing here".to_owned());
        }
        let switched_off =
            self.tuning.policies.tenant_policies(msp_id, tenant_id).await?.iter().any(|(id, enabled)| *id == definition.id && !enabled);
        if switched_off {
            notes.push("the policy is switched off for this tenant: replayed as if it were on".to_owned());
        }
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|e| AdminError::Random(e.to_string()))?;
        let note = (!notes.is_empty()).then(|| notes.join("; "));
        let id = format!("rpl-{}", hex::encode(bytes));
        let replay = Replay::queued(id, msp_id.clone(), tenant_id.clone(), (*definition).clone(), hours, content_types, note, now);
        self.replays.put_replay(&replay).await?;
        self.replays.set_latest_replay(msp_id, tenant_id, &replay.id).await?;
        let job = PollJob::Replay { msp_id: msp_id.clone(), tenant_id: tenant_id.clone(), replay_id: replay.id.clone() };
        let body = serde_json::to_string(&job).unwrap_or_else(|_| unreachable!("jobs always serialise"));
        self.jobs.send_all(&[body]).await?;
        Ok(replay)
    }

    /// One replay per tenant at a time: each lists a week of content on the tenant's Microsoft
    /// quota, which live polling shares. A replay not finished but silent for
    /// [`STALLED_AFTER_MINUTES`] (its runs keep failing, its job was lost) no longer blocks.
    async fn refuse_a_second_at_once(&self, msp_id: &MspId, tenant_id: &TenantId, now: DateTime<Utc>) -> Result<(), AdminError> {
        let Some(latest) = self.replays.latest_replay(msp_id, tenant_id).await? else { return Ok(()) };
        let Some(replay) = self.replays.get_replay(msp_id, tenant_id, &latest).await? else { return Ok(()) };
        if !replay.status.is_final() && now - replay.updated_at < Duration::minutes(STALLED_AFTER_MINUTES) {
            let status = serde_json::to_value(replay.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            return Err(AdminError::Conflict(format!("an unfinished replay of this tenant ({latest}, {status})")));
        }
        Ok(())
    }

    /// One replay of the tenant.
    ///
    /// # Errors
    /// NotFound for an unknown tenant or replay (also another MSP's, or one that expired).
    pub async fn get(&self, access: &Access, tenant_id: &TenantId, replay_id: &str) -> Result<Replay, AdminError> {
        let msp_id = access.permit(Permission::ConfigRead)?;
        let not_found = || AdminError::NotFound(format!("replay {replay_id}"));
        if !replay::is_replay_id(replay_id) {
            return Err(not_found());
        }
        // A principal limited to some categories never sees would-be alerts of the others.
        self.replays
            .get_replay(msp_id, tenant_id, replay_id)
            .await?
            .filter(|replay| access.sees(replay.policy.category))
            .ok_or_else(not_found)
    }
}
