//! [`RateLimiter`] on DynamoDB: one counter item per (MSP, caller, route class, window), pk
//! `MSP#{msp}#RATE#{caller}#{class}`, sk `WINDOW#{start epoch s}`, on the alerts table beside
//! the request budgets, expiring (TTL `expires_at`) an hour after its window. A request is one
//! conditional `ADD`: it counts only while the window has counted fewer than the limit, so
//! concurrent instances of the API never admit more than the limit per window.

use super::dynamodb::{key, n, store_error};
use crate::error::StoreError;
use crate::ids::MspId;
use crate::ports::{RateDecision, RateLimiter, rate_window};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Duration, Utc};

/// [`RateLimiter`] on a table with `pk`/`sk` keys and TTL on `expires_at`.
#[derive(Debug, Clone)]
pub struct DynamoRateLimiter {
    client: Client,
    table: String,
}

impl DynamoRateLimiter {
    /// Counters kept on `table` (the alerts table).
    #[must_use]
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

#[async_trait]
impl RateLimiter for DynamoRateLimiter {
    async fn admit(
        &self,
        msp_id: &MspId,
        caller: &str,
        class: &str,
        limit: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<RateDecision, StoreError> {
        let (start, retry_after) = rate_window(window, now);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("MSP#{msp_id}#RATE#{caller}#{class}"), format!("WINDOW#{start}"))))
            .update_expression("ADD hits :one SET expires_at = :expires")
            .condition_expression("attribute_not_exists(hits) OR hits < :limit")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(i64::from(limit)))
            .expression_attribute_values(":expires", n(start + window.num_seconds().max(1) + 3_600))
            .send()
            .await;
        match result {
            Ok(_) => Ok(RateDecision::Allowed),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Ok(RateDecision::Limited { retry_after })
            }
            Err(error) => Err(store_error("count request", error)),
        }
    }
}
