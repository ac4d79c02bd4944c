//! The coverage figure: how much of the last 24 hours Vigil has seen of a tenant, from the
//! poller's coverage ledgers ([`StreamState`]). AWS-free and computed against a given instant.
//!
//! **Definition.** The window is `[now − 24 h, now)`. An instant `t` of it is *covered for a
//! stream* when `t < covered_until` of the stream's ledger (everything before it was listed and
//! enqueued) — or before its last successful poll, which covers everything up to its time (a
//! Graph alerts poll asks for every alert updated since its cursor, whose `covered_until` only
//! moves with alerts) — and `t` lies in none of the ledger's lost intervals (content that left Microsoft's
//! 7-day retention before Vigil reached it). A stream without a ledger (never polled) covers
//! nothing. An instant is *covered for a tenant* when it is covered for **every** stream the
//! tenant has enabled. A tenant's `coverage_24h` is the covered length of the window divided by
//! 24 h, a number in `[0, 1]`; a tenant with no enabled stream has none (`None`). The time since
//! the last poll is not covered yet, so a tenant polled every 5 minutes reads about 0.997 at
//! worst. An MSP's figure is the mean of its tenants' figures (the share of tenant-hours
//! covered); tenants without a figure do not count.

use crate::ports::StreamState;
use chrono::{DateTime, Duration, Utc};

/// The length of the window the figure looks at.
#[must_use]
pub fn window() -> Duration {
    Duration::hours(24)
}

/// Intervals `[from, to)`, sorted and disjoint.
type Intervals = Vec<(DateTime<Utc>, DateTime<Utc>)>;

/// The covered parts of `[start, end)` for one stream's ledger.
fn covered(ledger: Option<&StreamState>, start: DateTime<Utc>, end: DateTime<Utc>) -> Intervals {
    let Some(ledger) = ledger else { return Vec::new() };
    let until = ledger.covered_until.max(ledger.last_success.unwrap_or(ledger.covered_until)).min(end);
    if until <= start {
        return Vec::new();
    }
    let mut lost: Intervals = ledger.lost.iter().map(|(from, to)| ((*from).max(start), (*to).min(until))).filter(|(f, t)| f < t).collect();
    lost.sort();
    let mut parts = Vec::new();
    let mut cursor = start;
    for (from, to) in lost {
        if from > cursor {
            parts.push((cursor, from));
        }
        cursor = cursor.max(to);
    }
    if cursor < until {
        parts.push((cursor, until));
    }
    parts
}

/// The intersection of two sorted, disjoint interval lists.
fn intersect(a: &Intervals, b: &Intervals) -> Intervals {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        let from = a[i].0.max(b[j].0);
        let to = a[i].1.min(b[j].1);
        if from < to {
            out.push((from, to));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// A tenant's coverage of the 24 hours before `now`, given the ledger of each stream it has
/// enabled (`None` for a stream never polled); `None` when it has no enabled stream.
#[must_use]
pub fn tenant_coverage(ledgers: &[Option<&StreamState>], now: DateTime<Utc>) -> Option<f64> {
    let start = now - window();
    let mut streams = ledgers.iter();
    let first = streams.next()?;
    let mut common = covered(*first, start, now);
    for ledger in streams {
        common = intersect(&common, &covered(*ledger, start, now));
    }
    let seconds: i64 = common.iter().map(|(from, to)| (*to - *from).num_milliseconds()).sum();
    #[allow(clippy::cast_precision_loss)]
    let share = seconds as f64 / window().num_milliseconds() as f64;
    Some(share.clamp(0.0, 1.0))
}

/// The MSP's figure: the mean of its tenants' figures (those that have one); `None` when none
/// has.
#[must_use]
pub fn msp_coverage(tenants: &[Option<f64>]) -> Option<f64> {
    let figures: Vec<f64> = tenants.iter().flatten().copied().collect();
    if figures.is_empty() {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    Some(figures.iter().sum::<f64>() / figures.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap()
    }

    fn ledger(covered_until: DateTime<Utc>) -> StreamState {
        StreamState::starting_at(covered_until)
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn a_stream_covered_up_to_now_covers_the_whole_window() {
        let l = ledger(now());
        assert!(close(tenant_coverage(&[Some(&l)], now()), 1.0));
    }

    #[test]
    fn a_tenant_with_a_stream_never_polled_is_not_covered_at_all() {
        let l = ledger(now());
        assert!(close(tenant_coverage(&[Some(&l), None], now()), 0.0));
        assert!(close(tenant_coverage(&[None], now()), 0.0));
    }

    #[test]
    fn a_tenant_without_enabled_streams_has_no_figure() {
        assert_eq!(tenant_coverage(&[], now()), None);
    }

    #[test]
    fn a_partial_window_counts_only_the_time_before_covered_until() {
        let l = ledger(now() - Duration::hours(6));
        assert!(close(tenant_coverage(&[Some(&l)], now()), 18.0 / 24.0));
        let behind = ledger(now() - Duration::hours(30));
        assert!(close(tenant_coverage(&[Some(&behind)], now()), 0.0), "covered only before the window");
    }

    #[test]
    fn coverage_past_now_does_not_count_beyond_the_window() {
        let l = ledger(now() + Duration::hours(2));
        assert!(close(tenant_coverage(&[Some(&l)], now()), 1.0));
    }

    #[test]
    fn a_successful_poll_covers_up_to_its_time_even_when_the_cursor_did_not_move() {
        let mut graph = ledger(now() - Duration::hours(20));
        graph.last_success = Some(now() - Duration::hours(2));
        assert!(close(tenant_coverage(&[Some(&graph)], now()), 22.0 / 24.0));
    }

    #[test]
    fn a_lost_interval_is_not_covered_even_before_covered_until() {
        let mut l = ledger(now());
        l.record_lost(now() - Duration::hours(10), now() - Duration::hours(7));
        assert!(close(tenant_coverage(&[Some(&l)], now()), 21.0 / 24.0));
    }

    #[test]
    fn a_loss_partly_before_the_window_counts_only_inside_it() {
        let mut l = ledger(now());
        l.record_lost(now() - Duration::hours(30), now() - Duration::hours(23));
        assert!(close(tenant_coverage(&[Some(&l)], now()), 23.0 / 24.0));
    }

    #[test]
    fn every_stream_must_be_covered_at_once_gaps_of_different_streams_add_up() {
        let mut a = ledger(now());
        a.record_lost(now() - Duration::hours(10), now() - Duration::hours(8));
        let b = ledger(now() - Duration::hours(1));
        let mut c = ledger(now());
        // Overlaps a's loss by one hour: counted once.
        c.record_lost(now() - Duration::hours(9), now() - Duration::hours(6));
        assert!(close(tenant_coverage(&[Some(&a), Some(&b), Some(&c)], now()), 19.0 / 24.0));
    }

    #[test]
    fn the_msp_figure_is_the_mean_over_tenants_that_have_one() {
        assert!(close(msp_coverage(&[Some(1.0), Some(0.5), None]), 0.75));
        assert_eq!(msp_coverage(&[None]), None);
        assert_eq!(msp_coverage(&[]), None);
    }
}
