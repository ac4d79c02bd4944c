//! Bounded concurrency towards Microsoft: per-app and per-tenant call budgets, a per-tenant
//! in-flight cap, and holds after throttling, for one poller instance.
//!
//! **Why in process.** Every poller instance keeps its own [`CallBudget`] and is given a fixed
//! share of the deployment's budgets (the app budget divided by the poll-jobs queue's
//! `MaximumConcurrency`, the tenant budget divided by the streams a tenant has in flight at
//! most): the shares add up to no more than the whole, with no shared counter to read or write
//! on each Microsoft call (a DynamoDB counter would cost one write per call, the same order as
//! every other write of a tick). The poll-jobs queue's `MaximumConcurrency` bounds the instances.
//!
//! **What a call waits for.** Before each call (one [`AuditSource`], [`SecurityAlertSource`] or
//! [`SubscriptionManager`] operation; a paged listing counts once) [`BudgetedMicrosoft`] takes,
//! all at once or none: a free in-flight slot of the tenant ([`BudgetSettings::tenant_in_flight`]),
//! one token of the tenant's bucket and one of the app's (the app is the Entra application, its
//! `client_id`: Microsoft's per-app limits count it across tenants). A tenant Microsoft
//! throttled is held until its `Retry-After` (or [`BudgetSettings::default_backoff`]) has passed,
//! and only that tenant. A short wait is waited in process; a wait longer than
//! [`BudgetSettings::max_wait`] gives the job back as [`SourceError::Throttled`] with the wait as
//! its `Retry-After`, so the queue redelivers it later and the instance serves other tenants
//! meanwhile: a slow or throttled tenant never holds the rest.
//!
//! **Bounded.** Per-tenant state is dropped once idle (full bucket, nothing in flight, no
//! hold) when the map passes [`PRUNE_ABOVE`] entries.

use crate::clock::Clock;
use crate::error::SourceError;
use crate::ids::{ContentType, TenantId};
use crate::ports::{AuditSource, ContentBlob, SecurityAlertSource, SubscriptionManager, TimeWindow, WebhookRegistration};
use crate::tenant::M365AppCredentials;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Per-tenant entries kept before idle ones are dropped.
pub const PRUNE_ABOVE: usize = 4_096;

/// How long a call waits before looking again at a tenant whose in-flight slots are all taken.
const SLOT_POLL: Duration = Duration::from_millis(20);

/// One poller instance's budgets.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetSettings {
    /// Calls per minute to Microsoft for one app (all its tenants), this instance's share.
    pub app_per_minute: u32,
    /// Calls per minute for one tenant, this instance's share.
    pub tenant_per_minute: u32,
    /// Calls of one tenant in flight at once in this instance.
    pub tenant_in_flight: usize,
    /// The longest a call waits in process; past it the job goes back to the queue.
    pub max_wait: Duration,
    /// How long a tenant is held after a throttled answer without `Retry-After`.
    pub default_backoff: Duration,
}

impl BudgetSettings {
    /// This instance's share of deployment-wide budgets: the app's split over `instances` (the
    /// poll-jobs queue's `MaximumConcurrency`), the tenant's over `streams` (a tenant has at
    /// most one job per stream in flight).
    #[must_use]
    pub fn share_of(app_per_minute: u32, tenant_per_minute: u32, instances: u32, streams: u32) -> Self {
        Self {
            app_per_minute: (app_per_minute / instances.max(1)).max(1),
            tenant_per_minute: (tenant_per_minute / streams.max(1)).max(1),
            ..Self::default()
        }
    }
}

impl Default for BudgetSettings {
    /// Microsoft's documented baseline is 2,000 calls a minute per tenant (Management Activity
    /// API) and 130,000 per 10 s per app (Graph); Vigil keeps to half the tenant's and a
    /// fraction of the app's, so the MSP's other tools keep theirs.
    fn default() -> Self {
        Self {
            app_per_minute: 3_000,
            tenant_per_minute: 160,
            tenant_in_flight: 4,
            max_wait: Duration::from_secs(10),
            default_backoff: Duration::from_secs(30),
        }
    }
}

/// A token bucket: `capacity` tokens, refilled continuously at `per_second`.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    at: Option<DateTime<Utc>>,
}

impl TokenBucket {
    /// A full bucket allowing `per_minute` calls a minute with bursts of a tenth of a minute's.
    #[must_use]
    pub fn per_minute(per_minute: u32) -> Self {
        let per_minute = f64::from(per_minute.max(1));
        let capacity = (per_minute / 10.0).max(1.0);
        Self { capacity, per_second: per_minute / 60.0, tokens: capacity, at: None }
    }

    fn refill(&mut self, now: DateTime<Utc>) {
        if let Some(at) = self.at {
            #[allow(clippy::cast_precision_loss)]
            let elapsed = (now - at).num_microseconds().unwrap_or(i64::MAX).max(0) as f64 / 1e6;
            self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        }
        self.at = Some(self.at.map_or(now, |at| at.max(now)));
    }

    /// How long until one token is there (zero: now).
    #[must_use]
    pub fn wait(&mut self, now: DateTime<Utc>) -> Duration {
        self.refill(now);
        if self.tokens >= 1.0 { Duration::ZERO } else { Duration::from_secs_f64((1.0 - self.tokens) / self.per_second) }
    }

    /// Takes one token, if one is there.
    pub fn take(&mut self, now: DateTime<Utc>) -> bool {
        if self.wait(now).is_zero() {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn is_full(&self) -> bool {
        self.tokens >= self.capacity
    }
}

#[derive(Debug)]
struct TenantState {
    bucket: TokenBucket,
    in_flight: usize,
    held_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct State {
    apps: HashMap<String, TokenBucket>,
    tenants: HashMap<TenantId, TenantState>,
}

/// One instance's budgets towards Microsoft (see the module documentation).
pub struct CallBudget {
    settings: BudgetSettings,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
}

impl std::fmt::Debug for CallBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallBudget").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// A call's place in the budget; returning it (drop) frees the tenant's in-flight slot.
#[derive(Debug)]
pub struct Permit<'a> {
    budget: &'a CallBudget,
    tenant: TenantId,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.budget.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Some(tenant) = self.budget.lock().tenants.get_mut(&self.tenant) {
            tenant.in_flight = tenant.in_flight.saturating_sub(1);
        }
    }
}

impl CallBudget {
    #[must_use]
    pub fn new(settings: BudgetSettings, clock: Arc<dyn Clock>) -> Self {
        Self { settings, clock, state: Mutex::new(State::default()), in_flight: AtomicUsize::new(0), peak_in_flight: AtomicUsize::new(0) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a slot and both tokens at once, or none of them and says how long to wait.
    ///
    /// # Errors
    /// The wait before trying again (the tenant held, at its in-flight cap, or a bucket empty).
    pub fn try_acquire(&self, app: &str, tenant: &TenantId) -> Result<Permit<'_>, Duration> {
        let now = self.clock.now();
        let mut state = self.lock();
        if state.tenants.len() > PRUNE_ABOVE {
            state.tenants.retain(|_, t| {
                t.bucket.refill(now);
                t.in_flight > 0 || t.held_until.is_some_and(|h| h > now) || !t.bucket.is_full()
            });
        }
        let settings = &self.settings;
        let State { apps, tenants } = &mut *state;
        let entry = tenants.entry(tenant.clone()).or_insert_with(|| TenantState {
            bucket: TokenBucket::per_minute(settings.tenant_per_minute),
            in_flight: 0,
            held_until: None,
        });
        if let Some(until) = entry.held_until.filter(|until| *until > now) {
            return Err((until - now).to_std().unwrap_or(Duration::ZERO));
        }
        if entry.in_flight >= settings.tenant_in_flight.max(1) {
            return Err(SLOT_POLL);
        }
        let app_bucket = apps.entry(app.to_owned()).or_insert_with(|| TokenBucket::per_minute(settings.app_per_minute));
        let wait = entry.bucket.wait(now).max(app_bucket.wait(now));
        if !wait.is_zero() {
            return Err(wait);
        }
        entry.bucket.take(now);
        app_bucket.take(now);
        entry.in_flight += 1;
        let in_flight = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_in_flight.fetch_max(in_flight, Ordering::SeqCst);
        Ok(Permit { budget: self, tenant: tenant.clone() })
    }

    /// Waits for a place up to [`BudgetSettings::max_wait`].
    ///
    /// # Errors
    /// [`SourceError::Throttled`] with the remaining wait when the place is further away: the
    /// job goes back to its queue for that long.
    pub async fn acquire(&self, app: &str, tenant: &TenantId) -> Result<Permit<'_>, SourceError> {
        let mut waited = Duration::ZERO;
        loop {
            match self.try_acquire(app, tenant) {
                Ok(permit) => return Ok(permit),
                Err(wait) if waited + wait <= self.settings.max_wait => {
                    tokio::time::sleep(wait).await;
                    waited += wait;
                }
                Err(wait) => return Err(SourceError::Throttled { retry_after: Some(wait.max(Duration::from_secs(1))) }),
            }
        }
    }

    /// Microsoft throttled the tenant: hold it for `retry_after` (or the default backoff).
    pub fn throttled(&self, tenant: &TenantId, retry_after: Option<Duration>) {
        let until = self.clock.now()
            + chrono::Duration::from_std(retry_after.unwrap_or(self.settings.default_backoff)).unwrap_or(chrono::Duration::zero());
        let mut state = self.lock();
        if let Some(entry) = state.tenants.get_mut(tenant) {
            entry.held_until = Some(entry.held_until.map_or(until, |held| held.max(until)));
        }
    }

    /// The most calls this instance has had in flight at once.
    #[must_use]
    pub fn peak_in_flight(&self) -> usize {
        self.peak_in_flight.load(Ordering::SeqCst)
    }

    /// Calls in flight now.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }
}

/// The Microsoft ports behind one [`CallBudget`].
pub struct BudgetedMicrosoft {
    pub budget: Arc<CallBudget>,
    pub audit: Arc<dyn AuditSource>,
    pub subscriptions: Arc<dyn SubscriptionManager>,
    pub alerts: Arc<dyn SecurityAlertSource>,
}

impl BudgetedMicrosoft {
    /// Runs `call` within the budget, and holds the tenant if Microsoft throttled it.
    async fn within<T, F>(&self, tenant: &TenantId, credentials: &M365AppCredentials, call: F) -> Result<T, SourceError>
    where
        F: std::future::Future<Output = Result<T, SourceError>> + Send,
    {
        let permit = self.budget.acquire(&credentials.client_id, tenant).await?;
        let result = call.await;
        drop(permit);
        if let Err(SourceError::Throttled { retry_after }) = &result {
            self.budget.throttled(tenant, *retry_after);
        }
        result
    }
}

#[async_trait]
impl AuditSource for BudgetedMicrosoft {
    async fn list_content(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        content_type: ContentType,
        window: TimeWindow,
    ) -> Result<Vec<ContentBlob>, SourceError> {
        self.within(tenant_id, credentials, self.audit.list_content(tenant_id, credentials, content_type, window)).await
    }

    async fn fetch_content(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        blob: &ContentBlob,
    ) -> Result<String, SourceError> {
        self.within(tenant_id, credentials, self.audit.fetch_content(tenant_id, credentials, blob)).await
    }
}

#[async_trait]
impl SubscriptionManager for BudgetedMicrosoft {
    async fn start_subscription(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        content_type: ContentType,
        webhook: Option<&WebhookRegistration>,
    ) -> Result<(), SourceError> {
        self.within(tenant_id, credentials, self.subscriptions.start_subscription(tenant_id, credentials, content_type, webhook)).await
    }

    async fn list_subscriptions(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
    ) -> Result<Vec<crate::ports::ListedSubscription>, SourceError> {
        self.within(tenant_id, credentials, self.subscriptions.list_subscriptions(tenant_id, credentials)).await
    }

    async fn stop_subscription(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        content_type: ContentType,
    ) -> Result<(), SourceError> {
        self.within(tenant_id, credentials, self.subscriptions.stop_subscription(tenant_id, credentials, content_type)).await
    }
}

#[async_trait]
impl SecurityAlertSource for BudgetedMicrosoft {
    async fn alerts_updated_since(
        &self,
        tenant_id: &TenantId,
        credentials: &M365AppCredentials,
        since: DateTime<Utc>,
    ) -> Result<Vec<serde_json::Value>, SourceError> {
        self.within(tenant_id, credentials, self.alerts.alerts_updated_since(tenant_id, credentials, since)).await
    }
}

#[cfg(test)]
#[path = "call_budget_tests.rs"]
mod tests;
