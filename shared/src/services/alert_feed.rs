//! Time-ordered reads of an MSP's alerts over the change index ([`crate::changes`]): the SIEM
//! feed (every alert created or changed after a cursor, oldest change first) and the alert list
//! (newest change first, filtered, never reading the whole partition), with the opaque cursors
//! the API hands out.
//!
//! **The feed's guarantee.** Each alert write is stamped with the writer's clock at the moment
//! it writes ([`crate::changes`]). A write may become visible in the index a little after its
//! stamp — a slow commit, clocks a little apart, the GSI trailing the table — so a reader that
//! simply continued after the last key it returned could pass over a change stamped before that
//! key but committed after the read. The feed therefore re-reads an overlap: when a poll
//! catches up, the next poll starts again from [`OVERLAP`] before the time of the first poll of
//! that catch-up (never before where that one started). Within those bounds — a write visible
//! in the index less than [`OVERLAP`] after its stamp (every function that writes alerts times
//! out after 30 s; Lambda hosts keep NTP time; the GSI normally trails by well under a second)
//! — a consumer that polls with the cursor it was last given sees every alert change at least
//! once. Each page is in stamp order. An alert changed several times between two polls appears
//! once, as it is after its last change; a change already returned comes again in the polls
//! made within [`OVERLAP`] of it (consumers deduplicate on `id` + `version`). Nothing is held
//! back: an alert changed every few seconds still appears in every poll.
//!
//! (Holding back the last minute instead — returning only changes older than the window — would
//! never return an alert that keeps changing more often than the window.)
//!
//! **Cursors** are opaque to callers: hex of `v1`, the cursor's use (feed or list), the MSP id,
//! the last change key read and, for the feed in the middle of a catch-up, where the overlap
//! starts. A cursor carries no authority (it only says where to continue in the caller's own
//! index), and one that is malformed, made for the other use or for another MSP is refused.

use super::admin::AdminError;
use super::tuning::{AlertFilter, TuningService};
use crate::access::{Access, Permission};
use crate::alert::Alert;
use crate::changes::{AlertSelection, ChangeKey, ChangeQuery, ChangedAlert};
use crate::ids::MspId;
use chrono::{DateTime, Duration, Utc};

/// How far back a caught-up feed reads again (see the module docs).
pub const OVERLAP: Duration = Duration::seconds(60);
/// Most alerts the feed returns at once.
pub const FEED_MAX: usize = 500;
/// Index entries one list request looks at, at most, before it returns what it found (a page
/// may hold fewer alerts than asked for, with a cursor to continue).
pub const LIST_READ_BUDGET: usize = 1000;
/// How far before a list's `from` (last seen) the index is read: an alert is stamped when it
/// is written, never before its newest record happened, except by clock differences with
/// Microsoft.
const LAST_SEEN_MARGIN: Duration = Duration::hours(1);

/// What a cursor is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorUse {
    /// `GET /v1/siem/alerts`.
    Feed,
    /// `GET /v1/alerts`.
    List,
}

impl CursorUse {
    fn tag(self) -> &'static str {
        match self {
            Self::Feed => "feed",
            Self::List => "list",
        }
    }
}

/// Why a cursor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("the cursor is not one this API returned")]
    Malformed,
    #[error("the cursor belongs to another API key's organisation")]
    OtherMsp,
    #[error("the cursor was returned by another route")]
    OtherUse,
}

/// Where a read of the change index continues.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    /// Continue after this key; `None`: from the start.
    pub after: Option<ChangeKey>,
    /// The feed only, in the middle of a catch-up: where the next catch-up starts.
    pub overlap_from: Option<ChangeKey>,
}

impl Position {
    /// Continue after `key`.
    #[must_use]
    pub fn after(key: ChangeKey) -> Self {
        Self { after: Some(key), overlap_from: None }
    }
}

/// Encodes a position for `msp_id`.
#[must_use]
pub fn encode_cursor(use_: CursorUse, msp_id: &MspId, position: &Position) -> String {
    let key = |k: &Option<ChangeKey>| k.as_ref().map_or(String::new(), |k| k.as_str().to_owned());
    let text = format!("v1\n{}\n{msp_id}\n{}\n{}", use_.tag(), key(&position.after), key(&position.overlap_from));
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Reads a cursor made by [`encode_cursor`] for this MSP and use.
///
/// # Errors
/// When it is malformed, for another MSP or for another use.
pub fn decode_cursor(raw: &str, use_: CursorUse, msp_id: &MspId) -> Result<Position, CursorError> {
    if raw.len() > 600 || raw.len() % 2 != 0 {
        return Err(CursorError::Malformed);
    }
    let bytes = (0..raw.len())
        .step_by(2)
        .map(|i| raw.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .ok_or(CursorError::Malformed)?;
    let text = String::from_utf8(bytes).map_err(|_| CursorError::Malformed)?;
    let parts: Vec<&str> = text.split('\n').collect();
    let [version, tag, msp, after, overlap_from] = parts.as_slice() else { return Err(CursorError::Malformed) };
    let key = |raw: &str| if raw.is_empty() { Ok(None) } else { ChangeKey::parse(raw).map(Some).ok_or(CursorError::Malformed) };
    let position = Position { after: key(after)?, overlap_from: key(overlap_from)? };
    if *version != "v1" || MspId::parse(msp).is_err() || !matches!(*tag, "feed" | "list") {
        return Err(CursorError::Malformed);
    }
    if *msp != msp_id.as_str() {
        return Err(CursorError::OtherMsp);
    }
    if *tag != use_.tag() {
        return Err(CursorError::OtherUse);
    }
    if use_ == CursorUse::List && position.overlap_from.is_some() {
        return Err(CursorError::Malformed);
    }
    Ok(position)
}

/// One poll of the feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedPage {
    /// In stamp order.
    pub alerts: Vec<ChangedAlert>,
    /// Poll again with this, whether or not anything came.
    pub next_cursor: String,
    /// The page was cut at the limit: poll again straight away.
    pub more: bool,
}

impl TuningService {
    /// The MSP's alerts changed after `position` (and before `until`, for pollers that read
    /// time windows), in stamp order, at most `limit` (1 to [`FEED_MAX`]); a caught-up feed
    /// reads `overlap` again (see the module docs).
    ///
    /// Alerts of categories the caller does not see are left out (the cursor still moves past
    /// them).
    ///
    /// # Errors
    /// Forbidden without alerts:read; when the store fails.
    pub async fn alert_changes(
        &self,
        access: &Access,
        position: Position,
        until: Option<DateTime<Utc>>,
        limit: usize,
        overlap: Duration,
    ) -> Result<FeedPage, AdminError> {
        let msp_id = access.permit(Permission::AlertsRead)?;
        let now = self.clock.now();
        // The next catch-up starts where this one started, or `overlap` before its first poll,
        // whichever is later.
        let overlap_from = position.overlap_from.clone().unwrap_or_else(|| {
            let recent = ChangeKey::start_of(now - overlap);
            position.after.clone().map_or(recent.clone(), |after| after.max(recent))
        });
        let query = ChangeQuery {
            newest_first: false,
            after: position.after.clone(),
            changed_before: until,
            read: limit.clamp(1, FEED_MAX),
            ..ChangeQuery::default()
        };
        let mut page = self.alerts.alerts_by_change(msp_id, &query).await?;
        page.alerts.retain(|entry| access.sees(entry.alert.category));
        let next = if page.more {
            Position { after: page.last_read.or(position.after), overlap_from: Some(overlap_from) }
        } else {
            Position::after(overlap_from)
        };
        Ok(FeedPage { alerts: page.alerts, next_cursor: encode_cursor(CursorUse::Feed, msp_id, &next), more: page.more })
    }

    /// Alerts passing `filter`, newest change first, `limit` at a time (1 to 100); `after`
    /// continues a previous page. A tenant is read from its own index (other tenants' entries
    /// are never looked at); status and severity are applied while the index is read; the rest
    /// on what it returns. Without filters of the second kind the first read asks for exactly
    /// one page. One call looks at no more than [`LIST_READ_BUDGET`] index entries (of the
    /// tenant, when one is given), so a page may be short, and the next position is returned
    /// whenever the index may hold more. Alerts of categories the caller does not see are never
    /// returned.
    ///
    /// # Errors
    /// Forbidden without alerts:read; when the store fails.
    pub async fn alerts(
        &self,
        access: &Access,
        filter: &AlertFilter,
        limit: usize,
        after: Option<ChangeKey>,
    ) -> Result<(Vec<Alert>, Option<ChangeKey>), AdminError> {
        let msp_id = access.permit(Permission::AlertsRead)?;
        let limit = limit.clamp(1, 100);
        let mut query = ChangeQuery {
            newest_first: true,
            after,
            changed_before: None,
            changed_since: filter.from.map(|from| from - LAST_SEEN_MARGIN),
            selection: AlertSelection { status: filter.status, severity: filter.severity, tenant: filter.tenant.clone() },
            read: 0,
        };
        // When the store applies every filter there is (and the caller sees every category), a
        // full page needs exactly `limit` entries read: ask for that first, so the first page of
        // a queue costs one page of reads. Filters applied here may drop entries: read ahead.
        let exact = filter.category.is_none()
            && filter.policy.is_none()
            && filter.mode.is_none()
            && filter.from.is_none()
            && filter.to.is_none()
            && access.sees_every_category();
        let mut found = Vec::new();
        let mut looked_at = 0;
        loop {
            let ahead = if exact && looked_at == 0 { limit } else { 4 * limit };
            query.read = (LIST_READ_BUDGET - looked_at).min(ahead).max(1);
            let page = self.alerts.alerts_by_change(msp_id, &query).await?;
            looked_at += page.read.max(1);
            for entry in page.alerts {
                if filter.accepts(&entry.alert) && access.sees(entry.alert.category) {
                    found.push(entry.alert);
                    if found.len() == limit {
                        return Ok((found, Some(entry.key)));
                    }
                }
            }
            if !page.more || page.last_read.is_none() {
                return Ok((found, None));
            }
            query.after = page.last_read;
            if looked_at >= LIST_READ_BUDGET {
                return Ok((found, query.after));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msp(id: &str) -> MspId {
        MspId::parse(id).unwrap()
    }

    #[test]
    fn a_cursor_reads_back_only_for_its_msp_and_use() {
        let key = ChangeKey::new(Utc::now(), &crate::ids::AlertId::derive(&["a"]));
        let position = Position { after: Some(key.clone()), overlap_from: Some(ChangeKey::start_of(Utc::now())) };
        let cursor = encode_cursor(CursorUse::Feed, &msp("acme"), &position);
        assert_eq!(decode_cursor(&cursor, CursorUse::Feed, &msp("acme")), Ok(position));
        assert_eq!(decode_cursor(&cursor, CursorUse::Feed, &msp("other")), Err(CursorError::OtherMsp));
        assert_eq!(decode_cursor(&cursor, CursorUse::List, &msp("acme")), Err(CursorError::OtherUse));
        let list = encode_cursor(CursorUse::List, &msp("acme"), &Position::after(key.clone()));
        assert_eq!(decode_cursor(&list, CursorUse::List, &msp("acme")), Ok(Position::after(key)));
        let start = encode_cursor(CursorUse::Feed, &msp("acme"), &Position::default());
        assert_eq!(decode_cursor(&start, CursorUse::Feed, &msp("acme")), Ok(Position::default()));
    }

    #[test]
    fn malformed_cursors_are_refused() {
        let hex = |text: &str| text.bytes().map(|b| format!("{b:02x}")).collect::<String>();
        let tampered = encode_cursor(CursorUse::Feed, &msp("acme"), &Position::default()) + "2023";
        let not_a_key = hex("v1\nfeed\nacme\nyesterday\n");
        let list_with_overlap = hex(&format!("v1\nlist\nacme\n\n{}", ChangeKey::start_of(Utc::now()).as_str()));
        let too_long = "00".repeat(301);
        for raw in ["", "zz", "abc", "0123456789abcdef01234567", &tampered, &not_a_key, &too_long, &hex("v2\nfeed\nacme\n\n")] {
            assert_eq!(decode_cursor(raw, CursorUse::Feed, &msp("acme")), Err(CursorError::Malformed), "{raw}");
        }
        assert_eq!(decode_cursor(&list_with_overlap, CursorUse::List, &msp("acme")), Err(CursorError::Malformed));
    }

    #[tokio::test]
    async fn a_caught_up_feed_reads_the_overlap_again_and_then_moves_past_it() {
        use crate::alert::AlertHits;
        use crate::clock::ManualClock;
        use crate::ids::{RecordId, TenantId};
        use crate::memory::{MemoryAlertStore, MemoryConfigStore, MemoryPolicyStore, MemoryQueue};
        use crate::ports::AlertStore;
        use std::sync::Arc;

        let alerts = Arc::new(MemoryAlertStore::default());
        let clock = Arc::new(ManualClock::at(Utc::now()));
        let tuning = TuningService {
            config: Arc::new(MemoryConfigStore::default()),
            policies: Arc::new(MemoryPolicyStore::default()),
            alerts: alerts.clone(),
            tickets: Arc::new(MemoryQueue::default()),
            clock: clock.clone(),
            audit: crate::services::access::AuditTrail {
                log: Arc::new(crate::memory::MemoryConfigStore::default()),
                clock: Arc::new(crate::clock::SystemClock),
            },
        };
        let (acme, tenant) = (msp("acme"), TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap());
        let alert = crate::contract::sample_alert_for(&acme, &tenant, Utc::now());
        alerts.record_hits(&AlertHits::of_records(alert, vec![(RecordId::parse("r1").unwrap(), Utc::now())]), Utc::now()).await.unwrap();
        let poll = |cursor: Option<String>| {
            let tuning = &tuning;
            let acme = acme.clone();
            async move {
                let position = cursor.map(|c| decode_cursor(&c, CursorUse::Feed, &acme).unwrap()).unwrap_or_default();
                tuning.alert_changes(&crate::access::Access::operator(&acme), position, None, 10, OVERLAP).await.unwrap()
            }
        };
        let first = poll(None).await;
        assert_eq!(first.alerts.len(), 1, "nothing is held back");
        let again = poll(Some(first.next_cursor.clone())).await;
        assert_eq!(again.alerts, first.alerts, "within the overlap, a change comes again (same version)");
        clock.advance(Duration::minutes(2));
        let after_overlap = poll(Some(again.next_cursor)).await;
        assert_eq!(after_overlap.alerts.len(), 1, "the poll that leaves the overlap reads it one last time");
        assert!(poll(Some(after_overlap.next_cursor)).await.alerts.is_empty(), "then the feed has moved past it");
    }
}
