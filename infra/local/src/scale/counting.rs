//! Counting decorators over the ports the scale bench runs on: what each function would ask of
//! DynamoDB, SQS and Secrets Manager, per function ([`Meter`]).
//!
//! **Units.** A port call is one DynamoDB request in the AWS adapters. Reads count read request
//! units as strongly consistent reads of items under 4 KB: one per get, and for a list one per
//! four items returned (items of about 1 KB), at least one. Writes count one write request unit
//! per call (items under 1 KB), two for the calls the adapters make as transactions
//! (`save_delivery`, `record_hits`). SQS counts messages and requests (a send of n bodies is
//! `ceil(n / 10)` batch requests). These are the assumptions the cost model states.

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use vigil::alert::{Alert, AlertHits};
use vigil::changes::{ChangePage, ChangeQuery};
use vigil::destination::Destination;
use vigil::error::{QueueError, SecretError, StoreError};
use vigil::ids::{AlertId, DestinationId, MspId, PolicyId, RecordId, TenantId};
use vigil::policy::trigger::TriggerState;
use vigil::ports::{
    AlertPage, AlertStore, ClaimOutcome, ConfigStore, DestinationStore, IngestStateStore, MessageQueue, PolicyStore, RateDecision,
    RateLimiter, SecretName, SecretStore, StoredPolicy, StreamKey, StreamState, Suppression, TenantChange, TriggerKey, TriggerStateStore,
};
use vigil::secret::SecretString;
use vigil::tenant::{Msp, Tenant};
use vigil::ticket::Delivery;

/// What one function asked of AWS.
#[derive(Debug, Default)]
pub struct Meter {
    pub read_units: AtomicU64,
    pub write_units: AtomicU64,
    pub sqs_messages_sent: AtomicU64,
    pub sqs_requests: AtomicU64,
    pub secret_gets: AtomicU64,
    /// Lambda invocations (batches) and their summed duration.
    pub invocations: AtomicU64,
    pub busy_micros: AtomicU64,
}

/// A [`Meter`]'s values at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct MeterReading {
    pub dynamodb_read_units: u64,
    pub dynamodb_write_units: u64,
    pub sqs_messages_sent: u64,
    pub sqs_requests: u64,
    pub secret_gets: u64,
    pub invocations: u64,
    pub busy_seconds: f64,
}

impl Meter {
    fn read(&self, units: u64) {
        self.read_units.fetch_add(units.max(1), Ordering::Relaxed);
    }
    fn write(&self, units: u64) {
        self.write_units.fetch_add(units, Ordering::Relaxed);
    }
    fn listed(&self, items: usize) {
        self.read(u64::try_from(items.div_ceil(4)).unwrap_or(u64::MAX));
    }
    /// Counts SQS requests made outside the decorators (receives, deletes, visibility changes).
    pub fn sqs(&self, requests: u64) {
        self.sqs_requests.fetch_add(requests, Ordering::Relaxed);
    }
    /// Counts one invocation that took `took`.
    pub fn invocation(&self, took: std::time::Duration) {
        self.invocations.fetch_add(1, Ordering::Relaxed);
        self.busy_micros.fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
    #[must_use]
    pub fn reading(&self) -> MeterReading {
        #[allow(clippy::cast_precision_loss)]
        MeterReading {
            dynamodb_read_units: self.read_units.load(Ordering::Relaxed),
            dynamodb_write_units: self.write_units.load(Ordering::Relaxed),
            sqs_messages_sent: self.sqs_messages_sent.load(Ordering::Relaxed),
            sqs_requests: self.sqs_requests.load(Ordering::Relaxed),
            secret_gets: self.secret_gets.load(Ordering::Relaxed),
            invocations: self.invocations.load(Ordering::Relaxed),
            busy_seconds: self.busy_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

impl MeterReading {
    /// What happened between `earlier` and this reading.
    #[must_use]
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            dynamodb_read_units: self.dynamodb_read_units - earlier.dynamodb_read_units,
            dynamodb_write_units: self.dynamodb_write_units - earlier.dynamodb_write_units,
            sqs_messages_sent: self.sqs_messages_sent - earlier.sqs_messages_sent,
            sqs_requests: self.sqs_requests - earlier.sqs_requests,
            secret_gets: self.secret_gets - earlier.secret_gets,
            invocations: self.invocations - earlier.invocations,
            busy_seconds: self.busy_seconds - earlier.busy_seconds,
        }
    }
}

/// A port behind a meter.
pub struct Counted<T: ?Sized> {
    pub inner: Arc<T>,
    pub meter: Arc<Meter>,
}

impl<T: ?Sized> Counted<T> {
    pub fn new(inner: Arc<T>, meter: Arc<Meter>) -> Arc<Self> {
        Arc::new(Self { inner, meter })
    }
}

#[async_trait]
impl<T: ConfigStore + ?Sized> ConfigStore for Counted<T> {
    async fn create_msp(&self, msp: &Msp) -> Result<bool, StoreError> {
        self.meter.write(1);
        self.inner.create_msp(msp).await
    }
    async fn get_msp(&self, msp_id: &MspId) -> Result<Option<Msp>, StoreError> {
        self.meter.read(1);
        self.inner.get_msp(msp_id).await
    }
    async fn put_msp(&self, msp: &Msp) -> Result<(), StoreError> {
        self.meter.write(1);
        self.inner.put_msp(msp).await
    }
    async fn create_tenant(&self, tenant: &Tenant) -> Result<bool, StoreError> {
        self.meter.write(1);
        self.inner.create_tenant(tenant).await
    }
    async fn put_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        self.meter.write(1);
        self.inner.put_tenant(tenant).await
    }
    async fn update_tenant(&self, msp_id: &MspId, tenant_id: &TenantId, change: &TenantChange) -> Result<Option<Tenant>, StoreError> {
        self.meter.write(1);
        self.inner.update_tenant(msp_id, tenant_id, change).await
    }
    async fn get_tenant(&self, msp_id: &MspId, tenant_id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        self.meter.read(1);
        self.inner.get_tenant(msp_id, tenant_id).await
    }
    async fn list_tenants(&self, msp_id: &MspId) -> Result<Vec<Tenant>, StoreError> {
        let tenants = self.inner.list_tenants(msp_id).await?;
        self.meter.listed(tenants.len());
        Ok(tenants)
    }
    async fn tenants_page(&self, msp_id: &MspId, limit: usize, after: Option<&TenantId>) -> Result<vigil::ports::TenantPage, StoreError> {
        let page = self.inner.tenants_page(msp_id, limit, after).await?;
        self.meter.listed(page.tenants.len());
        Ok(page)
    }
    async fn list_all_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let tenants = self.inner.list_all_tenants().await?;
        self.meter.listed(tenants.len());
        Ok(tenants)
    }
}

#[async_trait]
impl<T: DestinationStore + ?Sized> DestinationStore for Counted<T> {
    async fn put_destination(&self, destination: &Destination) -> Result<(), StoreError> {
        self.meter.write(1);
        self.inner.put_destination(destination).await
    }
    async fn get_destination(&self, msp_id: &MspId, id: &DestinationId) -> Result<Option<Destination>, StoreError> {
        self.meter.read(1);
        self.inner.get_destination(msp_id, id).await
    }
    async fn list_destinations(&self, msp_id: &MspId) -> Result<Vec<Destination>, StoreError> {
        let list = self.inner.list_destinations(msp_id).await?;
        self.meter.listed(list.len());
        Ok(list)
    }
    async fn delete_destination(&self, msp_id: &MspId, id: &DestinationId) -> Result<bool, StoreError> {
        self.meter.write(1);
        self.inner.delete_destination(msp_id, id).await
    }
    async fn list_all_destinations(&self) -> Result<Vec<Destination>, StoreError> {
        let list = self.inner.list_all_destinations().await?;
        self.meter.listed(list.len());
        Ok(list)
    }
}

#[async_trait]
impl<T: IngestStateStore + ?Sized> IngestStateStore for Counted<T> {
    async fn get_stream(&self, stream: &StreamKey) -> Result<Option<StreamState>, StoreError> {
        self.meter.read(1);
        self.inner.get_stream(stream).await
    }
    async fn put_stream(&self, stream: &StreamKey, state: &StreamState) -> Result<(), StoreError> {
        self.meter.write(1);
        self.inner.put_stream(stream, state).await
    }
    async fn claim_record(
        &self,
        msp_id: &MspId,
        tenant_id: &TenantId,
        record_id: &RecordId,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<ClaimOutcome, StoreError> {
        self.meter.write(1);
        self.inner.claim_record(msp_id, tenant_id, record_id, now, lease).await
    }
    async fn complete_records(
        &self,
        msp_id: &MspId,
        tenant_id: &TenantId,
        record_ids: &[RecordId],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.meter.write(u64::try_from(record_ids.len()).unwrap_or(u64::MAX));
        self.inner.complete_records(msp_id, tenant_id, record_ids, now).await
    }
    async fn blob_done(&self, msp_id: &MspId, tenant_id: &TenantId, content_id: &str) -> Result<bool, StoreError> {
        self.meter.read(1);
        self.inner.blob_done(msp_id, tenant_id, content_id).await
    }
    async fn mark_blob_done(&self, msp_id: &MspId, tenant_id: &TenantId, content_id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.meter.write(1);
        self.inner.mark_blob_done(msp_id, tenant_id, content_id, now).await
    }
}

#[async_trait]
impl<T: AlertStore + ?Sized> AlertStore for Counted<T> {
    async fn record_hits(&self, hits: &AlertHits, now: DateTime<Utc>) -> Result<Alert, StoreError> {
        self.meter.write(2);
        self.inner.record_hits(hits, now).await
    }
    async fn get_alert(&self, msp_id: &MspId, alert_id: &AlertId) -> Result<Option<Alert>, StoreError> {
        self.meter.read(1);
        self.inner.get_alert(msp_id, alert_id).await
    }
    async fn resolve_alert(&self, msp_id: &MspId, alert_id: &AlertId, at: DateTime<Utc>) -> Result<Option<Alert>, StoreError> {
        self.meter.write(1);
        self.inner.resolve_alert(msp_id, alert_id, at).await
    }
    async fn update_alert(&self, alert: &Alert) -> Result<(), StoreError> {
        self.meter.write(1);
        self.inner.update_alert(alert).await
    }
    async fn list_alerts(&self, msp_id: &MspId, limit: usize, after: Option<&str>) -> Result<AlertPage, StoreError> {
        self.meter.read(u64::try_from(limit.div_ceil(4)).unwrap_or(1));
        self.inner.list_alerts(msp_id, limit, after).await
    }
    async fn alerts_by_change(&self, msp_id: &MspId, query: &ChangeQuery) -> Result<ChangePage, StoreError> {
        self.meter.read(1);
        self.inner.alerts_by_change(msp_id, query).await
    }
    async fn get_delivery(&self, msp_id: &MspId, alert_id: &AlertId, destination: &DestinationId) -> Result<Option<Delivery>, StoreError> {
        self.meter.read(1);
        self.inner.get_delivery(msp_id, alert_id, destination).await
    }
    async fn list_deliveries(&self, msp_id: &MspId, alert_id: &AlertId) -> Result<Vec<Delivery>, StoreError> {
        let list = self.inner.list_deliveries(msp_id, alert_id).await?;
        self.meter.listed(list.len());
        Ok(list)
    }
    async fn list_open_tickets(
        &self,
        msp_id: &MspId,
        destination: &DestinationId,
    ) -> Result<Vec<(AlertId, vigil::ticket::TicketRef)>, StoreError> {
        let list = self.inner.list_open_tickets(msp_id, destination).await?;
        self.meter.listed(list.len());
        Ok(list)
    }
    async fn list_held_deliveries(&self, msp_id: &MspId, destination: &DestinationId) -> Result<Vec<AlertId>, StoreError> {
        let list = self.inner.list_held_deliveries(msp_id, destination).await?;
        self.meter.listed(list.len());
        Ok(list)
    }
    async fn take_daily_ticket(&self, alert: &Alert, day: NaiveDate, limit: u32) -> Result<bool, StoreError> {
        self.meter.write(1);
        self.inner.take_daily_ticket(alert, day, limit).await
    }
    async fn take_daily_message(
        &self,
        alert: &Alert,
        destination: &DestinationId,
        day: NaiveDate,
        limit: u32,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        self.meter.write(1);
        self.inner.take_daily_message(alert, destination, day, limit, message_id).await
    }
    async fn save_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.meter.write(2);
        self.inner.save_delivery(delivery).await
    }
}

#[async_trait]
impl<T: TriggerStateStore + ?Sized> TriggerStateStore for Counted<T> {
    async fn load_trigger(&self, key: &TriggerKey) -> Result<Option<(TriggerState, u64)>, StoreError> {
        self.meter.read(1);
        self.inner.load_trigger(key).await
    }
    async fn save_trigger(&self, key: &TriggerKey, state: &TriggerState, version: u64, expires: DateTime<Utc>) -> Result<(), StoreError> {
        self.meter.write(1);
        self.inner.save_trigger(key, state, version, expires).await
    }
}

#[async_trait]
impl<T: PolicyStore + ?Sized> PolicyStore for Counted<T> {
    async fn policy_revision(&self, msp_id: &MspId) -> Result<u64, StoreError> {
        self.meter.read(1);
        self.inner.policy_revision(msp_id).await
    }
    async fn put_policy(&self, msp_id: &MspId, policy: &StoredPolicy) -> Result<(), StoreError> {
        self.meter.write(1);
        self.inner.put_policy(msp_id, policy).await
    }
    async fn get_policy(&self, msp_id: &MspId, policy_id: &PolicyId) -> Result<Option<StoredPolicy>, StoreError> {
        self.meter.read(1);
        self.inner.get_policy(msp_id, policy_id).await
    }
    async fn delete_policy(&self, msp_id: &MspId, policy_id: &PolicyId) -> Result<bool, StoreError> {
        self.meter.write(1);
        self.inner.delete_policy(msp_id, policy_id).await
    }
    async fn list_policies(&self, msp_id: &MspId) -> Result<Vec<StoredPolicy>, StoreError> {
        let list = self.inner.list_policies(msp_id).await?;
        self.meter.listed(list.len());
        Ok(list)
    }
    async fn set_tenant_policy(&self, msp_id: &MspId, tenant_id: &TenantId, policy_id: &PolicyId, enabled: bool) -> Result<(), StoreError> {
        self.meter.write(1);
        self.inner.set_tenant_policy(msp_id, tenant_id, policy_id, enabled).await
    }
    async fn tenant_policies(&self, msp_id: &MspId, tenant_id: &TenantId) -> Result<Vec<(PolicyId, bool)>, StoreError> {
        let list = self.inner.tenant_policies(msp_id, tenant_id).await?;
        self.meter.listed(list.len());
        Ok(list)
    }
    async fn put_suppression(&self, suppression: &Suppression) -> Result<(), StoreError> {
        self.meter.write(1);
        self.inner.put_suppression(suppression).await
    }
    async fn list_suppressions(&self, msp_id: &MspId) -> Result<Vec<Suppression>, StoreError> {
        let list = self.inner.list_suppressions(msp_id).await?;
        self.meter.listed(list.len());
        Ok(list)
    }
    async fn delete_suppression(&self, msp_id: &MspId, id: &str) -> Result<bool, StoreError> {
        self.meter.write(1);
        self.inner.delete_suppression(msp_id, id).await
    }
}

#[async_trait]
impl<T: SecretStore + ?Sized> SecretStore for Counted<T> {
    async fn put_secret(&self, name: &SecretName, value: &SecretString) -> Result<(), SecretError> {
        self.inner.put_secret(name, value).await
    }
    async fn get_secret(&self, name: &SecretName) -> Result<Option<SecretString>, SecretError> {
        self.meter.secret_gets.fetch_add(1, Ordering::Relaxed);
        self.inner.get_secret(name).await
    }
    async fn delete_secret(&self, name: &SecretName) -> Result<(), SecretError> {
        self.inner.delete_secret(name).await
    }
}

#[async_trait]
impl<T: MessageQueue + ?Sized> MessageQueue for Counted<T> {
    async fn send_all(&self, bodies: &[String]) -> Result<(), QueueError> {
        self.count_send(bodies.len());
        self.inner.send_all(bodies).await
    }
    async fn send_delayed(&self, bodies: &[String], delay: std::time::Duration) -> Result<(), QueueError> {
        self.count_send(bodies.len());
        self.inner.send_delayed(bodies, delay).await
    }
}

impl<T: ?Sized> Counted<T> {
    fn count_send(&self, messages: usize) {
        let messages = u64::try_from(messages).unwrap_or(u64::MAX);
        self.meter.sqs_messages_sent.fetch_add(messages, Ordering::Relaxed);
        self.meter.sqs_requests.fetch_add(messages.div_ceil(10), Ordering::Relaxed);
    }
}

#[async_trait]
impl<T: RateLimiter + ?Sized> RateLimiter for Counted<T> {
    async fn admit(
        &self,
        msp_id: &MspId,
        caller: &str,
        class: &str,
        limit: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<RateDecision, StoreError> {
        self.meter.write(1);
        self.inner.admit(msp_id, caller, class, limit, window, now).await
    }
}
