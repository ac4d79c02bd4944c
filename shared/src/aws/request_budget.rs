//! [`RequestBudget`] on DynamoDB: a destination's requests over the rolling hour, shared by
//! every Lambda that calls the destination.
//!
//! **Layout.** One item per (MSP, destination), pk `MSP#{msp}#BUDGET#{destination}`, sk
//! `WINDOW`, on the alerts table (the ticket dispatcher already reads and writes it; TTL
//! `expires_at` two hours after the last grant). It holds `buckets`, a map from the start of
//! each UTC minute (epoch seconds) to the requests granted in it, and a `version`.
//!
//! **Algorithm.** `take` reads the item (consistently), counts every bucket any part of which
//! lies in the hour before `now` (a bucket counts until its *end* is an hour old, so the count
//! never misses a grant; it may hold a request back up to a minute longer than needed), and
//! when `count + requests <= per_hour` writes the item back with the current minute's bucket
//! raised, buckets that left the hour dropped, and the version raised — conditioned on the
//! version it read. A lost condition means another caller granted in between: read again
//! and decide again (with jitter, a bounded number of times). A full budget writes nothing.
//!
//! **Guarantee.** Every grant is a conditional write on the one item, so grants are
//! serialised: each decision is made on exactly the counts it replaces, and no two callers
//! can both take the last request. (Per-minute counter items with a conditional `ADD` on the
//! current minute only would let two callers on either side of a minute boundary each see
//! the other's bucket before the other's write, and both be granted the last request.)
//!
//! **Waiting.** Exhausted, the caller waits until enough of the oldest buckets have left the
//! hour for `requests` to fit (at least a second).

use super::dynamodb::{Item, get, jitter, key, n, store_error};
use crate::error::StoreError;
use crate::ids::{DestinationId, MspId};
use crate::ports::{BudgetGrant, RequestBudget};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

const BUCKET_SECONDS: i64 = 60;
const HOUR_MS: i64 = 3_600_000;
/// How long an untouched budget item is kept (TTL): past the hour it counts, with margin.
const RETENTION_SECONDS: i64 = 2 * 3_600;
/// How often a caller that lost a race reads and decides again before giving up
/// ([`StoreError::Unavailable`]: the request is not made, the message is retried later).
const ATTEMPTS: u32 = 25;

/// [`RequestBudget`] on a DynamoDB table with `pk`/`sk` keys and TTL on `expires_at`.
#[derive(Debug, Clone)]
pub struct DynamoRequestBudget {
    client: Client,
    table: String,
}

impl DynamoRequestBudget {
    /// A budget kept on `table` (the alerts table).
    #[must_use]
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

/// Requests granted per minute bucket (start, epoch seconds), as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Window {
    buckets: BTreeMap<i64, u64>,
    version: u64,
}

impl Window {
    fn from_item(item: Option<&Item>) -> Result<Self, StoreError> {
        let Some(item) = item else { return Ok(Self::default()) };
        let corrupt = |reason: &str| StoreError::Corrupt { what: "request budget".into(), reason: reason.to_owned() };
        let number = |value: &AttributeValue| value.as_n().ok().and_then(|v| v.parse::<u64>().ok());
        let version = item.get("version").and_then(number).ok_or_else(|| corrupt("version missing"))?;
        let mut buckets = BTreeMap::new();
        if let Some(map) = item.get("buckets") {
            for (start, count) in map.as_m().map_err(|_| corrupt("buckets is not a map"))? {
                let start = start.parse::<i64>().map_err(|_| corrupt("bucket start is not a number"))?;
                buckets.insert(start, number(count).ok_or_else(|| corrupt("bucket count is not a number"))?);
            }
        }
        Ok(Self { buckets, version })
    }

    /// Whether the bucket starting at `start` still has a part in the hour before `now_ms`.
    fn counts(start: i64, now_ms: i64) -> bool {
        (start + BUCKET_SECONDS) * 1000 > now_ms - HOUR_MS
    }

    /// Only the buckets that still count at `now_ms`.
    fn within_hour(mut self, now_ms: i64) -> Self {
        self.buckets.retain(|start, _| Self::counts(*start, now_ms));
        self
    }

    fn total(&self) -> u64 {
        self.buckets.values().sum()
    }

    /// How long until `requests` fit in `per_hour`: until enough of the oldest buckets have
    /// left the hour (all of them, if even an empty hour is too small).
    fn wait_for(&self, requests: u64, per_hour: u64, now_ms: i64) -> std::time::Duration {
        let mut remaining = self.total();
        let mut leaves_ms = now_ms + HOUR_MS;
        for (start, count) in &self.buckets {
            remaining -= count;
            leaves_ms = (start + BUCKET_SECONDS) * 1000 + HOUR_MS;
            if remaining + requests <= per_hour {
                break;
            }
        }
        let wait_ms = u64::try_from(leaves_ms - now_ms).unwrap_or(0).max(1000);
        std::time::Duration::from_millis(wait_ms)
    }
}

fn budget_key(msp_id: &MspId, destination: &DestinationId) -> Item {
    key(format!("MSP#{msp_id}#BUDGET#{destination}"), "WINDOW".into())
}

impl DynamoRequestBudget {
    /// Writes `window` as the version after `read_version`; `false` when another caller wrote
    /// first.
    async fn write(&self, item_key: Item, window: &Window, read_version: u64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let buckets =
            window.buckets.iter().map(|(start, count)| (start.to_string(), n(i64::try_from(*count).unwrap_or(i64::MAX)))).collect();
        let mut item = item_key;
        item.insert("buckets".into(), AttributeValue::M(buckets));
        item.insert("version".into(), n(i64::try_from(read_version + 1).unwrap_or(i64::MAX)));
        item.insert("expires_at".into(), n(now.timestamp() + RETENTION_SECONDS));
        let request = self.client.put_item().table_name(&self.table).set_item(Some(item));
        let request = if read_version == 0 {
            request.condition_expression("attribute_not_exists(pk)")
        } else {
            request
                .condition_expression("version = :read")
                .expression_attribute_values(":read", n(i64::try_from(read_version).unwrap_or(i64::MAX)))
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(error) if super::dynamodb::condition_failed(&error) => Ok(false),
            Err(error) => Err(store_error("take from request budget", error)),
        }
    }
}

#[async_trait]
impl RequestBudget for DynamoRequestBudget {
    async fn take(
        &self,
        msp_id: &MspId,
        destination: &DestinationId,
        requests: u32,
        per_hour: u32,
        now: DateTime<Utc>,
    ) -> Result<BudgetGrant, StoreError> {
        if requests == 0 {
            return Ok(BudgetGrant::Granted);
        }
        let item_key = budget_key(msp_id, destination);
        let now_ms = now.timestamp_millis();
        let current_bucket = now.timestamp().div_euclid(BUCKET_SECONDS) * BUCKET_SECONDS;
        for attempt in 1..=ATTEMPTS {
            let stored = get(&self.client, &self.table, item_key.clone(), "read request budget").await?;
            let read = Window::from_item(stored.as_ref())?;
            let read_version = read.version;
            let mut window = read.within_hour(now_ms);
            if window.total() + u64::from(requests) > u64::from(per_hour) {
                return Ok(BudgetGrant::Exhausted { retry_after: window.wait_for(u64::from(requests), u64::from(per_hour), now_ms) });
            }
            *window.buckets.entry(current_bucket).or_default() += u64::from(requests);
            if self.write(item_key.clone(), &window, read_version, now).await? {
                return Ok(BudgetGrant::Granted);
            }
            jitter(10 * u64::from(attempt.min(10))).await;
        }
        Err(StoreError::Unavailable(format!("request budget of {msp_id}/{destination}: too many concurrent callers")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_767_600_000; // a minute boundary

    fn window(buckets: &[(i64, u64)]) -> Window {
        Window { buckets: buckets.iter().copied().collect(), version: 1 }
    }

    #[test]
    fn a_bucket_counts_until_its_end_is_an_hour_old() {
        let now_ms = (T + 3_600) * 1000;
        assert!(!Window::counts(T - 60, now_ms), "ended exactly an hour ago");
        assert!(Window::counts(T, now_ms), "its end is still within the hour");
        assert_eq!(window(&[(T - 120, 3), (T - 60, 2), (T, 1)]).within_hour(now_ms).total(), 1);
    }

    #[test]
    fn the_wait_lasts_until_enough_of_the_oldest_requests_leave_the_hour() {
        let now_ms = (T + 1_800) * 1000;
        let full = window(&[(T, 4), (T + 600, 6)]);
        assert_eq!(full.wait_for(1, 10, now_ms), std::time::Duration::from_secs(1_800 + 60), "the first bucket frees room");
        assert_eq!(full.wait_for(5, 10, now_ms), std::time::Duration::from_secs(2_400 + 60), "five need the second bucket too");
        assert_eq!(window(&[]).wait_for(11, 10, now_ms), std::time::Duration::from_secs(3_600), "more than the share never fits");
        let leaving = window(&[(T - 3_600 + 1, 10)]);
        assert_eq!(leaving.wait_for(1, 10, (T + 60) * 1000), std::time::Duration::from_secs(1), "never less than a second");
    }
}
