//! The billing sync use case: for each billing mapping of an MSP, the tenant's current
//! protected-mailbox figure is set as the quantity of the mapped product on the mapped agreement
//! or contract in the PSA destination, exactly once per period ([`crate::billing::sync`]), or
//! shown without writing (a dry run: per tenant and destination, the quantity in the PSA and the
//! one Vigil would set).
//!
//! Exactly-once: the mapping's record carries the intent (quantity found, quantity to set)
//! before the PSA write and the outcome after it; a retry after a crash in between reads the PSA
//! and finds the quantity already set, so nothing is written twice (for Autotask, no second
//! delta). A mapping whose tenant has no figure yet is skipped (never billed zero).
//!
//! A quantity changed by hand in the PSA is reported as one of Vigil's own events
//! ([`BILLING_EVENTS`], operation [`QUANTITY_CHANGED`]), which the built-in "Billed quantity
//! changed in the PSA" policy (category Others) turns into an alert on the MSP's own company;
//! its record id names the mapping and the period, so a re-run never raises it twice.

use crate::billing::sync::{BillingMapping, BillingPeriod, Decision, HandEdit, SyncOutcome, SyncRecord, decide};
use crate::clock::Clock;
use crate::error::{Classified, ErrorClass, QueueError, SinkError, StoreError};
use crate::ids::{AuditStream, ContentType, MspId, TenantId};
use crate::messages::AuditEventsMessage;
use crate::ports::{BillingStore, BillingTargets, DestinationStore, MailboxCountStore, MessageQueue, SinkSetupError};
use serde::Serialize;
use std::sync::Arc;
use tracing::{info, warn};

pub use crate::messages::BILLING_EVENTS;
/// The operation of a hand-edit report.
pub const QUANTITY_CHANGED: &str = "Vigil.BillingQuantityChanged";

/// Why a sync could not be done.
#[derive(Debug, thiserror::Error)]
pub enum BillingSyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// A PSA failed transiently for at least one mapping (the others are done); retry.
    #[error("the PSA of destination {destination} failed: {source}")]
    Psa { destination: String, source: SinkError },
}

impl Classified for BillingSyncError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Store(e) => e.class(),
            Self::Queue(e) => e.class(),
            Self::Psa { source, .. } => source.class(),
        }
    }
    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Psa { source, .. } => source.retry_after(),
            _ => None,
        }
    }
}

/// What the sync did (or, in a dry run, would do) for one mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncLine {
    pub tenant_id: crate::ids::TenantId,
    pub destination_id: crate::ids::DestinationId,
    pub agreement_id: String,
    pub product_id: String,
    pub period: String,
    /// The quantity in the PSA before the sync (`null`: not on the agreement yet, or not read).
    pub current: Option<u32>,
    /// The quantity Vigil sets: the tenant's latest figure (`null`: never counted, skipped).
    pub new: Option<u32>,
    /// `set`, `already_set`, `hand_edit_kept`, `report_only`, `done_before` (the period was
    /// synced already), `would_set` / `would_keep` (dry run), `skipped` or `failed`.
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hand_edit: Option<HandEdit>,
    /// Why it was skipped or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The billing sync.
pub struct BillingSyncService {
    pub billing: Arc<dyn BillingStore>,
    pub counts: Arc<dyn MailboxCountStore>,
    pub destinations: Arc<dyn DestinationStore>,
    pub targets: Arc<dyn BillingTargets>,
    /// The evaluator's queue (hand-edit reports).
    pub events: Arc<dyn MessageQueue>,
    pub clock: Arc<dyn Clock>,
}

impl BillingSyncService {
    /// Syncs (or, with `dry_run`, shows) every mapping of the MSP for `period`.
    ///
    /// # Errors
    /// Store and queue failures; a transient PSA failure of any mapping after every mapping was
    /// tried (a retry redoes only what is not done).
    pub async fn sync(&self, msp_id: &MspId, period: &BillingPeriod, dry_run: bool) -> Result<Vec<SyncLine>, BillingSyncError> {
        self.sync_mappings(msp_id, None, period, dry_run).await
    }

    /// [`Self::sync`] limited to one tenant's mappings when `tenant` is given (the scheduled
    /// sync after that tenant's count).
    ///
    /// # Errors
    /// As [`Self::sync`].
    pub async fn sync_mappings(
        &self,
        msp_id: &MspId,
        tenant: Option<&TenantId>,
        period: &BillingPeriod,
        dry_run: bool,
    ) -> Result<Vec<SyncLine>, BillingSyncError> {
        let mut mappings = self.billing.mappings(msp_id).await?;
        if let Some(tenant) = tenant {
            mappings.retain(|mapping| &mapping.tenant_id == tenant);
        }
        let figures = self.counts.latest_counts(msp_id).await?;
        let mut lines = Vec::with_capacity(mappings.len());
        let mut retry = None;
        for mapping in mappings {
            let mut line = SyncLine {
                tenant_id: mapping.tenant_id.clone(),
                destination_id: mapping.destination_id.clone(),
                agreement_id: mapping.agreement_id.clone(),
                product_id: mapping.product_id.clone(),
                period: period.key.clone(),
                current: None,
                new: figures.get(&mapping.tenant_id).map(|f| f.protected_mailboxes),
                result: "skipped".into(),
                hand_edit: None,
                detail: None,
            };
            let Some(target) = line.new else {
                line.detail = Some("the tenant has no protected-mailbox figure yet".into());
                lines.push(line);
                continue;
            };
            match self.sync_one(msp_id, &mapping, period, target, dry_run, &mut line).await {
                Ok(()) => {}
                Err(BillingSyncError::Psa { destination, source }) if source.class() == ErrorClass::Transient => {
                    line.result = "failed".into();
                    line.detail = Some(source.to_string());
                    retry.get_or_insert(BillingSyncError::Psa { destination, source });
                }
                Err(BillingSyncError::Psa { source, .. }) => {
                    line.result = "failed".into();
                    line.detail = Some(source.to_string());
                }
                Err(other) => return Err(other),
            }
            lines.push(line);
        }
        let set = lines.iter().filter(|l| l.result == "set").count();
        info!(message = "Billing sync.", msp_id = %msp_id, period = %period.key, dry_run, mappings = lines.len(), set);
        match retry {
            Some(error) => Err(error),
            None => Ok(lines),
        }
    }

    async fn sync_one(
        &self,
        msp_id: &MspId,
        mapping: &BillingMapping,
        period: &BillingPeriod,
        target: u32,
        dry_run: bool,
        line: &mut SyncLine,
    ) -> Result<(), BillingSyncError> {
        let psa_error = |source: SinkError| BillingSyncError::Psa { destination: mapping.destination_id.to_string(), source };
        let Some(destination) = self.destinations.get_destination(msp_id, &mapping.destination_id).await? else {
            line.detail = Some(format!("destination {} no longer exists", mapping.destination_id));
            return Ok(());
        };
        let psa = match self.targets.billing_for(&destination).await {
            Ok(psa) => psa,
            Err(SinkSetupError::Store(e)) => return Err(e.into()),
            Err(other) => {
                line.result = "failed".into();
                line.detail = Some(other.to_string());
                return Ok(());
            }
        };
        let billing_line = mapping.line();
        let found = psa.quantity(&billing_line, period).await.map_err(psa_error)?;
        line.current = found;
        let record = self.billing.sync_record(msp_id, &mapping.destination_id, &mapping.tenant_id).await?;
        let decision = decide(record.as_ref(), &period.key, found, target, mapping.restore_hand_edits, psa.writes());
        let previous_set = record.as_ref().and_then(|r| r.last_set);
        let now = self.clock.now();
        let next = |found, outcome: Option<SyncOutcome>, last_set, hand_edit| SyncRecord {
            tenant_id: mapping.tenant_id.clone(),
            destination_id: mapping.destination_id.clone(),
            period: period.key.clone(),
            found,
            target,
            outcome,
            last_set,
            hand_edit,
            at: now,
        };
        if dry_run {
            line.result = match decision {
                Decision::Write { .. } => "would_set",
                Decision::Done { .. } => "done_before",
                Decision::Record { outcome: SyncOutcome::ReportOnly, .. } => "report_only",
                Decision::Record { .. } => "would_keep",
            }
            .into();
            line.hand_edit = match decision {
                Decision::Write { hand_edit } | Decision::Done { hand_edit } | Decision::Record { hand_edit, .. } => hand_edit,
            };
            return Ok(());
        }
        match decision {
            Decision::Done { hand_edit } => {
                line.result = "done_before".into();
                line.hand_edit = hand_edit;
                if let Some(edit) = hand_edit {
                    self.report_hand_edit(msp_id, mapping, period, edit, false).await?;
                }
            }
            Decision::Record { outcome, hand_edit } => {
                let last_set = match outcome {
                    SyncOutcome::Set | SyncOutcome::AlreadySet => Some(target),
                    SyncOutcome::HandEditKept => found,
                    SyncOutcome::ReportOnly => previous_set,
                };
                if let Some(edit) = hand_edit {
                    self.report_hand_edit(msp_id, mapping, period, edit, false).await?;
                }
                // The intent's own `found` stays (it is what the PSA had before Vigil's write).
                let found_before = record.as_ref().filter(|r| r.period == period.key && r.outcome.is_none()).map_or(found, |r| r.found);
                self.billing.put_sync_record(msp_id, &next(found_before, Some(outcome), last_set, hand_edit)).await?;
                line.result = serde_json::to_value(outcome).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
                line.hand_edit = hand_edit;
            }
            Decision::Write { hand_edit } => {
                if let Some(edit) = hand_edit {
                    self.report_hand_edit(msp_id, mapping, period, edit, true).await?;
                }
                self.billing.put_sync_record(msp_id, &next(found, None, previous_set, hand_edit)).await?;
                psa.set_quantity(&billing_line, period, found, target).await.map_err(psa_error)?;
                self.billing.put_sync_record(msp_id, &next(found, Some(SyncOutcome::Set), Some(target), hand_edit)).await?;
                line.result = "set".into();
                line.hand_edit = hand_edit;
            }
        }
        Ok(())
    }

    /// Sends a hand edit to the evaluator as Vigil's own event.
    async fn report_hand_edit(
        &self,
        msp_id: &MspId,
        mapping: &BillingMapping,
        period: &BillingPeriod,
        edit: HandEdit,
        restored: bool,
    ) -> Result<(), BillingSyncError> {
        warn!(message = "A billed quantity was changed by hand in the PSA.", msp_id = %msp_id, tenant_id = %mapping.tenant_id, destination = %mapping.destination_id, set_by_vigil = edit.set_by_vigil, found = ?edit.found, restored);
        let now = self.clock.now();
        let record = serde_json::json!({
            "Id": format!("{BILLING_EVENTS}:{}:{}:{}:hand-edit", mapping.destination_id, mapping.tenant_id, period.key),
            "RecordType": 0,
            "CreationTime": now.format("%Y-%m-%dT%H:%M:%S").to_string(),
            "Operation": QUANTITY_CHANGED,
            "OrganizationId": mapping.tenant_id.as_str(),
            "UserId": "Vigil",
            "Workload": "Vigil",
            "Destination": mapping.destination_id.as_str(),
            "Agreement": mapping.agreement_id,
            "Product": mapping.product_id,
            "Period": period.key,
            "SetByVigil": edit.set_by_vigil,
            "FoundInPsa": edit.found,
            "SetBack": restored,
        });
        let message = AuditEventsMessage {
            msp_id: msp_id.clone(),
            tenant_id: mapping.tenant_id.clone(),
            // The stream only labels the message; Vigil's own events are told apart by their label.
            stream: AuditStream::Content(ContentType::General),
            content_id: BILLING_EVENTS.to_owned(),
            records: vec![record],
        };
        let body = serde_json::to_string(&message).unwrap_or_else(|_| unreachable!("messages always serialise"));
        self.events.send_all(&[body]).await?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "billing_sync_tests.rs"]
mod tests;
