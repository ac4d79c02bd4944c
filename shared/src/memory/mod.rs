//! In-memory adapters for every port, for fast unit tests. They implement the same semantics
//! as the AWS adapters (conditional writes, leases, idempotent hits) and pass the same contract
//! suites; they are never the only proof. The in-memory PSA is in [`tickets`].

mod billing;
mod channels;
mod delegated;
mod licences;
mod offboarding;
mod onboarding;
mod relationships;
mod selfmon;
pub use billing::{MemoryBillingStore, MemoryBillingTarget, MemoryBillingTargets, MemoryMailboxDirectory};
mod replays;
mod tickets;
pub use channels::{ChannelFault, MemoryChannel};
pub use delegated::MemoryDirectory;
pub use licences::{MemoryLicenceSource, MemoryLicenceStore};
pub use offboarding::{MemoryOffboardingStore, MemoryTenantData};
pub use onboarding::{MemoryAccessProbe, MemoryOnboardingStore};
pub use relationships::MemoryRelationshipSource;
pub use replays::MemoryReplayStore;
pub use selfmon::MemoryCredentialsEpisodes;
pub use tickets::*;

use crate::access::{AuditEntry, AuditPage, Principal, StoredToken};
use crate::alert::{Alert, AlertHits};
use crate::changes::{self, ChangeKey, ChangePage, ChangeQuery, ChangedAlert};
use crate::destination::Destination;
use crate::error::{QueueError, SecretError, SourceError, StoreError};
use crate::ids::{AlertId, ContentType, DestinationId, MspId, PolicyId, PrincipalId, RecordId, TenantId};
use crate::policy::trigger::TriggerState;
use crate::ports::{
    AlertPage, AlertStore, AuditLog, AuditSource, ClaimOutcome, ConfigStore, ContentBlob, DestinationStore, IngestStateStore,
    ListedSubscription, MessageQueue, PolicyStore, PrincipalStore, SecretName, SecretStore, SecurityAlertSource, StoredPolicy, StreamKey,
    StreamState, SubscriptionManager, Suppression, TenantChange, TimeWindow, TriggerKey, TriggerStateStore, WebhookRegistration,
    WebhookState,
};
use crate::relationships::{AdminRelationship, PartnerActivity, RelationshipRefreshState};
use crate::secret::SecretString;
use crate::tenant::{M365AppCredentials, Msp, Tenant, TokenHash};
use crate::ticket::{Delivery, TicketRef};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[async_trait]
impl PrincipalStore for MemoryConfigStore {
    async fn put_principal(&self, principal: &Principal) -> Result<(), StoreError> {
        lock(&self.principals).insert((principal.msp_id.clone(), principal.principal_id.clone()), principal.clone());
        Ok(())
    }
    async fn get_principal(&self, msp_id: &MspId, id: &PrincipalId) -> Result<Option<Principal>, StoreError> {
        Ok(lock(&self.principals).get(&(msp_id.clone(), id.clone())).cloned())
    }
    async fn list_principals(&self, msp_id: &MspId) -> Result<Vec<Principal>, StoreError> {
        Ok(lock(&self.principals).values().filter(|p| p.msp_id == *msp_id).cloned().collect())
    }
    async fn delete_principal(&self, msp_id: &MspId, id: &PrincipalId) -> Result<bool, StoreError> {
        Ok(lock(&self.principals).remove(&(msp_id.clone(), id.clone())).is_some())
    }
    async fn put_token(&self, token: &StoredToken) -> Result<(), StoreError> {
        let mut tokens = lock(&self.tokens);
        match tokens.iter_mut().find(|t| t.msp_id == token.msp_id && t.hash == token.hash) {
            Some(stored) => *stored = token.clone(),
            None => tokens.push(token.clone()),
        }
        Ok(())
    }
    async fn token(&self, msp_id: &MspId, hash: &TokenHash) -> Result<Option<StoredToken>, StoreError> {
        Ok(lock(&self.tokens).iter().find(|t| t.msp_id == *msp_id && t.hash == *hash).cloned())
    }
    async fn tokens(&self, msp_id: &MspId) -> Result<Vec<StoredToken>, StoreError> {
        let mut tokens: Vec<StoredToken> = lock(&self.tokens).iter().filter(|t| t.msp_id == *msp_id).cloned().collect();
        tokens.sort_by_key(|t| t.created_at);
        Ok(tokens)
    }
    async fn delete_token(&self, msp_id: &MspId, hash: &TokenHash) -> Result<(), StoreError> {
        lock(&self.tokens).retain(|t| !(t.msp_id == *msp_id && t.hash == *hash));
        Ok(())
    }
}

#[async_trait]
impl AuditLog for MemoryConfigStore {
    async fn append(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        lock(&self.audit).insert((entry.msp_id.clone(), entry.entry_id.clone()), entry.clone());
        Ok(())
    }
    async fn entries(&self, msp_id: &MspId, limit: usize, before: Option<&str>) -> Result<AuditPage, StoreError> {
        let audit = lock(&self.audit);
        let mut entries: Vec<AuditEntry> = audit
            .range((msp_id.clone(), String::new())..)
            .take_while(|((msp, _), _)| msp == msp_id)
            .filter(|((_, id), _)| before.is_none_or(|b| id.as_str() < b))
            .map(|(_, entry)| entry.clone())
            .collect();
        entries.reverse();
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next = if more { entries.last().map(|e| e.entry_id.clone()) } else { None };
        Ok(AuditPage { entries, next })
    }
}

/// (MSP, tenant, policy, UTC day): whose tickets count against a daily limit.
type DailyKey = (MspId, TenantId, PolicyId, chrono::NaiveDate);

/// [`ConfigStore`] in memory.
#[derive(Debug, Default)]
pub struct MemoryConfigStore {
    msps: Mutex<HashMap<MspId, Msp>>,
    /// Tokens in the order they were first stored.
    tokens: Mutex<Vec<StoredToken>>,
    principals: Mutex<BTreeMap<(MspId, PrincipalId), Principal>>,
    audit: Mutex<BTreeMap<(MspId, String), AuditEntry>>,
    relationships: Mutex<BTreeMap<MspId, Vec<AdminRelationship>>>,
    activities: Mutex<BTreeMap<(MspId, TenantId), PartnerActivity>>,
    refreshes: Mutex<BTreeMap<MspId, RelationshipRefreshState>>,
    findings: Mutex<BTreeMap<(MspId, String), Vec<crate::relationships::findings::RaisedFinding>>>,
    partner_actions: Mutex<BTreeMap<(MspId, TenantId), DateTime<Utc>>>,
    previews: Mutex<BTreeMap<(MspId, String), crate::relationships::removal::RemovalPreview>>,
    removals: Mutex<BTreeMap<(MspId, String), crate::relationships::removal::Removal>>,
    tenants: Mutex<BTreeMap<(MspId, TenantId), Tenant>>,
    destinations: Mutex<BTreeMap<(MspId, DestinationId), Destination>>,
}

#[async_trait]
impl ConfigStore for MemoryConfigStore {
    async fn create_msp(&self, msp: &Msp) -> Result<bool, StoreError> {
        let mut msps = lock(&self.msps);
        if msps.contains_key(&msp.id) {
            return Ok(false);
        }
        msps.insert(msp.id.clone(), msp.clone());
        Ok(true)
    }
    async fn get_msp(&self, msp_id: &MspId) -> Result<Option<Msp>, StoreError> {
        Ok(lock(&self.msps).get(msp_id).cloned())
    }
    async fn put_msp(&self, msp: &Msp) -> Result<(), StoreError> {
        lock(&self.msps).insert(msp.id.clone(), msp.clone());
        Ok(())
    }
    async fn create_tenant(&self, tenant: &Tenant) -> Result<bool, StoreError> {
        let mut tenants = lock(&self.tenants);
        let key = (tenant.msp_id.clone(), tenant.tenant_id.clone());
        if tenants.contains_key(&key) {
            return Ok(false);
        }
        tenants.insert(key, tenant.clone());
        Ok(true)
    }
    async fn put_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        lock(&self.tenants).insert((tenant.msp_id.clone(), tenant.tenant_id.clone()), tenant.clone());
        Ok(())
    }
    async fn get_tenant(&self, msp_id: &MspId, tenant_id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        Ok(lock(&self.tenants).get(&(msp_id.clone(), tenant_id.clone())).cloned())
    }
    async fn update_tenant(&self, msp_id: &MspId, tenant_id: &TenantId, change: &TenantChange) -> Result<Option<Tenant>, StoreError> {
        let mut tenants = lock(&self.tenants);
        let Some(tenant) = tenants.get_mut(&(msp_id.clone(), tenant_id.clone())) else { return Ok(None) };
        change.apply(tenant);
        Ok(Some(tenant.clone()))
    }
    async fn list_tenants(&self, msp_id: &MspId) -> Result<Vec<Tenant>, StoreError> {
        Ok(lock(&self.tenants).values().filter(|t| &t.msp_id == msp_id).cloned().collect())
    }
    async fn tenants_page(&self, msp_id: &MspId, limit: usize, after: Option<&TenantId>) -> Result<crate::ports::TenantPage, StoreError> {
        let tenants = lock(&self.tenants);
        let mut page: Vec<Tenant> = tenants
            .iter()
            .filter(|((msp, id), _)| msp == msp_id && after.is_none_or(|after| id > after))
            .map(|(_, t)| t.clone())
            .take(limit.max(1) + 1)
            .collect();
        let next = if page.len() > limit.max(1) {
            page.truncate(limit.max(1));
            page.last().map(|t| t.tenant_id.clone())
        } else {
            None
        };
        Ok(crate::ports::TenantPage { tenants: page, next })
    }
    async fn list_all_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        Ok(lock(&self.tenants).values().cloned().collect())
    }
}

#[async_trait]
impl DestinationStore for MemoryConfigStore {
    async fn put_destination(&self, destination: &Destination) -> Result<(), StoreError> {
        lock(&self.destinations).insert((destination.msp_id.clone(), destination.id.clone()), destination.clone());
        Ok(())
    }
    async fn get_destination(&self, msp_id: &MspId, id: &DestinationId) -> Result<Option<Destination>, StoreError> {
        Ok(lock(&self.destinations).get(&(msp_id.clone(), id.clone())).cloned())
    }
    async fn list_destinations(&self, msp_id: &MspId) -> Result<Vec<Destination>, StoreError> {
        Ok(lock(&self.destinations).values().filter(|d| &d.msp_id == msp_id).cloned().collect())
    }
    async fn delete_destination(&self, msp_id: &MspId, id: &DestinationId) -> Result<bool, StoreError> {
        Ok(lock(&self.destinations).remove(&(msp_id.clone(), id.clone())).is_some())
    }
    async fn list_all_destinations(&self) -> Result<Vec<Destination>, StoreError> {
        Ok(lock(&self.destinations).values().cloned().collect())
    }
}

#[derive(Debug, Clone)]
enum Claim {
    Pending { lease_until: DateTime<Utc> },
    Done,
}

/// [`IngestStateStore`] in memory.
#[derive(Debug, Default)]
pub struct MemoryIngestState {
    streams: Mutex<HashMap<StreamKey, StreamState>>,
    claims: Mutex<HashMap<(MspId, TenantId, RecordId), Claim>>,
    blobs: Mutex<HashSet<(MspId, TenantId, String)>>,
}

#[async_trait]
impl IngestStateStore for MemoryIngestState {
    async fn get_stream(&self, stream: &StreamKey) -> Result<Option<StreamState>, StoreError> {
        Ok(lock(&self.streams).get(stream).cloned())
    }
    async fn put_stream(&self, stream: &StreamKey, state: &StreamState) -> Result<(), StoreError> {
        lock(&self.streams).insert(stream.clone(), state.clone());
        Ok(())
    }
    async fn claim_record(
        &self,
        msp_id: &MspId,
        tenant_id: &TenantId,
        record_id: &RecordId,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut claims = lock(&self.claims);
        let key = (msp_id.clone(), tenant_id.clone(), record_id.clone());
        match claims.get(&key) {
            Some(Claim::Done) => Ok(ClaimOutcome::AlreadyProcessed),
            Some(Claim::Pending { lease_until }) if *lease_until > now => Ok(ClaimOutcome::InFlight),
            _ => {
                claims.insert(key, Claim::Pending { lease_until: now + lease });
                Ok(ClaimOutcome::Claimed)
            }
        }
    }
    async fn complete_records(
        &self,
        msp_id: &MspId,
        tenant_id: &TenantId,
        record_ids: &[RecordId],
        _now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut claims = lock(&self.claims);
        for id in record_ids {
            claims.insert((msp_id.clone(), tenant_id.clone(), id.clone()), Claim::Done);
        }
        Ok(())
    }
    async fn blob_done(&self, msp_id: &MspId, tenant_id: &TenantId, content_id: &str) -> Result<bool, StoreError> {
        Ok(lock(&self.blobs).contains(&(msp_id.clone(), tenant_id.clone(), content_id.to_owned())))
    }
    async fn mark_blob_done(&self, msp_id: &MspId, tenant_id: &TenantId, content_id: &str, _now: DateTime<Utc>) -> Result<(), StoreError> {
        lock(&self.blobs).insert((msp_id.clone(), tenant_id.clone(), content_id.to_owned()));
        Ok(())
    }
}

/// [`AlertStore`] in memory.
#[derive(Debug, Default)]
pub struct MemoryAlertStore {
    alerts: Mutex<BTreeMap<(MspId, AlertId), Alert>>,
    /// Each alert's change key (its latest write), as the DynamoDB index keeps it.
    changed: Mutex<HashMap<(MspId, AlertId), ChangeKey>>,
    counted: Mutex<HashSet<(MspId, AlertId, RecordId)>>,
    deliveries: Mutex<BTreeMap<(MspId, AlertId, DestinationId), Delivery>>,
    daily: Mutex<HashMap<DailyKey, HashSet<AlertId>>>,
    daily_messages: Mutex<HashMap<(DailyKey, DestinationId), HashSet<String>>>,
}

impl MemoryAlertStore {
    /// Every stored alert, of every MSP (for tests).
    #[must_use]
    pub fn all(&self) -> Vec<Alert> {
        lock(&self.alerts).values().cloned().collect()
    }

    /// Stamps a write of the alert: the wall clock, always after the alert's previous key.
    fn stamp(&self, msp_id: &MspId, alert_id: &AlertId) {
        let mut changed = lock(&self.changed);
        let key = (msp_id.clone(), alert_id.clone());
        let next = changes::stamp(Utc::now(), alert_id, changed.get(&key));
        changed.insert(key, next);
    }
}

#[async_trait]
impl AlertStore for MemoryAlertStore {
    async fn record_hits(&self, hits: &AlertHits, now: DateTime<Utc>) -> Result<Alert, StoreError> {
        let mut alerts = lock(&self.alerts);
        let mut counted = lock(&self.counted);
        let key = (hits.alert.msp_id.clone(), hits.alert.id.clone());
        let mut alert = alerts.get(&key).cloned().unwrap_or_else(|| hits.alert.clone());
        let fresh: Vec<_> =
            hits.records.iter().filter(|(id, _)| !counted.contains(&(key.0.clone(), key.1.clone(), id.clone()))).cloned().collect();
        let mut seen = HashSet::new();
        let fresh: Vec<_> = fresh.into_iter().filter(|(id, _)| seen.insert(id.clone())).collect();
        if alert.absorb(&fresh, &hits.details, now) {
            alert.version += 1;
            for (id, _) in &fresh {
                counted.insert((key.0.clone(), key.1.clone(), id.clone()));
            }
            alerts.insert(key, alert.clone());
            self.stamp(&alert.msp_id, &alert.id);
        }
        Ok(alert)
    }
    async fn get_alert(&self, msp_id: &MspId, alert_id: &AlertId) -> Result<Option<Alert>, StoreError> {
        Ok(lock(&self.alerts).get(&(msp_id.clone(), alert_id.clone())).cloned())
    }
    async fn resolve_alert(&self, msp_id: &MspId, alert_id: &AlertId, at: DateTime<Utc>) -> Result<Option<Alert>, StoreError> {
        let mut alerts = lock(&self.alerts);
        let Some(alert) = alerts.get_mut(&(msp_id.clone(), alert_id.clone())) else { return Ok(None) };
        if alert.resolve(at) {
            alert.version += 1;
            self.stamp(msp_id, alert_id);
        }
        Ok(Some(alert.clone()))
    }
    async fn update_alert(&self, alert: &Alert) -> Result<(), StoreError> {
        let mut alerts = lock(&self.alerts);
        let key = (alert.msp_id.clone(), alert.id.clone());
        match alerts.get(&key) {
            Some(stored) if stored.version + 1 == alert.version => {
                alerts.insert(key, alert.clone());
                self.stamp(&alert.msp_id, &alert.id);
                Ok(())
            }
            _ => Err(StoreError::Conflict { what: format!("alert {}", alert.id) }),
        }
    }
    async fn list_alerts(&self, msp_id: &MspId, limit: usize, after: Option<&str>) -> Result<AlertPage, StoreError> {
        let alerts = lock(&self.alerts);
        let mut matching = alerts.values().filter(|a| &a.msp_id == msp_id && after.is_none_or(|after| a.id.as_str() > after));
        let page: Vec<Alert> = matching.by_ref().take(limit.max(1)).cloned().collect();
        let next = if matching.next().is_some() { page.last().map(|a| a.id.to_string()) } else { None };
        Ok(AlertPage { alerts: page, next })
    }
    async fn alerts_by_change(&self, msp_id: &MspId, query: &ChangeQuery) -> Result<ChangePage, StoreError> {
        let alerts = lock(&self.alerts);
        let changed = lock(&self.changed);
        let since = query.changed_since.map(changes::time_bound);
        let before = query.changed_before.map(changes::time_bound);
        let mut in_range: Vec<(&ChangeKey, &Alert)> = changed
            .iter()
            .filter(|((msp, _), _)| msp == msp_id)
            .filter(|(_, key)| since.as_deref().is_none_or(|s| key.as_str() >= s) && before.as_deref().is_none_or(|b| key.as_str() < b))
            .filter(|(_, key)| query.after.as_ref().is_none_or(|after| if query.newest_first { *key < after } else { *key > after }))
            .filter_map(|(id, key)| alerts.get(id).map(|alert| (key, alert)))
            // As DynamoDB's tenant index: another tenant's entries are not looked at at all.
            .filter(|(_, alert)| query.selection.tenant.as_ref().is_none_or(|tenant| *tenant == alert.tenant_id))
            .collect();
        in_range.sort_by(|a, b| if query.newest_first { b.0.cmp(a.0) } else { a.0.cmp(b.0) });
        let read = query.read.clamp(1, changes::MAX_READ);
        let more = in_range.len() > read;
        in_range.truncate(read);
        Ok(ChangePage {
            last_read: in_range.last().map(|(key, _)| (*key).clone()),
            read: in_range.len(),
            alerts: in_range
                .into_iter()
                .filter(|(_, alert)| query.selection.accepts(alert))
                .map(|(key, alert)| ChangedAlert { key: key.clone(), alert: alert.clone() })
                .collect(),
            more,
        })
    }
    async fn take_daily_ticket(&self, alert: &Alert, day: chrono::NaiveDate, limit: u32) -> Result<bool, StoreError> {
        let mut daily = lock(&self.daily);
        let held = daily.entry((alert.msp_id.clone(), alert.tenant_id.clone(), alert.policy_id.clone(), day)).or_default();
        if held.contains(&alert.id) {
            return Ok(true);
        }
        if held.len() < limit as usize {
            held.insert(alert.id.clone());
            return Ok(true);
        }
        Ok(false)
    }
    async fn take_daily_message(
        &self,
        alert: &Alert,
        destination: &DestinationId,
        day: chrono::NaiveDate,
        limit: u32,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        let mut daily = lock(&self.daily_messages);
        let key = ((alert.msp_id.clone(), alert.tenant_id.clone(), alert.policy_id.clone(), day), destination.clone());
        let held = daily.entry(key).or_default();
        if held.contains(message_id) {
            return Ok(true);
        }
        if held.len() < limit as usize {
            held.insert(message_id.to_owned());
            return Ok(true);
        }
        Ok(false)
    }
    async fn get_delivery(&self, msp_id: &MspId, alert_id: &AlertId, destination: &DestinationId) -> Result<Option<Delivery>, StoreError> {
        Ok(lock(&self.deliveries).get(&(msp_id.clone(), alert_id.clone(), destination.clone())).cloned())
    }
    async fn list_deliveries(&self, msp_id: &MspId, alert_id: &AlertId) -> Result<Vec<Delivery>, StoreError> {
        Ok(lock(&self.deliveries).values().filter(|d| &d.msp_id == msp_id && &d.alert_id == alert_id).cloned().collect())
    }
    async fn list_open_tickets(&self, msp_id: &MspId, destination: &DestinationId) -> Result<Vec<(AlertId, TicketRef)>, StoreError> {
        Ok(lock(&self.deliveries)
            .values()
            .filter(|d| &d.msp_id == msp_id && &d.destination == destination && d.has_open_ticket())
            .filter_map(|d| d.ticket.clone().map(|t| (d.alert_id.clone(), t)))
            .collect())
    }
    async fn list_held_deliveries(&self, msp_id: &MspId, destination: &DestinationId) -> Result<Vec<AlertId>, StoreError> {
        Ok(lock(&self.deliveries)
            .values()
            .filter(|d| &d.msp_id == msp_id && &d.destination == destination && d.held_unlinked)
            .map(|d| d.alert_id.clone())
            .collect())
    }
    async fn save_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let mut deliveries = lock(&self.deliveries);
        let key = (delivery.msp_id.clone(), delivery.alert_id.clone(), delivery.destination.clone());
        let stored_version = deliveries.get(&key).map_or(0, |d| d.version);
        if delivery.version != stored_version + 1 {
            return Err(StoreError::Conflict { what: format!("delivery {}", delivery.alert_id) });
        }
        deliveries.insert(key, delivery.clone());
        Ok(())
    }
}

/// [`SecretStore`] in memory; writes fail on demand.
#[derive(Debug, Default)]
pub struct MemorySecretStore {
    secrets: Mutex<HashMap<SecretName, SecretString>>,
    failing_puts: Mutex<u32>,
}

impl MemorySecretStore {
    /// The next `times` writes fail (as Secrets Manager being unreachable), changing nothing.
    pub fn fail_next_puts(&self, times: u32) {
        *lock(&self.failing_puts) = times;
    }
}

#[async_trait]
impl SecretStore for MemorySecretStore {
    async fn put_secret(&self, name: &SecretName, value: &SecretString) -> Result<(), SecretError> {
        {
            let mut failing = lock(&self.failing_puts);
            if *failing > 0 {
                *failing -= 1;
                return Err(SecretError::Unavailable(format!("injected failure writing {}", name.as_str())));
            }
        }
        lock(&self.secrets).insert(name.clone(), value.clone());
        Ok(())
    }
    async fn get_secret(&self, name: &SecretName) -> Result<Option<SecretString>, SecretError> {
        Ok(lock(&self.secrets).get(name).cloned())
    }
    async fn delete_secret(&self, name: &SecretName) -> Result<(), SecretError> {
        lock(&self.secrets).remove(name);
        Ok(())
    }
}

/// [`crate::ports::MailSender`] in memory: keeps what was sent; fails on demand.
#[derive(Debug, Default)]
pub struct MemoryMailSender {
    sent: Mutex<Vec<crate::mail::OutgoingMail>>,
    failures: Mutex<Vec<crate::mail::MailError>>,
}

impl MemoryMailSender {
    /// Every mail sent so far.
    #[must_use]
    pub fn sent(&self) -> Vec<crate::mail::OutgoingMail> {
        lock(&self.sent).clone()
    }

    /// The next send fails with `error` (nothing sent).
    pub fn fail_next(&self, error: crate::mail::MailError) {
        lock(&self.failures).push(error);
    }
}

#[async_trait]
impl crate::ports::MailSender for MemoryMailSender {
    async fn send(&self, mail: &crate::mail::OutgoingMail) -> Result<String, crate::mail::MailError> {
        if let Some(error) = lock(&self.failures).pop() {
            return Err(error);
        }
        let mut sent = lock(&self.sent);
        sent.push(mail.clone());
        Ok(format!("memory-{}", sent.len()))
    }
}

/// [`MessageQueue`] in memory: keeps what was sent.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    sent: Mutex<Vec<String>>,
    delayed: Mutex<Vec<(String, std::time::Duration)>>,
}

impl MemoryQueue {
    /// Takes every message sent so far without a delay.
    pub fn drain(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.sent))
    }

    /// Takes every message sent so far with a delay, and its delay.
    pub fn drain_delayed(&self) -> Vec<(String, std::time::Duration)> {
        std::mem::take(&mut *lock(&self.delayed))
    }
}

#[async_trait]
impl MessageQueue for MemoryQueue {
    async fn send_all(&self, bodies: &[String]) -> Result<(), QueueError> {
        lock(&self.sent).extend(bodies.iter().cloned());
        Ok(())
    }

    async fn send_delayed(&self, bodies: &[String], delay: std::time::Duration) -> Result<(), QueueError> {
        let delay = delay.min(crate::ports::MAX_MESSAGE_DELAY);
        lock(&self.delayed).extend(bodies.iter().map(|b| (b.clone(), delay)));
        Ok(())
    }
}

/// How [`MemoryAuditSource`] should fail, until told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceFailure {
    #[default]
    None,
    /// Consent revoked: AADSTS700016.
    AccessRefused,
    /// Microsoft is down: 503.
    Unavailable,
}

/// [`AuditSource`] in memory: blobs added by tests, per tenant and content type.
#[derive(Debug, Default)]
pub struct MemoryAuditSource {
    blobs: Mutex<Vec<(TenantId, ContentType, ContentBlob, String)>>,
    fetches: Mutex<u64>,
    failure: Mutex<SourceFailure>,
    windows: Mutex<Vec<TimeWindow>>,
    registrations: Mutex<Vec<(ContentType, String, String)>>,
    /// What `subscriptions/list` answers, per tenant: kept by starts, changed by tests.
    subscriptions: Mutex<BTreeMap<(TenantId, ContentType), ListedSubscription>>,
    /// Subscriptions a tenant admin keeps disabled: starting them fails with AF20023.
    held_disabled: Mutex<HashSet<(TenantId, ContentType)>>,
    stopped: Mutex<Vec<ContentType>>,
}

impl MemoryAuditSource {
    /// Makes every call fail this way (or succeed again with [`SourceFailure::None`]).
    pub fn set_failure(&self, failure: SourceFailure) {
        *lock(&self.failure) = failure;
    }

    /// Stops a tenant's subscription to `content_type`, as a tenant admin would (it stays
    /// listed, disabled).
    pub fn stop_subscription(&self, tenant_id: &TenantId, content_type: ContentType) {
        let mut subscriptions = lock(&self.subscriptions);
        let entry = subscriptions.entry((tenant_id.clone(), content_type)).or_insert(ListedSubscription {
            content_type,
            enabled: false,
            webhook: None,
        });
        entry.enabled = false;
    }

    /// Keeps a tenant's subscription disabled (`true`: as a tenant admin who turned it off, so
    /// that starting it fails with AF20023) or lets it be started again (`false`).
    pub fn hold_subscription_disabled(&self, tenant_id: &TenantId, content_type: ContentType, held: bool) {
        if held {
            self.stop_subscription(tenant_id, content_type);
            lock(&self.held_disabled).insert((tenant_id.clone(), content_type));
        } else {
            lock(&self.held_disabled).remove(&(tenant_id.clone(), content_type));
        }
    }

    fn held_error(&self, tenant_id: &TenantId, content_type: ContentType) -> Result<(), SourceError> {
        if lock(&self.held_disabled).contains(&(tenant_id.clone(), content_type)) {
            return Err(SourceError::Rejected {
                code: "AF20023".into(),
                message: "The subscription was disabled by the tenant administrator or service administrator.".into(),
            });
        }
        Ok(())
    }

    /// Sets the state of the webhook on a tenant's subscription (Microsoft disabling it).
    pub fn set_webhook_state(&self, tenant_id: &TenantId, content_type: ContentType, state: Option<WebhookState>) {
        if let Some(entry) = lock(&self.subscriptions).get_mut(&(tenant_id.clone(), content_type)) {
            entry.webhook = state;
        }
    }

    /// Every (content type, webhook address, authId) registered so far.
    pub fn registrations(&self) -> Vec<(ContentType, String, String)> {
        lock(&self.registrations).clone()
    }

    /// Every content type whose subscription was stopped so far (repeats included).
    pub fn stopped(&self) -> Vec<ContentType> {
        lock(&self.stopped).clone()
    }

    /// Every listing window asked for so far.
    pub fn windows(&self) -> Vec<TimeWindow> {
        lock(&self.windows).clone()
    }

    fn check_failure(&self) -> Result<(), SourceError> {
        match *lock(&self.failure) {
            SourceFailure::None => Ok(()),
            SourceFailure::AccessRefused => {
                Err(SourceError::AccessRefused { code: "AADSTS700016".into(), message: "unauthorized_client".into() })
            }
            SourceFailure::Unavailable => Err(SourceError::Unavailable("503".into())),
        }
    }
}

impl MemoryAuditSource {
    /// Publishes a blob with the given body, created at `at`.
    pub fn publish(&self, tenant_id: &TenantId, content_type: ContentType, at: DateTime<Utc>, body: String) -> String {
        let mut blobs = lock(&self.blobs);
        let content_id = format!("blob-{}", blobs.len() + 1);
        let blob = ContentBlob { content_id: content_id.clone(), content_uri: format!("memory://{content_id}"), content_created: at };
        blobs.push((tenant_id.clone(), content_type, blob, body));
        content_id
    }

    /// How many blobs were fetched.
    pub fn fetch_count(&self) -> u64 {
        *lock(&self.fetches)
    }
}

#[async_trait]
impl AuditSource for MemoryAuditSource {
    async fn list_content(
        &self,
        tenant_id: &TenantId,
        _credentials: &M365AppCredentials,
        content_type: ContentType,
        window: TimeWindow,
    ) -> Result<Vec<ContentBlob>, SourceError> {
        self.check_failure()?;
        lock(&self.windows).push(window);
        // The same window rules as the real API.
        // Microsoft documents "at most 24 hours" but refuses 24 hours exactly: AF20055.
        if window.end - window.start >= Duration::hours(24) {
            return Err(SourceError::WindowRefused {
                code: "AF20055".into(),
                message:
                    "Start time and end time must both be specified (or both omitted) and must be less than or equal to 24 hours apart"
                        .into(),
            });
        }
        if window.end <= window.start || window.start < Utc::now() - Duration::days(7) - Duration::hours(1) {
            return Err(SourceError::WindowRefused { code: "AF20030".into(), message: "invalid window".into() });
        }
        // Like the Management Activity client: a missing or stopped subscription is started
        // (without a webhook, which Microsoft then drops).
        self.held_error(tenant_id, content_type)?;
        let mut subscriptions = lock(&self.subscriptions);
        let subscription = subscriptions.entry((tenant_id.clone(), content_type)).or_insert(ListedSubscription {
            content_type,
            enabled: false,
            webhook: None,
        });
        if !subscription.enabled {
            *subscription = ListedSubscription { content_type, enabled: true, webhook: None };
        }
        drop(subscriptions);
        Ok(lock(&self.blobs)
            .iter()
            .filter(|(t, c, b, _)| {
                t == tenant_id && *c == content_type && b.content_created >= window.start && b.content_created < window.end
            })
            .map(|(_, _, b, _)| b.clone())
            .collect())
    }
    async fn fetch_content(
        &self,
        tenant_id: &TenantId,
        _credentials: &M365AppCredentials,
        blob: &ContentBlob,
    ) -> Result<String, SourceError> {
        *lock(&self.fetches) += 1;
        lock(&self.blobs)
            .iter()
            .find(|(t, _, b, _)| t == tenant_id && b.content_id == blob.content_id)
            .map(|(_, _, _, body)| body.clone())
            .ok_or_else(|| SourceError::Rejected { code: "AF20050".into(), message: "content does not exist".into() })
    }
}

#[async_trait]
impl SubscriptionManager for MemoryAuditSource {
    async fn start_subscription(
        &self,
        tenant_id: &TenantId,
        _credentials: &M365AppCredentials,
        content_type: ContentType,
        webhook: Option<&WebhookRegistration>,
    ) -> Result<(), SourceError> {
        self.check_failure()?;
        self.held_error(tenant_id, content_type)?;
        if let Some(webhook) = webhook {
            lock(&self.registrations).push((content_type, webhook.address.clone(), webhook.auth_id.expose().to_owned()));
        }
        // Like Microsoft: a start enables the subscription and sets (or, without one, removes)
        // its webhook.
        lock(&self.subscriptions).insert(
            (tenant_id.clone(), content_type),
            ListedSubscription { content_type, enabled: true, webhook: webhook.map(|_| WebhookState::Enabled) },
        );
        Ok(())
    }

    async fn list_subscriptions(
        &self,
        tenant_id: &TenantId,
        _credentials: &M365AppCredentials,
    ) -> Result<Vec<ListedSubscription>, SourceError> {
        self.check_failure()?;
        Ok(lock(&self.subscriptions).iter().filter(|((t, _), _)| t == tenant_id).map(|(_, s)| s.clone()).collect())
    }

    async fn stop_subscription(
        &self,
        _tenant_id: &TenantId,
        _credentials: &M365AppCredentials,
        content_type: ContentType,
    ) -> Result<(), SourceError> {
        self.check_failure()?;
        lock(&self.stopped).push(content_type);
        Ok(())
    }
}

/// [`SecurityAlertSource`] in memory: Graph alert objects added by tests.
#[derive(Debug, Default)]
pub struct MemorySecurityAlertSource {
    alerts: Mutex<Vec<(TenantId, serde_json::Value)>>,
}

impl MemorySecurityAlertSource {
    /// Adds or replaces (same `id`) an alert.
    pub fn upsert(&self, tenant_id: &TenantId, alert: serde_json::Value) {
        let mut alerts = lock(&self.alerts);
        alerts.retain(|(t, a)| !(t == tenant_id && a.get("id") == alert.get("id")));
        alerts.push((tenant_id.clone(), alert));
    }
}

#[async_trait]
impl SecurityAlertSource for MemorySecurityAlertSource {
    async fn alerts_updated_since(
        &self,
        tenant_id: &TenantId,
        _credentials: &M365AppCredentials,
        since: DateTime<Utc>,
    ) -> Result<Vec<serde_json::Value>, SourceError> {
        let updated = |a: &serde_json::Value| {
            a.get("lastUpdateDateTime")
                .and_then(|v| v.as_str())
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let mut found: Vec<serde_json::Value> = lock(&self.alerts)
            .iter()
            .filter(|(t, a)| t == tenant_id && updated(a).is_some_and(|u| u >= since))
            .map(|(_, a)| a.clone())
            .collect();
        found.sort_by_key(|a| updated(a));
        Ok(found)
    }
}

/// A stored trigger state: the state, its version, when it may be forgotten.
type VersionedTriggerState = (TriggerState, u64, DateTime<Utc>);

/// Trigger state in memory.
#[derive(Debug, Default)]
pub struct MemoryTriggerStore {
    states: Mutex<HashMap<TriggerKey, VersionedTriggerState>>,
}

#[async_trait]
impl TriggerStateStore for MemoryTriggerStore {
    async fn load_trigger(&self, key: &TriggerKey) -> Result<Option<(TriggerState, u64)>, StoreError> {
        Ok(lock(&self.states).get(key).map(|(state, version, _)| (state.clone(), *version)))
    }
    async fn save_trigger(&self, key: &TriggerKey, state: &TriggerState, version: u64, expires: DateTime<Utc>) -> Result<(), StoreError> {
        let mut states = lock(&self.states);
        let stored = states.get(key).map_or(0, |(_, v, _)| *v);
        if stored != version {
            return Err(StoreError::Conflict { what: format!("trigger state {}", key.policy_id) });
        }
        states.insert(key.clone(), (state.clone(), version + 1, expires));
        Ok(())
    }
}

/// Policy configuration in memory.
#[derive(Debug, Default)]
pub struct MemoryPolicyStore {
    revisions: Mutex<HashMap<MspId, u64>>,
    policies: Mutex<BTreeMap<(MspId, PolicyId), StoredPolicy>>,
    switches: Mutex<BTreeMap<(MspId, TenantId, PolicyId), bool>>,
    suppressions: Mutex<BTreeMap<(MspId, String), Suppression>>,
}

impl MemoryPolicyStore {
    fn bump(&self, msp_id: &MspId) {
        *lock(&self.revisions).entry(msp_id.clone()).or_default() += 1;
    }
}

#[async_trait]
impl PolicyStore for MemoryPolicyStore {
    async fn policy_revision(&self, msp_id: &MspId) -> Result<u64, StoreError> {
        Ok(lock(&self.revisions).get(msp_id).copied().unwrap_or(0))
    }
    async fn put_policy(&self, msp_id: &MspId, policy: &StoredPolicy) -> Result<(), StoreError> {
        lock(&self.policies).insert((msp_id.clone(), policy.definition.id.clone()), policy.clone());
        self.bump(msp_id);
        Ok(())
    }
    async fn get_policy(&self, msp_id: &MspId, policy_id: &PolicyId) -> Result<Option<StoredPolicy>, StoreError> {
        Ok(lock(&self.policies).get(&(msp_id.clone(), policy_id.clone())).cloned())
    }
    async fn delete_policy(&self, msp_id: &MspId, policy_id: &PolicyId) -> Result<bool, StoreError> {
        let removed = lock(&self.policies).remove(&(msp_id.clone(), policy_id.clone())).is_some();
        self.bump(msp_id);
        Ok(removed)
    }
    async fn list_policies(&self, msp_id: &MspId) -> Result<Vec<StoredPolicy>, StoreError> {
        Ok(lock(&self.policies).iter().filter(|((m, _), _)| m == msp_id).map(|(_, p)| p.clone()).collect())
    }
    async fn set_tenant_policy(&self, msp_id: &MspId, tenant_id: &TenantId, policy_id: &PolicyId, enabled: bool) -> Result<(), StoreError> {
        lock(&self.switches).insert((msp_id.clone(), tenant_id.clone(), policy_id.clone()), enabled);
        self.bump(msp_id);
        Ok(())
    }
    async fn tenant_policies(&self, msp_id: &MspId, tenant_id: &TenantId) -> Result<Vec<(PolicyId, bool)>, StoreError> {
        Ok(lock(&self.switches)
            .iter()
            .filter(|((m, t, _), _)| m == msp_id && t == tenant_id)
            .map(|((_, _, p), on)| (p.clone(), *on))
            .collect())
    }
    async fn put_suppression(&self, suppression: &Suppression) -> Result<(), StoreError> {
        lock(&self.suppressions).insert((suppression.msp_id.clone(), suppression.id.clone()), suppression.clone());
        self.bump(&suppression.msp_id);
        Ok(())
    }
    async fn list_suppressions(&self, msp_id: &MspId) -> Result<Vec<Suppression>, StoreError> {
        Ok(lock(&self.suppressions).iter().filter(|((m, _), _)| m == msp_id).map(|(_, s)| s.clone()).collect())
    }
    async fn delete_suppression(&self, msp_id: &MspId, id: &str) -> Result<bool, StoreError> {
        let removed = lock(&self.suppressions).remove(&(msp_id.clone(), id.to_owned())).is_some();
        self.bump(msp_id);
        Ok(removed)
    }
}

/// [`crate::ports::RateLimiter`] in memory.
#[derive(Debug, Default)]
pub struct MemoryRateLimiter {
    counts: Mutex<HashMap<(MspId, String, String, i64), u32>>,
}

#[async_trait]
impl crate::ports::RateLimiter for MemoryRateLimiter {
    async fn admit(
        &self,
        msp_id: &MspId,
        caller: &str,
        class: &str,
        limit: u32,
        window: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<crate::ports::RateDecision, StoreError> {
        let (start, retry_after) = crate::ports::rate_window(window, now);
        let mut counts = lock(&self.counts);
        let count = counts.entry((msp_id.clone(), caller.to_owned(), class.to_owned(), start)).or_default();
        if *count >= limit {
            return Ok(crate::ports::RateDecision::Limited { retry_after });
        }
        *count += 1;
        Ok(crate::ports::RateDecision::Allowed)
    }
}
