//! Billing for what Vigil protects: the daily count of each tenant's protected mailboxes
//! ([`mailboxes`] says which users count), kept as a daily series per tenant for as many days
//! as the MSP chooses ([`BillingSettings::count_retention_days`], bounded), so the MSP bills its
//! customers from figures instead of counting by hand.
//!
//! A count that fails never bills zero: the day keeps the last figure counted, marked as
//! carried over with the reason ([`DailyCount::carried_over`]); a later successful count of
//! the same day replaces it.

pub mod mailboxes;
pub mod sync;

use crate::ids::TenantId;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub use mailboxes::{DirectoryUser, MailboxTally};

/// One day's figure of one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DailyCount {
    pub tenant_id: TenantId,
    /// The day (UTC) this figure is for.
    pub day: NaiveDate,
    /// Protected mailboxes (see the README's definition).
    pub protected_mailboxes: u32,
    /// Users listed in the directory (members and guests, enabled or not).
    pub users: u32,
    /// The day the figure was counted: `day` itself, or an earlier day when today's count
    /// failed and the last figure was carried over.
    pub counted_on: NaiveDate,
    /// When this entry was written.
    pub recorded_at: DateTime<Utc>,
    /// Why today's count failed (the figure is then `counted_on`'s); `null` when counted today.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried_over: Option<String>,
}

impl DailyCount {
    /// Whether the figure was counted on its own day.
    #[must_use]
    pub fn is_fresh(&self) -> bool {
        self.carried_over.is_none() && self.counted_on == self.day
    }

    /// Today's entry when today's count failed: the last figure, carried over with the reason.
    #[must_use]
    pub fn carried_to(&self, day: NaiveDate, reason: &str, now: DateTime<Utc>) -> Self {
        Self {
            day,
            recorded_at: now,
            carried_over: Some(crate::messages::truncate_to(reason, MAX_REASON_BYTES).to_owned()),
            ..self.clone()
        }
    }
}

/// The run of days, ending with the series' last entry, whose figure was carried over (each of
/// those days' counts failed): how many, and the first of them. A day missing between two
/// entries, or a day counted, ends the run. `series` is in day order.
#[must_use]
pub fn carried_run(series: &[DailyCount]) -> (u32, Option<NaiveDate>) {
    let mut run = 0u32;
    let mut start = None;
    let mut next: Option<NaiveDate> = None;
    for count in series.iter().rev() {
        if count.is_fresh() || next.is_some_and(|n| count.day.succ_opt() != Some(n)) {
            break;
        }
        run += 1;
        start = Some(count.day);
        next = Some(count.day);
    }
    (run, start)
}

/// The longest failure reason kept in a carried-over entry.
pub const MAX_REASON_BYTES: usize = 300;

/// How the MSP bills: how long the daily series is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BillingSettings {
    /// Days of the daily series kept per tenant ([`MIN_RETENTION_DAYS`] to
    /// [`MAX_RETENTION_DAYS`], default [`DEFAULT_RETENTION_DAYS`]); older days are deleted when
    /// the next day is recorded.
    pub count_retention_days: u16,
    /// The billing period a sync is for: `daily` (the day) or `month_end` (the month, default).
    #[serde(default)]
    pub sync_schedule: sync::SyncSchedule,
}

/// Default retention of the daily series: 13 months, so last year's same month is there.
pub const DEFAULT_RETENTION_DAYS: u16 = 400;
pub const MIN_RETENTION_DAYS: u16 = 7;
/// Three years and a bit: at one small item per tenant and day, the series stays bounded.
pub const MAX_RETENTION_DAYS: u16 = 1100;

impl Default for BillingSettings {
    fn default() -> Self {
        Self { count_retention_days: DEFAULT_RETENTION_DAYS, sync_schedule: sync::SyncSchedule::MonthEnd }
    }
}

impl BillingSettings {
    /// The settings if they are within bounds, else what is wrong.
    ///
    /// # Errors
    /// A retention outside [`MIN_RETENTION_DAYS`]..=[`MAX_RETENTION_DAYS`].
    pub fn validated(self) -> Result<Self, String> {
        if (MIN_RETENTION_DAYS..=MAX_RETENTION_DAYS).contains(&self.count_retention_days) {
            Ok(self)
        } else {
            Err(format!("count_retention_days must be {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS}, not {}", self.count_retention_days))
        }
    }

    /// The oldest day kept when `today` is recorded.
    #[must_use]
    pub fn oldest_kept(&self, today: NaiveDate) -> NaiveDate {
        today - chrono::Duration::days(i64::from(self.count_retention_days) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_carried_run_counts_consecutive_failed_days_back_from_the_last_entry() {
        let tenant = TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap();
        let d = |n: u32| NaiveDate::from_ymd_opt(2026, 12, n).unwrap();
        let counted = |n: u32| DailyCount {
            tenant_id: tenant.clone(),
            day: d(n),
            protected_mailboxes: 42,
            users: 50,
            counted_on: d(n),
            recorded_at: Utc::now(),
            carried_over: None,
        };
        let carried = |n: u32, from: u32| counted(from).carried_to(d(n), "503", Utc::now());
        assert_eq!(carried_run(&[]), (0, None));
        assert_eq!(carried_run(&[counted(1), counted(2)]), (0, None), "counted on the last day");
        assert_eq!(carried_run(&[counted(1), carried(2, 1), carried(3, 1), carried(4, 1)]), (3, Some(d(2))));
        assert_eq!(carried_run(&[carried(1, 1), carried(2, 1), counted(3), carried(4, 3)]), (1, Some(d(4))), "a counted day ends the run");
        assert_eq!(carried_run(&[counted(1), carried(2, 1), carried(4, 1), carried(5, 1)]), (2, Some(d(4))), "so does a missing day");
    }

    #[test]
    fn retention_outside_its_bounds_is_refused() {
        assert!(BillingSettings { count_retention_days: 6, ..BillingSettings::default() }.validated().is_err());
        assert!(BillingSettings { count_retention_days: 1101, ..BillingSettings::default() }.validated().is_err());
        assert!(BillingSettings { count_retention_days: 30, ..BillingSettings::default() }.validated().is_ok());
    }

    #[test]
    fn a_retention_of_n_days_keeps_today_and_the_n_minus_one_days_before() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        assert_eq!(
            BillingSettings { count_retention_days: 7, ..BillingSettings::default() }.oldest_kept(today),
            NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()
        );
    }

    #[test]
    fn a_carried_over_figure_keeps_the_day_it_was_counted_and_says_why() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        let counted = DailyCount {
            tenant_id: TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap(),
            day,
            protected_mailboxes: 42,
            users: 50,
            counted_on: day,
            recorded_at: Utc::now(),
            carried_over: None,
        };
        assert!(counted.is_fresh());
        let next = day.succ_opt().unwrap();
        let carried = counted.carried_to(next, &"x".repeat(1000), Utc::now());
        assert_eq!((carried.day, carried.counted_on, carried.protected_mailboxes), (next, day, 42));
        assert!(!carried.is_fresh());
        assert_eq!(carried.carried_over.unwrap().len(), MAX_REASON_BYTES);
    }
}
