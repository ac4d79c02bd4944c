//! Shadow evaluation: a policy run over records without storing anything or ticketing, the one
//! engine behind the policy test bench (`POST /v1/policies/test`) and replays over a tenant's
//! last days of audit content ([`super::replay`]).
//!
//! Records are matched one by one with [`CompiledPolicy::evaluate_described`]; the matches then
//! become alerts under the policy's trigger replayed over the matches' own times
//! ([`alerts_from_matches`]): every-time policies alert per match, thresholds slide their window
//! over each key's matches, and unusual-activity keys learn their baseline hour by hour from
//! the earlier matches (a fresh state: nothing the live evaluator keeps is read or written).

use crate::alert::{Alert, Fact};
use crate::ids::{AlertId, MspId, RecordId, TenantId};
use crate::policy::condition::TenantContext;
use crate::policy::trigger::{BaselineState, Observation, ThresholdState, hour_of};
use crate::policy::{CompiledPolicy, CompiledTrigger, PolicyMatch, TenantScope};
use crate::tenant::Tenant;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeMap;

/// What a shadow run knows of the tenant (owned, so a scope can borrow it).
#[derive(Debug, Clone)]
pub struct ShadowTenant {
    pub tenant_id: TenantId,
    pub name: String,
    pub domains: Vec<String>,
    pub break_glass_accounts: Vec<String>,
}

impl ShadowTenant {
    /// A registered tenant.
    #[must_use]
    pub fn of(tenant: &Tenant) -> Self {
        Self {
            tenant_id: tenant.tenant_id.clone(),
            name: tenant.name.clone(),
            domains: tenant.domains.clone(),
            break_glass_accounts: tenant.break_glass_accounts.clone(),
        }
    }

    /// The stand-in for a test without a tenant: the nil GUID, no domains, no accounts.
    #[must_use]
    pub fn placeholder() -> Self {
        let tenant_id = TenantId::parse("00000000-0000-0000-0000-000000000000").unwrap_or_else(|_| unreachable!("the nil GUID parses"));
        Self { tenant_id, name: "Test tenant".to_owned(), domains: Vec::new(), break_glass_accounts: Vec::new() }
    }

    /// The evaluation scope for `msp_id`.
    #[must_use]
    pub fn scope<'a>(&'a self, msp_id: &'a MspId) -> TenantScope<'a> {
        TenantScope {
            msp_id,
            tenant_id: &self.tenant_id,
            tenant_name: &self.name,
            context: TenantContext { domains: &self.domains, break_glass_accounts: &self.break_glass_accounts },
        }
    }
}

/// Why an unusual-activity replay may find less than the live evaluator would.
pub const UNUSUAL_ACTIVITY_NOTE: &str =
    "unusual-activity policies are replayed over the given records' own timeline: a key alerts only after 7 days of its records";

/// The alerts `found` would raise under `compiled`'s trigger, replayed over the matches' own
/// times, ordered by alert id. Matches that resolve an alert raise nothing.
#[must_use]
pub fn alerts_from_matches(compiled: &CompiledPolicy, scope: &TenantScope<'_>, found: &[PolicyMatch], now: DateTime<Utc>) -> Vec<Alert> {
    let mut alerts: BTreeMap<AlertId, Alert> = BTreeMap::new();
    let mut add = |alert: Alert, records: &[(RecordId, DateTime<Utc>)]| {
        let entry = alerts.entry(alert.id.clone()).or_insert(alert);
        entry.absorb(records, &Default::default(), now);
    };
    match &compiled.trigger {
        CompiledTrigger::EveryTime => {
            for m in found.iter().filter(|m| !m.resolves) {
                add(compiled.alert_for(scope, m, m.event_time, now), &[(m.record_id.clone(), m.event_time)]);
            }
        }
        CompiledTrigger::Threshold { count, window, distinct, .. } => {
            let mut by_key: BTreeMap<String, Vec<&PolicyMatch>> = BTreeMap::new();
            for m in found {
                by_key.entry(m.trigger_key.clone().unwrap_or_default()).or_default().push(m);
            }
            for matches in by_key.values() {
                let observations: Vec<Observation> = matches
                    .iter()
                    .map(|m| Observation { record_id: m.record_id.clone(), at: m.event_time, distinct: m.distinct.clone() })
                    .collect();
                for firing in ThresholdState::default().observe(&observations, *count, *window, distinct.is_some()) {
                    if let Some(anchor) = matches.iter().find(|m| m.record_id == firing.anchor) {
                        add(compiled.alert_for(scope, anchor, firing.anchor_time, now), &firing.records);
                    }
                }
            }
        }
        CompiledTrigger::UnusualActivity { min_count, .. } => {
            // Hour by hour as the evaluator would have seen them: each key's baseline is what
            // the earlier matches taught it.
            let mut by_key: BTreeMap<String, BTreeMap<i64, Vec<&PolicyMatch>>> = BTreeMap::new();
            for m in found {
                by_key.entry(m.trigger_key.clone().unwrap_or_default()).or_default().entry(hour_of(m.event_time)).or_default().push(m);
            }
            for hours in by_key.values() {
                let mut baseline = BaselineState::default();
                for (hour, matches) in hours {
                    let times: Vec<DateTime<Utc>> = matches.iter().map(|m| m.event_time).collect();
                    baseline.apply(&format!("hour-{hour}"), &times);
                    let Some(unusual) = matches.first().and_then(|m| baseline.unusual_at(m.event_time, *min_count)) else { continue };
                    for m in matches {
                        let mut alert = compiled.alert_for(scope, m, m.event_time, now);
                        alert.facts.push(Fact::new("Trigger", unusual.describe()));
                        add(alert, &[(m.record_id.clone(), m.event_time)]);
                    }
                }
            }
        }
    }
    alerts.into_values().collect()
}

/// An alert as the test bench answers it.
#[must_use]
pub fn alert_summary(alert: &Alert) -> Value {
    serde_json::json!({"alert_id": alert.id, "title": alert.title, "name": alert.policy_name, "severity": alert.severity,
                       "group_key": alert.group_key, "hit_count": alert.hit_count, "first_seen": alert.first_seen,
                       "last_seen": alert.last_seen, "facts": alert.facts, "mode": alert.detail.mode})
}
