//! The order of a tick's stream jobs: fair between MSPs and tenants, different every tick.
//!
//! The poll-jobs queue hands jobs out roughly in the order they were sent, and its
//! `MaximumConcurrency` caps the instances, so the order decides who waits when a tick is
//! large. [`stream_jobs`] sends every tenant's first stream before any tenant's second (a
//! tenant's six jobs land in six different batches, so one slow or throttled tenant holds at
//! most one job of a batch), alternates MSPs (an MSP with 2,000 tenants does not put one with
//! 20 at the end of the tick), and rotates where each MSP's list starts, and which stream goes
//! first, by `rotation` (the tick's number), so no tenant and no stream is always polled last.

use crate::ids::{AuditStream, MspId};
use crate::messages::PollJob;
use crate::tenant::Tenant;
use std::collections::BTreeMap;

/// Tenants interleaved across MSPs, each MSP's list (by tenant id) rotated by `rotation`, and
/// the MSPs' order rotated too.
#[must_use]
pub fn fair_order(tenants: &[Tenant], rotation: u64) -> Vec<&Tenant> {
    let mut by_msp: BTreeMap<&MspId, Vec<&Tenant>> = BTreeMap::new();
    for tenant in tenants {
        by_msp.entry(&tenant.msp_id).or_default().push(tenant);
    }
    let mut lists: Vec<Vec<&Tenant>> = by_msp
        .into_values()
        .map(|mut list| {
            list.sort_by(|a, b| a.tenant_id.as_str().cmp(b.tenant_id.as_str()));
            let shift = usize::try_from(rotation % list.len() as u64).unwrap_or(0);
            list.rotate_left(shift);
            list
        })
        .collect();
    if !lists.is_empty() {
        let shift = usize::try_from(rotation % lists.len() as u64).unwrap_or(0);
        lists.rotate_left(shift);
    }
    let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest).flat_map(|i| lists.iter().filter_map(move |list| list.get(i).copied())).collect()
}

/// One [`PollJob::Stream`] per (tenant, stream), stream by stream over [`fair_order`], the
/// streams' order rotated too (no stream, Graph alerts say, always waits for the whole tick).
pub fn stream_jobs<'a>(tenants: &'a [Tenant], rotation: u64, streams_of: impl Fn(&Tenant) -> Vec<AuditStream>) -> Vec<PollJob> {
    let ordered: Vec<(&'a Tenant, Vec<AuditStream>)> = fair_order(tenants, rotation)
        .into_iter()
        .map(|t| {
            let mut streams = streams_of(t);
            if !streams.is_empty() {
                let shift = usize::try_from(rotation % streams.len() as u64).unwrap_or(0);
                streams.rotate_left(shift);
            }
            (t, streams)
        })
        .collect();
    let most = ordered.iter().map(|(_, streams)| streams.len()).max().unwrap_or(0);
    (0..most)
        .flat_map(|i| {
            ordered.iter().filter_map(move |(tenant, streams)| {
                streams.get(i).map(|stream| PollJob::Stream {
                    msp_id: tenant.msp_id.clone(),
                    tenant_id: tenant.tenant_id.clone(),
                    stream: *stream,
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::contract::sample_tenant;
    use crate::ids::{ContentType, TenantId};

    fn tenants(msp: &str, count: usize) -> Vec<Tenant> {
        let msp_id = MspId::parse(msp).unwrap();
        (0..count).map(|i| sample_tenant(&msp_id, &TenantId::parse(&format!("00000000-0000-4000-8000-{i:012x}")).unwrap())).collect()
    }

    fn names(order: &[&Tenant]) -> Vec<String> {
        order.iter().map(|t| format!("{}/{}", t.msp_id, &t.tenant_id.as_str()[33..])).collect()
    }

    #[test]
    fn a_small_msp_is_not_queued_behind_a_large_one() {
        let mut all = tenants("large", 100);
        all.extend(tenants("small", 3));
        let order = fair_order(&all, 0);
        assert_eq!(order.len(), 103);
        let small: Vec<usize> = order.iter().enumerate().filter(|(_, t)| t.msp_id.as_str() == "small").map(|(i, _)| i).collect();
        assert_eq!(small, vec![1, 3, 5], "{:?}", names(&order[..8]));
    }

    #[test]
    fn every_tenant_appears_once_and_the_rotation_moves_who_goes_last() {
        let mut all = tenants("msp-a", 7);
        all.extend(tenants("msp-b", 5));
        let mut last = std::collections::BTreeSet::new();
        for rotation in 0..7 {
            let order = fair_order(&all, rotation);
            let mut seen = names(&order);
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), 12);
            last.insert(names(&order).pop().unwrap());
        }
        assert!(last.len() >= 5, "the last place changes from tick to tick: {last:?}");
    }

    #[test]
    fn every_tenants_first_stream_is_sent_before_any_tenants_second() {
        let all = tenants("msp-a", 4);
        let streams = vec![AuditStream::Content(ContentType::Exchange), AuditStream::GraphAlerts];
        let jobs = stream_jobs(&all, 1, |t| if t.tenant_id == all[2].tenant_id { vec![streams[0]] } else { streams.clone() });
        let kinds: Vec<AuditStream> = jobs
            .iter()
            .map(|job| match job {
                PollJob::Stream { stream, .. } => *stream,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(kinds.len(), 7, "a tenant's own narrower list of streams is kept");
        // Rotation 1 puts each two-stream tenant's second stream first.
        assert_eq!(kinds[..4].iter().filter(|s| **s == streams[1]).count(), 3, "{kinds:?}");
        assert!(kinds[4..].iter().all(|s| *s == streams[0]), "{kinds:?}");
    }

    #[test]
    fn the_stream_polled_last_changes_from_tick_to_tick() {
        let all = tenants("msp-a", 3);
        let last: std::collections::BTreeSet<String> = (0..6)
            .map(|rotation| match stream_jobs(&all, rotation, |_| AuditStream::all()).pop() {
                Some(PollJob::Stream { stream, .. }) => stream.to_string(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(last.len(), 6, "{last:?}");
    }
}
