//! Offboarding on DynamoDB: the records ([`DynamoOffboardingStore`], config table) and the
//! tenant's data across the three tables ([`DynamoTenantData`]).
//!
//! | table  | pk          | sk                      | item                                   |
//! |--------|-------------|-------------------------|----------------------------------------|
//! | config | `MSP#{msp}` | `OFFBOARDING#{tenant key}` | offboarding (JSON attributes), `version` |
//!
//! Where each kind of tenant data is found (every listing starts with the MSP's partition):
//!
//! | kind | table | how |
//! |------|-------|-----|
//! | alerts | alerts | Query `MSP#{msp}`, `ALERT#…`, `tenant_id` = tenant |
//! | deliveries, ticket index | alerts | Query `MSP#{msp}`, `DELIVERY#` / `OPENTICKET#` / `HELD#`, `alert_id` one of the tenant's alerts |
//! | daily places | alerts | Query `MSP#{msp}`, `DAILY#{tenant}#` |
//! | hit markers | alerts | sweep: Scan, `pk` begins `MSP#{msp}#ALERT#`, alert one of the tenant's |
//! | stream ledgers | state | Query `MSP#{msp}#TENANT#{tenant}`, `STREAM#` |
//! | ingest state (claims, blob markers, trigger state, replays) | state | sweep: Scan, `pk` begins `MSP#{msp}#TENANT#{tenant}#` |
//! | tenant policies, licences, mailbox counts, partner activity, tenant | config | Query `MSP#{msp}`, the tenant's sort-key prefixes |
//! | suppressions, billing | config | Query `MSP#{msp}`, `SUPPRESSION#` / `BILLMAP#` / `BILLSYNC#`, naming the tenant |
//!
//! **The two sweeps.** Claims, blob markers, trigger state and replays give every record (or
//! group key) its own partition, `MSP#{msp}#TENANT#{tenant}#…`, and hit markers theirs,
//! `MSP#{msp}#ALERT#{alert}#RECORD#{id}`: the hot path writes them that way, and DynamoDB has no
//! query over a partition-key prefix. They are found by one paginated Scan of the state table
//! and one of the alerts table per purge, filtered by that prefix — the only scans, run once per
//! offboarding. (They all carry a TTL of days, so with the default 30-day retention most are
//! already gone; the sweep removes what TTL has not yet.)

use super::dynamodb::{Item, from_item, get, key, msp_pk, n, put_if_absent, s, scan_prefixes, store_error, to_item};
use crate::error::StoreError;
use crate::ids::{MspId, TenantId};
use crate::offboarding::{DataKey, DataKind, DataPage, Offboarding, OffboardingPhase, PAGE_KEYS_MAX};
use crate::ports::{OffboardingStore, TenantData};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

const OFFBOARDING_PREFIX: &str = "OFFBOARDING#";

/// [`OffboardingStore`] on the config table.
#[derive(Debug, Clone)]
pub struct DynamoOffboardingStore {
    client: Client,
    table: String,
}

impl DynamoOffboardingStore {
    /// A store on `table` (the config table).
    #[must_use]
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    fn item(offboarding: &Offboarding) -> Result<Item, StoreError> {
        to_item(offboarding, msp_pk(&offboarding.msp_id), format!("{OFFBOARDING_PREFIX}{}", offboarding.tenant_key))
    }
}

#[async_trait]
impl OffboardingStore for DynamoOffboardingStore {
    async fn create_offboarding(&self, offboarding: &Offboarding) -> Result<bool, StoreError> {
        let mut stored = offboarding.clone();
        stored.version = 1;
        put_if_absent(&self.client, &self.table, Self::item(&stored)?, "create offboarding").await
    }

    async fn save_offboarding(&self, offboarding: &mut Offboarding) -> Result<(), StoreError> {
        let mut next = offboarding.clone();
        next.version += 1;
        let (condition, values) = if offboarding.version == 0 {
            ("attribute_not_exists(pk)", None)
        } else {
            ("#v = :v", Some(n(i64::try_from(offboarding.version).unwrap_or(i64::MAX))))
        };
        let mut request = self.client.put_item().table_name(&self.table).set_item(Some(Self::item(&next)?)).condition_expression(condition);
        if let Some(value) = values {
            request = request.expression_attribute_names("#v", "version").expression_attribute_values(":v", value);
        }
        match request.send().await {
            Ok(_) => {
                *offboarding = next;
                Ok(())
            }
            Err(error) if super::dynamodb::condition_failed(&error) => Err(StoreError::Conflict { what: "offboarding".into() }),
            Err(error) => Err(store_error("save offboarding", error)),
        }
    }

    async fn get_offboarding(&self, msp_id: &MspId, tenant_key: &str) -> Result<Option<Offboarding>, StoreError> {
        get(&self.client, &self.table, key(msp_pk(msp_id), format!("{OFFBOARDING_PREFIX}{tenant_key}")), "get offboarding")
            .await?
            .map(|i| from_item(i, "offboarding"))
            .transpose()
    }

    async fn list_unfinished_offboardings(&self) -> Result<Vec<Offboarding>, StoreError> {
        let items = scan_prefixes(&self.client, &self.table, &[OFFBOARDING_PREFIX], "scan offboardings").await?;
        let all: Vec<Offboarding> = items.into_iter().map(|i| from_item(i, "offboarding")).collect::<Result<_, _>>()?;
        Ok(all.into_iter().filter(|o| o.phase != OffboardingPhase::Purged).collect())
    }
}

/// [`TenantData`] over the config, state and alerts tables.
#[derive(Debug, Clone)]
pub struct DynamoTenantData {
    client: Client,
    config_table: String,
    state_table: String,
    alerts_table: String,
    /// The tenant's alert ids, read once per (MSP, tenant) by this instance: the kinds that
    /// refer to alerts are purged before the alerts, so the set does not change meanwhile.
    alert_ids: Arc<Mutex<AlertIdCache>>,
}

/// The tenant's alert ids per (MSP, tenant).
type AlertIdCache = HashMap<(MspId, TenantId), Arc<HashSet<String>>>;

/// How a kind's items are listed.
enum Listing {
    /// Query the partition `pk` for sort keys starting with each prefix in turn.
    Query { table: String, pk: String, prefixes: Vec<String> },
    /// Scan `table` for partition keys starting with `pk_prefix`.
    Sweep { table: String, pk_prefix: String },
}

/// Which listed items belong to the tenant.
enum Belongs {
    All,
    SortKeyIs(String),
    SortKeyEndsWith(String),
    TenantAttribute(String),
    /// The suppression's JSON `body` limits it to the tenant.
    SuppressionOf(String),
    AlertAttributeIn(Arc<HashSet<String>>),
    /// A hit marker `MSP#{msp}#ALERT#{alert}#RECORD#{id}` of one of these alerts.
    HitOf {
        prefix: String,
        alerts: Arc<HashSet<String>>,
    },
}

impl Belongs {
    fn holds(&self, item: &Item) -> bool {
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str);
        match self {
            Self::All => true,
            Self::SortKeyIs(sk) => text("sk") == Some(sk.as_str()),
            Self::SortKeyEndsWith(suffix) => text("sk").is_some_and(|sk| sk.ends_with(suffix.as_str())),
            Self::TenantAttribute(tenant) => text("tenant_id") == Some(tenant.as_str()),
            Self::SuppressionOf(tenant) => text("body")
                .and_then(|body| serde_json::from_str::<serde_json::Value>(body).ok())
                .is_some_and(|body| body.get("tenant_id").and_then(serde_json::Value::as_str) == Some(tenant.as_str())),
            Self::AlertAttributeIn(alerts) => text("alert_id").is_some_and(|a| alerts.contains(a)),
            Self::HitOf { prefix, alerts } => text("pk")
                .and_then(|pk| pk.strip_prefix(prefix.as_str()))
                .and_then(|rest| rest.split_once("#RECORD#"))
                .is_some_and(|(alert, _)| alerts.contains(alert)),
        }
    }
}

/// A cursor: the listing's prefix index and DynamoDB's last evaluated key.
fn encode_cursor(index: usize, last: Option<&Item>) -> String {
    let key: BTreeMap<&str, &str> =
        last.into_iter().flatten().filter_map(|(name, value)| value.as_s().ok().map(|v| (name.as_str(), v.as_str()))).collect();
    format!("{index}\n{}", serde_json::to_string(&key).unwrap_or_default())
}

fn decode_cursor(cursor: Option<&str>) -> Result<(usize, Option<Item>), StoreError> {
    let Some(cursor) = cursor else { return Ok((0, None)) };
    let corrupt = |reason: &str| StoreError::Corrupt { what: "purge cursor".into(), reason: reason.into() };
    let (index, key) = cursor.split_once('\n').ok_or_else(|| corrupt("no separator"))?;
    let index = index.parse().map_err(|_| corrupt("bad index"))?;
    let key: BTreeMap<String, String> = serde_json::from_str(key).map_err(|_| corrupt("bad key"))?;
    Ok((index, (!key.is_empty()).then(|| key.into_iter().map(|(k, v)| (k, s(v))).collect())))
}

impl DynamoTenantData {
    /// The tenant data in these tables.
    #[must_use]
    pub fn new(client: Client, config_table: impl Into<String>, state_table: impl Into<String>, alerts_table: impl Into<String>) -> Self {
        Self {
            client,
            config_table: config_table.into(),
            state_table: state_table.into(),
            alerts_table: alerts_table.into(),
            alert_ids: Arc::default(),
        }
    }

    /// The ids of the tenant's alerts (a Query of the MSP's alerts, filtered on the tenant).
    async fn alert_ids(&self, msp_id: &MspId, tenant_id: &TenantId) -> Result<Arc<HashSet<String>>, StoreError> {
        let cache_key = (msp_id.clone(), tenant_id.clone());
        if let Some(ids) = self.alert_ids.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&cache_key) {
            return Ok(ids.clone());
        }
        let mut ids = HashSet::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.alerts_table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .filter_expression("tenant_id = :t")
                .projection_expression("sk")
                .expression_attribute_values(":pk", s(msp_pk(msp_id)))
                .expression_attribute_values(":prefix", s("ALERT#"))
                .expression_attribute_values(":t", s(tenant_id.to_string()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_error("list the tenant's alerts", e))?;
            ids.extend(output.items().iter().filter_map(|i| i.get("sk")?.as_s().ok()?.strip_prefix("ALERT#").map(str::to_owned)));
            match output.last_evaluated_key() {
                Some(last) if !last.is_empty() => start = Some(last.clone()),
                _ => break,
            }
        }
        let ids = Arc::new(ids);
        self.alert_ids.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(cache_key, ids.clone());
        Ok(ids)
    }

    async fn listing(&self, msp_id: &MspId, tenant_id: &TenantId, kind: DataKind) -> Result<(Listing, Belongs), StoreError> {
        let msp = msp_pk(msp_id);
        let t = tenant_id.to_string();
        let config =
            |prefixes: &[String]| Listing::Query { table: self.config_table.clone(), pk: msp.clone(), prefixes: prefixes.to_vec() };
        let alerts = |prefixes: &[&str]| Listing::Query {
            table: self.alerts_table.clone(),
            pk: msp.clone(),
            prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
        };
        Ok(match kind {
            DataKind::HitMarkers => {
                let prefix = format!("{msp}#ALERT#");
                let alerts = self.alert_ids(msp_id, tenant_id).await?;
                (Listing::Sweep { table: self.alerts_table.clone(), pk_prefix: prefix.clone() }, Belongs::HitOf { prefix, alerts })
            }
            DataKind::TicketIndex => {
                (alerts(&["OPENTICKET#", "HELD#"]), Belongs::AlertAttributeIn(self.alert_ids(msp_id, tenant_id).await?))
            }
            DataKind::Deliveries => (alerts(&["DELIVERY#"]), Belongs::AlertAttributeIn(self.alert_ids(msp_id, tenant_id).await?)),
            DataKind::DailyPlaces => (alerts(&[&format!("DAILY#{t}#")]), Belongs::All),
            DataKind::Alerts => (alerts(&["ALERT#"]), Belongs::TenantAttribute(t)),
            DataKind::StreamLedgers => (
                Listing::Query { table: self.state_table.clone(), pk: format!("{msp}#TENANT#{t}"), prefixes: vec!["STREAM#".into()] },
                Belongs::All,
            ),
            DataKind::IngestState => {
                (Listing::Sweep { table: self.state_table.clone(), pk_prefix: format!("{msp}#TENANT#{t}#") }, Belongs::All)
            }
            DataKind::TenantPolicies => (config(&[format!("TENANT_POLICY#{t}#")]), Belongs::All),
            DataKind::Suppressions => (config(&["SUPPRESSION#".into()]), Belongs::SuppressionOf(t)),
            DataKind::Licences => (config(&[format!("LICSTATE#{t}"), format!("LICREAD#{t}")]), Belongs::All),
            DataKind::MailboxCounts => (config(&[format!("MBXCOUNT#{t}#"), format!("MBXLATEST#{t}")]), Belongs::All),
            DataKind::Billing => (config(&["BILLMAP#".into(), "BILLSYNC#".into()]), Belongs::SortKeyEndsWith(format!("#{t}"))),
            DataKind::PartnerActivity => (config(&[format!("PARTNERACT#{t}"), format!("PARTNERACTION#{t}")]), Belongs::All),
            DataKind::Tenant => (config(&[format!("TENANT#{t}")]), Belongs::SortKeyIs(format!("TENANT#{t}"))),
        })
    }

    fn tables(&self) -> [&str; 3] {
        [&self.config_table, &self.state_table, &self.alerts_table]
    }
}

fn data_key(table: &str, item: &Item) -> Option<DataKey> {
    Some(DataKey { table: table.to_owned(), pk: item.get("pk")?.as_s().ok()?.clone(), sk: item.get("sk")?.as_s().ok()?.clone() })
}

#[async_trait]
impl TenantData for DynamoTenantData {
    async fn page(&self, msp_id: &MspId, tenant_id: &TenantId, kind: DataKind, cursor: Option<&str>) -> Result<DataPage, StoreError> {
        let (listing, belongs) = self.listing(msp_id, tenant_id, kind).await?;
        let (index, start) = decode_cursor(cursor)?;
        let limit = i32::try_from(PAGE_KEYS_MAX).unwrap_or(100);
        let (table, items, last, prefixes) = match &listing {
            Listing::Query { table, pk, prefixes } => {
                let Some(prefix) = prefixes.get(index) else { return Ok(DataPage::default()) };
                let output = self
                    .client
                    .query()
                    .table_name(table)
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":pk", s(pk.clone()))
                    .expression_attribute_values(":prefix", s(prefix.clone()))
                    .set_exclusive_start_key(start)
                    .limit(limit)
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| store_error("list tenant data", e))?;
                (table, output.items().to_vec(), output.last_evaluated_key().filter(|k| !k.is_empty()).cloned(), prefixes.len())
            }
            Listing::Sweep { table, pk_prefix } => {
                let output = self
                    .client
                    .scan()
                    .table_name(table)
                    .filter_expression("begins_with(pk, :prefix)")
                    .expression_attribute_values(":prefix", s(pk_prefix.clone()))
                    .set_exclusive_start_key(start)
                    .limit(limit)
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| store_error("sweep tenant data", e))?;
                (table, output.items().to_vec(), output.last_evaluated_key().filter(|k| !k.is_empty()).cloned(), 1)
            }
        };
        let keys = items.iter().filter(|i| belongs.holds(i)).filter_map(|i| data_key(table, i)).collect();
        let next = match last {
            Some(last) => Some(encode_cursor(index, Some(&last))),
            None if index + 1 < prefixes => Some(encode_cursor(index + 1, None)),
            None => None,
        };
        Ok(DataPage { keys, next })
    }

    async fn delete(&self, keys: &[DataKey]) -> Result<(), StoreError> {
        if let Some(unknown) = keys.iter().find(|k| !self.tables().contains(&k.table.as_str())) {
            return Err(StoreError::Rejected(format!("delete tenant data: {} is not one of Vigil's tables", unknown.table)));
        }
        for table in self.tables() {
            let requests: Vec<WriteRequest> = keys
                .iter()
                .filter(|k| k.table == table)
                .map(|k| {
                    let delete = DeleteRequest::builder()
                        .set_key(Some(key(k.pk.clone(), k.sk.clone())))
                        .build()
                        .map_err(|e| StoreError::Rejected(format!("delete tenant data: {e}")))?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<Result<_, StoreError>>()?;
            for chunk in requests.chunks(25) {
                let mut pending = chunk.to_vec();
                for attempt in 0..8u32 {
                    let output = self
                        .client
                        .batch_write_item()
                        .request_items(table, pending.clone())
                        .send()
                        .await
                        .map_err(|e| store_error("delete tenant data", e))?;
                    pending = output.unprocessed_items().and_then(|u| u.get(table)).cloned().unwrap_or_default();
                    if pending.is_empty() {
                        break;
                    }
                    if attempt == 7 {
                        return Err(StoreError::Unavailable("delete tenant data: items left unprocessed".into()));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_the_round_trip() {
        let last: Item = HashMap::from([("pk".to_owned(), s("MSP#a")), ("sk".to_owned(), s("ALERT#x"))]);
        let (index, key) = decode_cursor(Some(&encode_cursor(1, Some(&last)))).unwrap();
        assert_eq!(index, 1);
        assert_eq!(key, Some(last));
        assert_eq!(decode_cursor(Some(&encode_cursor(2, None))).unwrap(), (2, None));
        assert_eq!(decode_cursor(None).unwrap(), (0, None));
        assert!(decode_cursor(Some("garbage")).is_err());
    }

    #[test]
    fn a_hit_marker_belongs_only_to_the_alerts_named() {
        let belongs = Belongs::HitOf { prefix: "MSP#a#ALERT#".into(), alerts: Arc::new(HashSet::from(["x1".to_owned()])) };
        let item = |pk: &str| HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s("HIT"))]);
        assert!(belongs.holds(&item("MSP#a#ALERT#x1#RECORD#r")));
        assert!(!belongs.holds(&item("MSP#a#ALERT#x2#RECORD#r")));
        assert!(!belongs.holds(&item("MSP#b#ALERT#x1#RECORD#r")));
        assert!(!belongs.holds(&item("MSP#a#ALERT#x1")));
    }

    #[test]
    fn a_suppression_belongs_to_the_tenant_it_names() {
        let belongs = Belongs::SuppressionOf("t1".into());
        let item = |body: &str| HashMap::from([("body".to_owned(), s(body))]);
        assert!(belongs.holds(&item(r#"{"tenant_id":"t1"}"#)));
        assert!(!belongs.holds(&item(r#"{"tenant_id":"t2"}"#)));
        assert!(!belongs.holds(&item(r#"{"tenant_id":null}"#)));
    }
}
