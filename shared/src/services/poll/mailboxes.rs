//! The daily protected-mailbox count: the tick asks once per UTC day and MSP
//! ([`crate::ports::MailboxCountStore::counts_requested_on`]) for one [`PollJob::MailboxCount`]
//! per tenant with Microsoft 365 credentials and no figure for the day yet; the job lists the
//! tenant's directory ([`crate::ports::MailboxDirectory`]), counts its protected mailboxes
//! ([`crate::billing::mailboxes`]) and records the day in the tenant's series.
//!
//! A count that fails never bills zero: the day is recorded with the last figure counted,
//! carried over with the reason, and the job is retried while the failure is transient
//! (throttling with Microsoft's `Retry-After`, outages); a retry that succeeds replaces the
//! carried figure. A refusal (missing `User.Read.All`, revoked consent) keeps the carried figure
//! until the next day's count. A tenant never counted has nothing to carry and no figure.
//!
//! The billing sync runs on the MSP's schedule after the count: each tenant's figure for the
//! day, counted or carried, sends one [`BillingSyncJob`] for that tenant when the schedule makes
//! a sync due that day ([`crate::billing::SyncSchedule::period_on`]: daily, or on the month's
//! last day) to the tickets queue, whose ticket-dispatcher holds the PSA credentials and syncs
//! the tenant's mappings (each once per period). The job is sent after the figure is recorded
//! and before the count job is acknowledged: a failed send fails the job, whose retry records the
//! same figure and sends again; a job sent twice changes nothing. No tenant waits for another's
//! count, and no count reads the MSP's other tenants.
//!
//! A count that fails on [`crate::selfmon::READS_FAILING_AFTER`] days in a row raises Vigil's
//! own "billing reads failing" alert on the third carried day, and the next day counted clears
//! it (see `watch_billing_reads`): both follow from the series itself, so no other state is
//! kept, and a retried job sends the very same event (the episode's first carried day is its
//! time).

use super::{PollError, PollReport, PollService};
use crate::billing::{DailyCount, mailboxes::tally};
use crate::error::{Classified, ErrorClass};
use crate::ids::{MspId, TenantId};
use crate::messages::{BillingSyncJob, PollJob};
use crate::tenant::Tenant;
use chrono::NaiveDate;
use std::collections::BTreeSet;
use tracing::{info, warn};

impl PollService {
    /// The count jobs of a tick: on an MSP's first tick of a UTC day, one per tenant with
    /// credentials and no fresh figure for the day.
    pub(super) async fn mailbox_count_jobs(&self, tenants: &[Tenant]) -> Result<Vec<PollJob>, PollError> {
        let today = self.clock.now().date_naive();
        let msps: BTreeSet<&MspId> = tenants.iter().map(|t| &t.msp_id).collect();
        let mut jobs = Vec::new();
        for msp_id in msps {
            if self.mailbox_counts.counts_requested_on(msp_id).await?.is_some_and(|day| day >= today) {
                continue;
            }
            let latest = self.mailbox_counts.latest_counts(msp_id).await?;
            jobs.extend(
                tenants
                    .iter()
                    .filter(|t| &t.msp_id == msp_id && t.m365_credentials_set)
                    .filter(|t| latest.get(&t.tenant_id).is_none_or(|count| count.day < today || !count.is_fresh()))
                    .map(|t| PollJob::MailboxCount { msp_id: msp_id.clone(), tenant_id: t.tenant_id.clone(), day: today }),
            );
            // Noted after the jobs are built: a tick that fails before sending them asks again.
            self.mailbox_counts.set_counts_requested_on(msp_id, today).await?;
        }
        Ok(jobs)
    }

    /// Counts one tenant's protected mailboxes for `day` and records the figure; on failure
    /// carries the last figure over (see the module docs).
    ///
    /// # Errors
    /// Transient failures (after recording the carried figure), for the queue to retry.
    pub async fn count_mailboxes(&self, msp_id: &MspId, tenant_id: &TenantId, day: NaiveDate) -> Result<PollReport, PollError> {
        let Some(tenant) = self.config.get_tenant(msp_id, tenant_id).await?.filter(|t| t.offboarded_at.is_none()) else {
            return Ok(PollReport::default());
        };
        let settings = self.mailbox_counts.billing_settings(msp_id).await?;
        let now = self.clock.now();
        let listed = match self.credentials(&tenant).await {
            Ok(credentials) => self.mailbox_directory.users(tenant_id, &credentials).await.map_err(PollError::from),
            Err(error) => Err(error),
        };
        match listed {
            Ok(users) => {
                // The days before, for a "billing reads failing" episode this count ends.
                let before: Vec<DailyCount> = self
                    .mailbox_counts
                    .counts(msp_id, tenant_id, settings.oldest_kept(day), day)
                    .await?
                    .into_iter()
                    .filter(|c| c.day < day)
                    .collect();
                let found = tally(&users);
                let count = DailyCount {
                    tenant_id: tenant_id.clone(),
                    day,
                    protected_mailboxes: found.protected,
                    users: found.users,
                    counted_on: day,
                    recorded_at: now,
                    carried_over: None,
                };
                self.mailbox_counts.record_count(msp_id, &count, &settings).await?;
                info!(message = "Protected mailboxes counted.", protected = found.protected, users = found.users);
                self.request_billing_sync(msp_id, tenant_id, day, &settings).await?;
                self.watch_billing_reads(&tenant, &before, true).await?;
                Ok(PollReport::default())
            }
            Err(error) => {
                let known = self.mailbox_counts.counts(msp_id, tenant_id, settings.oldest_kept(day), day).await?;
                let carried = match known.last() {
                    // Counted already today (a duplicate job): the figure stands.
                    Some(last) if last.day == day && last.is_fresh() => None,
                    Some(last) => Some(last.carried_to(day, &error.summary(), now)),
                    None => None,
                };
                if let Some(carried) = &carried {
                    self.mailbox_counts.record_count(msp_id, carried, &settings).await?;
                    self.request_billing_sync(msp_id, tenant_id, day, &settings).await?;
                    let mut series: Vec<DailyCount> = known.iter().filter(|c| c.day < day).cloned().collect();
                    series.push(carried.clone());
                    self.watch_billing_reads(&tenant, &series, false).await?;
                }
                warn!(
                    message = "Counting protected mailboxes failed; the last figure is kept.",
                    error_class = error.class().as_str(),
                    carried_from = ?carried.as_ref().map(|c| c.counted_on),
                    %error
                );
                if error.class() == ErrorClass::Transient { Err(error) } else { Ok(PollReport::default()) }
            }
        }
    }
}

impl PollService {
    /// Sends the tenant's billing sync job when the MSP's schedule makes a sync due on `day`.
    async fn request_billing_sync(
        &self,
        msp_id: &MspId,
        tenant_id: &TenantId,
        day: NaiveDate,
        settings: &crate::billing::BillingSettings,
    ) -> Result<(), PollError> {
        let Some(period) = settings.sync_schedule.period_on(day) else { return Ok(()) };
        let job = BillingSyncJob { msp_id: msp_id.clone(), tenant_id: Some(tenant_id.clone()), billing_period: period, day };
        self.billing_jobs.send_all(&[super::to_json(&job)]).await?;
        info!(message = "Billing sync requested after the count.", period = %job.billing_period.key);
        Ok(())
    }
}
