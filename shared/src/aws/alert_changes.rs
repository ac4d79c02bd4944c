//! The change indexes of alerts on DynamoDB ([`crate::changes`]).
//!
//! **Layout.** Every alert item carries `changed` = `{write time, ms}#{alert id}` and
//! `tenant_changes` = `MSP#{msp}#TENANT#{tenant}`, both written by each alert write
//! (`DynamoAlertStore::alert_item`). Two GSIs of the alerts table, projecting all attributes,
//! are sorted by `changed`: `by-change`, keyed `pk` (`MSP#{msp}`, the MSP's partition), holds
//! all of an MSP's alerts; `by-tenant-change`, keyed `tenant_changes`, holds one tenant's (the
//! key starts with the MSP id, so a tenant id known to two MSPs makes two partitions). Only
//! alert items have these attributes, so the indexes hold alerts and nothing else (deliveries,
//! index entries, budgets and daily places share the partition but not the indexes).
//!
//! **Reads.** One Query per call: on `by-tenant-change` when the selection names a tenant
//! (`tenant_changes = MSP#{msp}#TENANT#{tenant} AND changed BETWEEN lo AND hi`), else on
//! `by-change` (`pk = MSP#{msp} AND changed BETWEEN lo AND hi`), where the bounds come from the
//! query's times and its `after` key, in the requested direction, with `Limit` = entries to look
//! at and status and severity as a FilterExpression. The tenant is applied by key, so a read
//! looks only at that tenant's entries, however many the MSP's other tenants have; filtered
//! reads cost what they look at, never the whole partition. The GSIs are eventually
//! consistent: a write shows up in them within about a second (the feed's settle window is far
//! longer).
//!
//! **Backfill.** Alerts written before an index existed lack its attribute:
//! [`DynamoAlertStore::index_earlier_alerts`] stamps `changed` from their `updated_at` and
//! `tenant_changes` from their MSP and tenant, whichever is missing.

use super::alert_store::DynamoAlertStore;
use super::dynamodb::{Item, from_item, msp_pk, n, s, scan_prefixes, store_error, text};
use crate::alert::Alert;
use crate::changes::{self, ChangeKey, ChangePage, ChangeQuery, ChangedAlert};
use crate::error::StoreError;
use crate::ids::{MspId, TenantId};

/// The attribute holding an alert's change key.
pub(super) const CHANGED: &str = "changed";
/// The GSI over (`pk`, `changed`): an MSP's alerts.
pub(super) const CHANGE_INDEX: &str = "by-change";
/// The attribute keying an alert in its tenant's change index ([`tenant_changes_key`]).
pub(super) const TENANT_CHANGES: &str = "tenant_changes";
/// The GSI over (`tenant_changes`, `changed`): one tenant's alerts.
pub(super) const TENANT_CHANGE_INDEX: &str = "by-tenant-change";

/// The partition of a tenant's alerts in [`TENANT_CHANGE_INDEX`]: `MSP#{msp}#TENANT#{tenant}`.
pub(super) fn tenant_changes_key(msp_id: &MspId, tenant_id: &TenantId) -> String {
    format!("{}#TENANT#{tenant_id}", msp_pk(msp_id))
}

/// Sorts before every key (keys start with a digit).
const LOWEST: &str = "0";
/// Sorts after every key.
const HIGHEST: &str = "~";

impl DynamoAlertStore {
    pub(super) async fn read_changes(&self, msp_id: &MspId, query: &ChangeQuery) -> Result<ChangePage, StoreError> {
        let after = query.after.as_ref().map(ChangeKey::as_str);
        let Some((lo, hi)) = key_range(query) else {
            return Ok(ChangePage::default());
        };
        let read = query.read.clamp(1, changes::MAX_READ);
        // A tenant is read from its own index, so no other tenant's entry is looked at.
        let (index, partition, key) = match &query.selection.tenant {
            Some(tenant) => (TENANT_CHANGE_INDEX, TENANT_CHANGES, tenant_changes_key(msp_id, tenant)),
            None => (CHANGE_INDEX, "pk", msp_pk(msp_id)),
        };
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression(format!("{partition} = :key AND changed BETWEEN :lo AND :hi"))
            .expression_attribute_values(":key", s(key))
            .expression_attribute_values(":lo", s(lo))
            .expression_attribute_values(":hi", s(hi))
            .scan_index_forward(!query.newest_first)
            .limit(i32::try_from(read + usize::from(after.is_some())).unwrap_or(i32::MAX));
        let mut filters = Vec::new();
        if let Some(status) = query.selection.status {
            filters.push("#status = :status");
            request = request.expression_attribute_names("#status", "status").expression_attribute_values(":status", enum_text(&status)?);
        }
        if let Some(severity) = query.selection.severity {
            filters.push("severity = :severity");
            request = request.expression_attribute_values(":severity", enum_text(&severity)?);
        }
        if !filters.is_empty() {
            request = request.filter_expression(filters.join(" AND "));
        }
        let output = request.send().await.map_err(|e| store_error("read alert changes", e))?;
        let mut alerts = Vec::with_capacity(output.items().len());
        for item in output.items() {
            let key = change_key(item)?;
            // The entry at `after` is looked at (counting against Limit: a filter may not name an
            // index key) but never returned.
            if Some(key.as_str()) != after {
                alerts.push(ChangedAlert { key, alert: from_item(item.clone(), "alert")? });
            }
        }
        let last_evaluated = output.last_evaluated_key().filter(|k| !k.is_empty());
        let last_read = match last_evaluated {
            Some(last) => Some(change_key(last)?),
            None => alerts.last().map(|a| a.key.clone()),
        };
        let scanned = usize::try_from(output.scanned_count()).unwrap_or(0);
        Ok(ChangePage {
            alerts,
            last_read,
            read: scanned.saturating_sub(usize::from(after.is_some())).min(read),
            more: last_evaluated.is_some(),
        })
    }

    /// Stamps alerts written before the change indexes existed (run once after deploying each,
    /// from `vigil-admin index-alerts`): each alert without `changed` gets the key of its
    /// `updated_at`, each without `tenant_changes` its tenant's key
    /// ([`Self::stamp_earlier_alert`]). One Scan of the alerts table; repeating it is harmless.
    /// Returns how many alerts were stamped.
    ///
    /// # Errors
    /// When the table cannot be read or written, or holds an alert it cannot read.
    pub async fn index_earlier_alerts(&self) -> Result<usize, StoreError> {
        let mut stamped = 0;
        for item in scan_prefixes(&self.client, &self.table, &["ALERT#"], "scan alerts").await? {
            if self.stamp_earlier_alert(item).await? {
                stamped += 1;
            }
        }
        Ok(stamped)
    }

    /// Stamps one alert item as the backfill's Scan read it with whichever of `changed` and
    /// `tenant_changes` it lacks, conditioned on it still lacking them and on its `version`: an
    /// alert written since the Scan was stamped by its own write and is left as it is. `true`
    /// when it was stamped.
    ///
    /// # Errors
    /// When the table cannot be written or the item is not an alert.
    pub async fn stamp_earlier_alert(&self, scanned: Item) -> Result<bool, StoreError> {
        let (lacks_change, lacks_tenant) = (!scanned.contains_key(CHANGED), !scanned.contains_key(TENANT_CHANGES));
        if !lacks_change && !lacks_tenant {
            return Ok(false);
        }
        let (pk, sk) = (text(&scanned, "pk")?.to_owned(), text(&scanned, "sk")?.to_owned());
        let alert: Alert = from_item(scanned, "alert")?;
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .expression_attribute_values(":version", n(i64::try_from(alert.version).unwrap_or(i64::MAX)));
        let (mut sets, mut conditions) = (Vec::new(), vec!["attribute_exists(pk)", "version = :version"]);
        if lacks_change {
            sets.push("changed = :changed");
            conditions.push("attribute_not_exists(changed)");
            request = request.expression_attribute_values(":changed", s(ChangeKey::new(alert.updated_at, &alert.id).as_str()));
        }
        if lacks_tenant {
            sets.push("tenant_changes = :tenant_changes");
            conditions.push("attribute_not_exists(tenant_changes)");
            request = request.expression_attribute_values(":tenant_changes", s(tenant_changes_key(&alert.msp_id, &alert.tenant_id)));
        }
        let result =
            request.update_expression(format!("SET {}", sets.join(", "))).condition_expression(conditions.join(" AND ")).send().await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(error) => Err(store_error("stamp alert", error)),
        }
    }
}

/// The `BETWEEN` bounds of a read, or `None` when no key can lie in its range (DynamoDB refuses
/// a `BETWEEN` whose lower bound is above its upper one, so such a read is never sent).
///
/// BETWEEN is inclusive: `after` itself is read (at most one entry) and dropped by the caller;
/// a time bound sorts before every key written at that time, so keys at `changed_before` fall
/// outside and keys at `changed_since` inside.
fn key_range(query: &ChangeQuery) -> Option<(String, String)> {
    let since = query.changed_since.map(changes::time_bound);
    let before = query.changed_before.map(changes::time_bound);
    let after = query.after.as_ref().map(ChangeKey::as_str);
    let (lo, hi) = if query.newest_first {
        (since.as_deref().unwrap_or(LOWEST), min(after, before.as_deref()).unwrap_or(HIGHEST))
    } else {
        (max(after, since.as_deref()).unwrap_or(LOWEST), before.as_deref().unwrap_or(HIGHEST))
    };
    (lo <= hi).then(|| (lo.to_owned(), hi.to_owned()))
}

fn change_key(item: &Item) -> Result<ChangeKey, StoreError> {
    let raw = text(item, CHANGED)?;
    ChangeKey::parse(raw).ok_or_else(|| StoreError::Corrupt { what: CHANGED.to_owned(), reason: format!("not a change key: {raw}") })
}

/// How a unit enum (status, severity) is stored: its serde name.
fn enum_text<T: serde::Serialize>(value: &T) -> Result<aws_sdk_dynamodb::types::AttributeValue, StoreError> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => Ok(s(text)),
        _ => Err(StoreError::Rejected("a filter value is not a name".into())),
    }
}

fn min<'a>(a: Option<&'a str>, b: Option<&'a str>) -> Option<&'a str> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max<'a>(a: Option<&'a str>, b: Option<&'a str>) -> Option<&'a str> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::AlertId;
    use chrono::{Duration, Utc};

    #[test]
    fn a_read_whose_cursor_is_already_past_its_time_bound_is_never_sent() {
        let now = Utc::now();
        let key = ChangeKey::new(now - Duration::hours(2), &AlertId::derive(&["a"]));
        let newest_first = ChangeQuery {
            newest_first: true,
            after: Some(key.clone()),
            changed_since: Some(now - Duration::hours(1)),
            ..Default::default()
        };
        assert_eq!(key_range(&newest_first), None, "paging down past `changed_since`");
        let oldest_first = ChangeQuery { after: Some(key), changed_before: Some(now - Duration::hours(3)), ..Default::default() };
        assert_eq!(key_range(&oldest_first), None, "paging up past `changed_before`");
    }

    #[test]
    fn a_read_keeps_the_keys_between_its_cursor_and_its_time_bounds() {
        let now = Utc::now();
        let key = ChangeKey::new(now, &AlertId::derive(&["a"]));
        let since = now - Duration::hours(1);
        let newest_first = ChangeQuery { newest_first: true, after: Some(key.clone()), changed_since: Some(since), ..Default::default() };
        assert_eq!(key_range(&newest_first), Some((changes::time_bound(since), key.as_str().to_owned())));
        let oldest_first = ChangeQuery { after: Some(key.clone()), ..Default::default() };
        assert_eq!(key_range(&oldest_first), Some((key.as_str().to_owned(), HIGHEST.to_owned())));
        assert_eq!(key_range(&ChangeQuery::default()), Some((LOWEST.to_owned(), HIGHEST.to_owned())), "no bound: every key");
        // The same instant as both bounds: a range no key lies in, but a valid BETWEEN.
        let instant = ChangeQuery { changed_since: Some(since), changed_before: Some(since), ..Default::default() };
        assert_eq!(key_range(&instant), Some((changes::time_bound(since), changes::time_bound(since))));
    }
}
