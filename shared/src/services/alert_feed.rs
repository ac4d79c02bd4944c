//! Time-ordered reads of an MSP's alerts over the change index ([`crate::changes`]): the SIEM
//! feed (every alert created or changed after a cursor, oldest change first) and the alert list
//! (newest change first, filtered, never reading the whole partition), with the opaque cursors
//! the API hands out.
//!
//! **The feed's guarantee.** Each alert write is stamped with the writer's clock at the moment
//! it writes, and the feed only returns changes stamped more than [`SETTLE_WINDOW`] before the
//! reader's clock. A change can therefore be passed over only if it became visible in the index
//! more than the settle window after its stamp: a write that took longer than that from stamp
//! to commit (every function that writes alerts times out after 30 s), clocks further apart than
//! that (Lambda hosts keep NTP time, milliseconds apart), or the GSI lagging the table by that
//! much (normally well under a second). Within those bounds a consumer that polls with the
//! cursor it was last given sees every alert change, in the order of the stamps, at least once:
//! an alert changed several times between two polls appears once, as it is after its last
//! change; one changed after a poll appears again in a later poll. Nothing is held back longer
//! than the settle window.
//!
//! **Cursors** are opaque to callers: hex of `v1`, the cursor's use (feed or list), the MSP id
//! and the last change key read. A cursor carries no authority (it only says where to continue
//! in the caller's own index), and one that is malformed, made for the other use or for another
//! MSP is refused.

use super::admin::AdminError;
use super::tuning::{AlertFilter, TuningService};
use crate::alert::Alert;
use crate::changes::{AlertSelection, ChangeKey, ChangeQuery, ChangedAlert};
use crate::ids::MspId;
use chrono::{DateTime, Duration, Utc};

/// How long a change is held back from the feed after its stamp (see the module docs).
pub const SETTLE_WINDOW: Duration = Duration::seconds(60);
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

/// Encodes a position for `msp_id`; `None` is the start.
#[must_use]
pub fn encode_cursor(use_: CursorUse, msp_id: &MspId, key: Option<&ChangeKey>) -> String {
    let text = format!("v1\n{}\n{msp_id}\n{}", use_.tag(), key.map_or("", ChangeKey::as_str));
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Reads a cursor made by [`encode_cursor`] for this MSP and use.
///
/// # Errors
/// When it is malformed, for another MSP or for another use.
pub fn decode_cursor(raw: &str, use_: CursorUse, msp_id: &MspId) -> Result<Option<ChangeKey>, CursorError> {
    if raw.len() > 512 || raw.len() % 2 != 0 {
        return Err(CursorError::Malformed);
    }
    let bytes = (0..raw.len())
        .step_by(2)
        .map(|i| raw.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .ok_or(CursorError::Malformed)?;
    let text = String::from_utf8(bytes).map_err(|_| CursorError::Malformed)?;
    let mut parts = text.split('\n');
    let (Some("v1"), Some(tag), Some(msp), Some(key), None) = (parts.next(), parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(CursorError::Malformed);
    };
    let key = if key.is_empty() { None } else { Some(ChangeKey::parse(key).ok_or(CursorError::Malformed)?) };
    if MspId::parse(msp).is_err() || !matches!(tag, "feed" | "list") {
        return Err(CursorError::Malformed);
    }
    if msp != msp_id.as_str() {
        return Err(CursorError::OtherMsp);
    }
    if tag != use_.tag() {
        return Err(CursorError::OtherUse);
    }
    Ok(key)
}

/// One poll of the feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedPage {
    /// Oldest change first.
    pub alerts: Vec<ChangedAlert>,
    /// Poll again with this, whether or not anything came (it never goes backwards).
    pub next_cursor: String,
    /// Changes stamped before this are all in or before this page.
    pub settled_until: DateTime<Utc>,
    /// More settled changes are waiting: poll again straight away.
    pub more: bool,
}

impl TuningService {
    /// The MSP's alerts changed after `after` (the start when `None`) and more than `settle`
    /// ago, oldest change first, at most `limit` (1 to [`FEED_MAX`]).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn alert_changes(
        &self,
        msp_id: &MspId,
        after: Option<ChangeKey>,
        limit: usize,
        settle: Duration,
    ) -> Result<FeedPage, AdminError> {
        let settled_until = self.clock.now() - settle;
        let query = ChangeQuery {
            newest_first: false,
            after: after.clone(),
            changed_before: Some(settled_until),
            read: limit.clamp(1, FEED_MAX),
            ..ChangeQuery::default()
        };
        let page = self.alerts.alerts_by_change(msp_id, &query).await?;
        let position = page.last_read.or(after);
        Ok(FeedPage {
            alerts: page.alerts,
            next_cursor: encode_cursor(CursorUse::Feed, msp_id, position.as_ref()),
            settled_until,
            more: page.more,
        })
    }

    /// Alerts passing `filter`, newest change first, `limit` at a time (1 to 100); `after`
    /// continues a previous page. Status, severity and tenant are applied while the index is
    /// read; the rest on what it returns. One call looks at no more than [`LIST_READ_BUDGET`]
    /// index entries, so a page may be short, and the next position is returned whenever the
    /// index may hold more.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn alerts(
        &self,
        msp_id: &MspId,
        filter: &AlertFilter,
        limit: usize,
        after: Option<ChangeKey>,
    ) -> Result<(Vec<Alert>, Option<ChangeKey>), AdminError> {
        let limit = limit.clamp(1, 100);
        let mut query = ChangeQuery {
            newest_first: true,
            after,
            changed_before: None,
            changed_since: filter.from.map(|from| from - LAST_SEEN_MARGIN),
            selection: AlertSelection { status: filter.status, severity: filter.severity, tenant: filter.tenant.clone() },
            read: 0,
        };
        let mut found = Vec::new();
        let mut looked_at = 0;
        loop {
            query.read = (LIST_READ_BUDGET - looked_at).min(4 * limit).max(1);
            let page = self.alerts.alerts_by_change(msp_id, &query).await?;
            looked_at += page.read.max(1);
            for entry in page.alerts {
                if filter.accepts(&entry.alert) {
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
        let cursor = encode_cursor(CursorUse::Feed, &msp("acme"), Some(&key));
        assert_eq!(decode_cursor(&cursor, CursorUse::Feed, &msp("acme")), Ok(Some(key)));
        assert_eq!(decode_cursor(&cursor, CursorUse::Feed, &msp("other")), Err(CursorError::OtherMsp));
        assert_eq!(decode_cursor(&cursor, CursorUse::List, &msp("acme")), Err(CursorError::OtherUse));
        let start = encode_cursor(CursorUse::List, &msp("acme"), None);
        assert_eq!(decode_cursor(&start, CursorUse::List, &msp("acme")), Ok(None));
    }

    #[test]
    fn malformed_cursors_are_refused() {
        let tampered = encode_cursor(CursorUse::Feed, &msp("acme"), None) + "2023";
        let not_a_key = "v1\nfeed\nacme\nyesterday".bytes().map(|b| format!("{b:02x}")).collect::<String>();
        for raw in ["", "zz", "abc", "0123456789abcdef01234567", tampered.as_str(), not_a_key.as_str(), &"00".repeat(300)] {
            assert_eq!(decode_cursor(raw, CursorUse::Feed, &msp("acme")), Err(CursorError::Malformed), "{raw}");
        }
    }
}
