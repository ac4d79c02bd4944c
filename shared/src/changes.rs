//! The time-ordered index of alert changes: every write of an alert (created, hit, resolved,
//! triaged, reopened, read back from a PSA …) stamps it with a [`ChangeKey`] — the writer's
//! wall clock at the moment of the write, to the millisecond, and the alert id — so an MSP's
//! alerts can be read in the order they last changed, from any point, without reading the whole
//! partition. The SIEM feed and the alert list both read it through
//! [`crate::ports::AlertStore::alerts_by_change`]. A store keeps it per MSP and per tenant of
//! the MSP, so a read of one tenant's changes looks at that tenant's entries only.
//!
//! A key is the text `{RFC 3339 UTC time, millisecond precision, Z}#{alert id}`: fixed-width
//! times sort as text in time order, so a store can keep the key as a plain sort key.

use crate::alert::{Alert, AlertStatus, Severity};
use crate::ids::{AlertId, TenantId};
use chrono::{DateTime, SecondsFormat, Utc};

/// Where an alert stands in the change index: when it was last written and its id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChangeKey(String);

impl ChangeKey {
    /// The key of a write of `alert_id` at `at` (cut to the millisecond).
    #[must_use]
    pub fn new(at: DateTime<Utc>, alert_id: &AlertId) -> Self {
        Self(format!("{}#{alert_id}", time_bound(at)))
    }

    /// The position just before every key written at `at` or later (the lowest alert id at
    /// that millisecond): reading after it starts at `at`. An alert whose id is all zeros
    /// (a SHA-256 prefix, so never in practice) written at exactly `at` would sort as read.
    #[must_use]
    pub fn start_of(at: DateTime<Utc>) -> Self {
        Self(format!("{}#{}", time_bound(at), "0".repeat(32)))
    }

    /// Reads a key back; `None` unless it is a well-formed key.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        let (time, id) = raw.split_once('#')?;
        let at = DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc);
        let alert_id = AlertId::parse(id).ok()?;
        let key = Self::new(at, &alert_id);
        (key.0 == raw).then_some(key)
    }

    /// When the alert was written.
    #[must_use]
    pub fn at(&self) -> DateTime<Utc> {
        let time = self.0.split_once('#').map_or(self.0.as_str(), |(time, _)| time);
        DateTime::parse_from_rfc3339(time).map_or(DateTime::<Utc>::MIN_UTC, |t| t.with_timezone(&Utc))
    }

    /// The key as stored.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The text every key written at `at` starts with; every key of a later write sorts after it
/// and every key of an earlier one before it.
#[must_use]
pub fn time_bound(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A new stamp for a write at `now` that sorts after `previous` (the alert's last stamp, when
/// the writer knows it): a writer whose clock is behind still moves the alert forward.
#[must_use]
pub fn stamp(now: DateTime<Utc>, alert_id: &AlertId, previous: Option<&ChangeKey>) -> ChangeKey {
    let at = match previous {
        Some(previous) if previous.at() >= now => previous.at() + chrono::Duration::milliseconds(1),
        _ => now,
    };
    ChangeKey::new(at, alert_id)
}

/// Filters a store applies while it reads the index (each given one must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertSelection {
    /// Checked on each entry looked at: entries that fail it still count as read.
    pub status: Option<AlertStatus>,
    /// Checked on each entry looked at, like `status`.
    pub severity: Option<Severity>,
    /// Picks the tenant's own index: other tenants' entries are not looked at, nor counted.
    pub tenant: Option<TenantId>,
}

impl AlertSelection {
    /// Whether `alert` passes.
    #[must_use]
    pub fn accepts(&self, alert: &Alert) -> bool {
        self.status.is_none_or(|s| s == alert.status)
            && self.severity.is_none_or(|s| s == alert.severity)
            && self.tenant.as_ref().is_none_or(|t| *t == alert.tenant_id)
    }
}

/// Largest number of index entries one read may look at.
pub const MAX_READ: usize = 1000;

/// One read of an MSP's change index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeQuery {
    /// Newest change first (the alert list) instead of oldest first (the feed).
    pub newest_first: bool,
    /// Continue after this key (exclusive), in the reading direction.
    pub after: Option<ChangeKey>,
    /// Only changes written before this time.
    pub changed_before: Option<DateTime<Utc>>,
    /// Only changes written at or after this time.
    pub changed_since: Option<DateTime<Utc>>,
    pub selection: AlertSelection,
    /// How many index entries to look at, matching the status and severity or not (1 to
    /// [`MAX_READ`]); with a tenant selected, only that tenant's entries are looked at.
    pub read: usize,
}

/// An alert and its place in the change index.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangedAlert {
    pub key: ChangeKey,
    pub alert: Alert,
}

/// What one read of the change index found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChangePage {
    /// The entries that passed the selection, in reading order.
    pub alerts: Vec<ChangedAlert>,
    /// The last entry looked at, passed or not: continue after it.
    pub last_read: Option<ChangeKey>,
    /// Entries looked at (only the selected tenant's, when one is).
    pub read: usize,
    /// Whether entries in range may remain after `last_read`.
    pub more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn keys_sort_in_time_order_and_read_back_exactly() {
        let id = AlertId::derive(&["a"]);
        let early = ChangeKey::new(Utc.timestamp_millis_opt(1_767_600_000_123).unwrap(), &id);
        let late = ChangeKey::new(Utc.timestamp_millis_opt(1_767_600_001_000).unwrap(), &id);
        assert!(early < late);
        assert_eq!(ChangeKey::parse(early.as_str()), Some(early.clone()));
        assert_eq!(early.at(), Utc.timestamp_millis_opt(1_767_600_000_123).unwrap());
        for bad in ["", "#", "2026-01-05T08:00:00Z#x y", "2026-01-05T08:00:00.000+01:00#a", "yesterday#a", "2026-01-05T08:00:00.000Z"] {
            assert_eq!(ChangeKey::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_stamp_always_moves_an_alert_forward_even_from_a_clock_that_is_behind() {
        let id = AlertId::derive(&["a"]);
        let t = Utc.timestamp_millis_opt(1_767_600_000_000).unwrap();
        let first = stamp(t, &id, None);
        let behind = stamp(t - chrono::Duration::seconds(5), &id, Some(&first));
        assert!(behind > first);
        assert_eq!(stamp(t + chrono::Duration::seconds(1), &id, Some(&first)).at(), t + chrono::Duration::seconds(1));
    }

    #[test]
    fn a_time_bound_sorts_before_every_key_at_that_time_and_after_every_earlier_one() {
        let t = Utc.timestamp_millis_opt(1_767_600_000_000).unwrap();
        let bound = time_bound(t);
        assert!(ChangeKey::new(t, &AlertId::derive(&["a"])).as_str() > bound.as_str());
        assert!(ChangeKey::new(t - chrono::Duration::milliseconds(1), &AlertId::derive(&["z"])).as_str() < bound.as_str());
        let start = ChangeKey::start_of(t);
        assert!(
            start < ChangeKey::new(t, &AlertId::derive(&["a"]))
                && start > ChangeKey::new(t - chrono::Duration::milliseconds(1), &AlertId::derive(&["z"]))
        );
        assert_eq!(ChangeKey::parse(start.as_str()), Some(start));
    }
}
