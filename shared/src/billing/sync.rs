//! Billing sync: each tenant's protected-mailbox figure set as the quantity of the MSP's product
//! on the tenant's agreement or contract in a PSA destination ([`BillingMapping`]), once per
//! billing period, exactly once.
//!
//! Every sync of a mapping leaves one [`SyncRecord`]: the period it is for, the intent recorded
//! before the PSA write (the quantity found and the one to set) and the outcome after. So a
//! retry, a crash between the PSA write and the record, or a re-run of the same period never
//! changes a quantity twice: a record of the period with an outcome is final; an intent without
//! an outcome is resolved by reading the PSA again ([`decide`]) — the quantity set already is
//! the write having happened, the quantity found before is the write not having happened.
//!
//! A quantity in the PSA that differs from the one Vigil last set there
//! ([`SyncRecord::last_set`]) was changed by hand: it is reported (an alert on the MSP's own
//! company), and set back only where the mapping says so ([`BillingMapping::restore_hand_edits`]).

use crate::ids::{DestinationId, TenantId};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Longest agreement or product reference kept.
pub const MAX_REFERENCE_CHARS: usize = 64;

/// Where a tenant's figure is billed in one PSA destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BillingMapping {
    pub tenant_id: TenantId,
    pub destination_id: DestinationId,
    /// The agreement (ConnectWise), contract (Autotask), agreement number (Tigerpaw) or
    /// recurring invoice (HaloPSA) id.
    pub agreement_id: String,
    /// The product (ConnectWise catalog item identifier), service (Autotask service id) or
    /// line the quantity is set on.
    pub product_id: String,
    /// Whether a quantity changed by hand in the PSA is set back to the count (else it is
    /// reported and left as it is).
    #[serde(default)]
    pub restore_hand_edits: bool,
}

impl BillingMapping {
    /// The mapping if its references are usable, else what is wrong.
    ///
    /// # Errors
    /// An empty or too long reference.
    pub fn validated(self) -> Result<Self, String> {
        for (name, value) in [("agreement_id", &self.agreement_id), ("product_id", &self.product_id)] {
            let trimmed = value.trim();
            if trimmed.is_empty() || trimmed.chars().count() > MAX_REFERENCE_CHARS || trimmed.chars().any(char::is_control) {
                return Err(format!("{name}: 1 to {MAX_REFERENCE_CHARS} printable characters"));
            }
        }
        Ok(self)
    }

    /// The PSA line this mapping sets.
    #[must_use]
    pub fn line(&self) -> BillingLine {
        BillingLine { agreement_id: self.agreement_id.trim().to_owned(), product_id: self.product_id.trim().to_owned() }
    }
}

/// A quantity's place in a PSA: an agreement or contract, and a product or service on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BillingLine {
    pub agreement_id: String,
    pub product_id: String,
}

/// When the sync runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SyncSchedule {
    /// Every day, after the day's count: the period is the day.
    Daily,
    /// On the last day of each month, after its count: the period is the month.
    #[default]
    MonthEnd,
}

/// The period a sync is for: what "the same period" means for exactly-once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingPeriod {
    /// `2026-12-06` (daily) or `2026-12` (month end).
    pub key: String,
    /// The effective date of a change (Autotask adjustments carry it).
    pub effective: NaiveDate,
}

impl SyncSchedule {
    /// The period a sync on `day` is for, or `None` when no sync is due that day.
    #[must_use]
    pub fn period_on(self, day: NaiveDate) -> Option<BillingPeriod> {
        match self {
            Self::Daily => Some(BillingPeriod { key: day.to_string(), effective: day }),
            Self::MonthEnd => day
                .succ_opt()
                .is_some_and(|next| next.month() != day.month())
                .then(|| BillingPeriod { key: format!("{:04}-{:02}", day.year(), day.month()), effective: day }),
        }
    }

    /// The period `day` falls in, whether or not a sync is due (for a run on request).
    #[must_use]
    pub fn period_of(self, day: NaiveDate) -> BillingPeriod {
        match self {
            Self::Daily => BillingPeriod { key: day.to_string(), effective: day },
            Self::MonthEnd => BillingPeriod { key: format!("{:04}-{:02}", day.year(), day.month()), effective: day },
        }
    }
}

/// How a period's sync of one mapping ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SyncOutcome {
    /// Vigil set the quantity.
    Set,
    /// The PSA already had the quantity.
    AlreadySet,
    /// Changed by hand in the PSA and left as it is (the mapping does not restore).
    HandEditKept,
    /// The PSA's write path is unconfirmed: the quantity to set is reported, nothing written.
    ReportOnly,
}

/// The one sync record of a mapping (its latest period).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncRecord {
    pub tenant_id: TenantId,
    pub destination_id: DestinationId,
    pub period: String,
    /// The quantity found in the PSA before the write (`null`: no line yet).
    pub found: Option<u32>,
    /// The quantity to set (the tenant's figure).
    pub target: u32,
    /// `null` while only the intent is recorded.
    pub outcome: Option<SyncOutcome>,
    /// The quantity Vigil last set in the PSA, in any period (`null`: never).
    pub last_set: Option<u32>,
    /// A hand edit seen by this period's sync: (what Vigil had set, what the PSA had).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hand_edit: Option<HandEdit>,
    pub at: DateTime<Utc>,
}

/// A quantity changed in the PSA after Vigil set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HandEdit {
    pub set_by_vigil: u32,
    pub found: Option<u32>,
}

/// What a sync does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The period's sync is done already: nothing to do (a hand edit after it is reported).
    Done { hand_edit: Option<HandEdit> },
    /// The PSA has the target already (a write done before a crash, or nothing to change):
    /// record it as done.
    Record { outcome: SyncOutcome, hand_edit: Option<HandEdit> },
    /// Write `target` over `found` (record the intent first).
    Write { hand_edit: Option<HandEdit> },
}

/// Decides a mapping's sync from its record, the quantity the PSA has now and the figure.
#[must_use]
pub fn decide(
    record: Option<&SyncRecord>,
    period: &str,
    found: Option<u32>,
    target: u32,
    restore_hand_edits: bool,
    writes: bool,
) -> Decision {
    let same_period = record.filter(|r| r.period == period);
    let last_set = record.and_then(|r| r.last_set);
    if let Some(done) = same_period.filter(|r| r.outcome.is_some()) {
        let set = done.last_set.filter(|_| done.outcome == Some(SyncOutcome::Set) || done.outcome == Some(SyncOutcome::AlreadySet));
        let hand_edit = set.filter(|s| found != Some(*s)).map(|set_by_vigil| HandEdit { set_by_vigil, found });
        return Decision::Done { hand_edit };
    }
    if let Some(intent) = same_period {
        if found == Some(intent.target) {
            return Decision::Record { outcome: SyncOutcome::Set, hand_edit: None };
        }
        if found == intent.found {
            return Decision::Write { hand_edit: None };
        }
    }
    if !writes {
        return Decision::Record { outcome: SyncOutcome::ReportOnly, hand_edit: None };
    }
    let hand_edit = last_set.filter(|s| found != Some(*s)).map(|set_by_vigil| HandEdit { set_by_vigil, found });
    if hand_edit.is_some() && !restore_hand_edits {
        return Decision::Record { outcome: SyncOutcome::HandEditKept, hand_edit };
    }
    if found == Some(target) {
        return Decision::Record { outcome: SyncOutcome::AlreadySet, hand_edit };
    }
    Decision::Write { hand_edit }
}

#[cfg(test)]
#[path = "sync_tests.rs"]
mod tests;
