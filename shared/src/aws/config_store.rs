//! [`ConfigStore`] on the config table: MSP profiles, API token hashes and tenants. A tenant's
//! company links are one map attribute, one entry per destination, each written alone.

use super::dynamodb::{
    Item, condition_failed, from_item, get, jitter, key, msp_pk, put, put_if_absent, query_prefix, s, scan_prefixes, store_error, to_item,
};
use crate::destination::LEGACY_DESTINATION_ID;
use crate::error::StoreError;
use crate::ids::{DestinationId, MspId, TenantId};
use crate::ports::{ConfigStore, TenantChange, TenantPage};
use crate::tenant::{Msp, Tenant};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use std::collections::HashMap;

/// [`ConfigStore`] on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoConfigStore {
    pub(super) client: Client,
    pub(super) table: String,
}

/// The sort key prefix of tenant items.
const TENANT_PREFIX: &str = "TENANT#";

impl DynamoConfigStore {
    /// A store on `table`.
    #[must_use]
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

#[async_trait]
impl ConfigStore for DynamoConfigStore {
    async fn create_msp(&self, msp: &Msp) -> Result<bool, StoreError> {
        put_if_absent(&self.client, &self.table, to_item(msp, msp_pk(&msp.id), "PROFILE".into())?, "create MSP").await
    }
    async fn get_msp(&self, msp_id: &MspId) -> Result<Option<Msp>, StoreError> {
        get(&self.client, &self.table, key(msp_pk(msp_id), "PROFILE".into()), "get MSP").await?.map(|i| from_item(i, "MSP")).transpose()
    }
    async fn put_msp(&self, msp: &Msp) -> Result<(), StoreError> {
        put(&self.client, &self.table, to_item(msp, msp_pk(&msp.id), "PROFILE".into())?, "put MSP").await
    }
    async fn create_tenant(&self, tenant: &Tenant) -> Result<bool, StoreError> {
        put_if_absent(
            &self.client,
            &self.table,
            to_item(tenant, msp_pk(&tenant.msp_id), format!("TENANT#{}", tenant.tenant_id))?,
            "create tenant",
        )
        .await
    }
    async fn put_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        put(&self.client, &self.table, to_item(tenant, msp_pk(&tenant.msp_id), format!("TENANT#{}", tenant.tenant_id))?, "put tenant").await
    }
    async fn update_tenant(&self, msp_id: &MspId, tenant_id: &TenantId, change: &TenantChange) -> Result<Option<Tenant>, StoreError> {
        let tenant_key = key(msp_pk(msp_id), format!("TENANT#{tenant_id}"));
        if let TenantChange::CompanyLink { destination, company } = change {
            return self.update_company_link(tenant_key, destination, company.as_deref()).await;
        }
        if let TenantChange::Offboarded(at) = change {
            // The first instant stays; the rest is idempotent.
            let update = TenantUpdate::new(
                "SET #at = if_not_exists(#at, :at), #reg = :false REMOVE #hash, #links, #legacy".to_owned(),
                "attribute_exists(pk)",
            )
            .name("#at", "offboarded_at")
            .name("#reg", "webhook_registered")
            .name("#hash", "webhook_auth_hash")
            .name("#links", "company_links")
            .name("#legacy", "connectwise_company_id")
            .value(":at", s(at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)))
            .value(":false", AttributeValue::Bool(false));
            return self.try_update(tenant_key, update).await;
        }
        let value = |v: serde_json::Value| -> Result<AttributeValue, StoreError> {
            serde_dynamo::to_attribute_value(v).map_err(|e| StoreError::Corrupt { what: "tenant change".into(), reason: e.to_string() })
        };
        let assignments: Vec<(&str, AttributeValue)> = match change {
            TenantChange::CompanyLink { .. } | TenantChange::Offboarded(_) => Vec::new(),
            TenantChange::M365CredentialsSet => {
                vec![("m365_credentials_set", AttributeValue::Bool(true)), ("credentials_from_msp_app", AttributeValue::Bool(false))]
            }
            TenantChange::MspAppConsented => {
                vec![("m365_credentials_set", AttributeValue::Bool(true)), ("credentials_from_msp_app", AttributeValue::Bool(true))]
            }
            TenantChange::Streams(streams) => {
                vec![
                    ("streams", value(serde_json::to_value(streams).unwrap_or_default())?),
                    ("webhook_registered", AttributeValue::Bool(false)),
                ]
            }
            TenantChange::Webhook { auth_hash, registered } => {
                vec![("webhook_auth_hash", s(auth_hash.clone())), ("webhook_registered", AttributeValue::Bool(*registered))]
            }
            TenantChange::PolicyContext { domains, break_glass_accounts } => vec![
                ("domains", AttributeValue::L(domains.iter().map(|d| s(d.clone())).collect())),
                ("break_glass_accounts", AttributeValue::L(break_glass_accounts.iter().map(|d| s(d.clone())).collect())),
            ],
        };
        let mut update = TenantUpdate::new(
            format!("SET {}", (0..assignments.len()).map(|i| format!("#a{i} = :v{i}")).collect::<Vec<_>>().join(", ")),
            "attribute_exists(pk)",
        );
        for (i, (name, attribute)) in assignments.into_iter().enumerate() {
            update = update.name(&format!("#a{i}"), name).value(&format!(":v{i}"), attribute);
        }
        self.try_update(tenant_key, update).await
    }
    async fn get_tenant(&self, msp_id: &MspId, tenant_id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        get(&self.client, &self.table, key(msp_pk(msp_id), format!("TENANT#{tenant_id}")), "get tenant")
            .await?
            .map(|i| from_item(i, "tenant"))
            .transpose()
    }
    async fn list_tenants(&self, msp_id: &MspId) -> Result<Vec<Tenant>, StoreError> {
        query_prefix(&self.client, &self.table, msp_pk(msp_id), "TENANT#", "list tenants")
            .await?
            .into_iter()
            .map(|i| from_item(i, "tenant"))
            .collect()
    }
    async fn tenants_page(&self, msp_id: &MspId, limit: usize, after: Option<&TenantId>) -> Result<TenantPage, StoreError> {
        let limit = limit.max(1);
        // One more than asked: whether it comes says whether another page follows. DynamoDB
        // may stop earlier at 1 MB; then the page is short and continues after its last tenant.
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(msp_pk(msp_id)))
            .expression_attribute_values(":prefix", s(TENANT_PREFIX))
            .set_exclusive_start_key(after.map(|after| key(msp_pk(msp_id), format!("{TENANT_PREFIX}{after}"))))
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("list a page of tenants", e))?;
        let mut tenants = output.items().iter().cloned().map(|i| from_item(i, "tenant")).collect::<Result<Vec<Tenant>, _>>()?;
        let cut = output.last_evaluated_key().is_some_and(|k| !k.is_empty());
        let next = if tenants.len() > limit || cut {
            tenants.truncate(limit);
            tenants.last().map(|t| t.tenant_id.clone())
        } else {
            None
        };
        Ok(TenantPage { tenants, next })
    }
    async fn list_all_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        scan_prefixes(&self.client, &self.table, &["TENANT#"], "scan tenants").await?.into_iter().map(|i| from_item(i, "tenant")).collect()
    }
}

/// The condition of a link written into the existing `company_links` map.
const WITH_LINKS: &str = "attribute_exists(pk) AND attribute_exists(company_links)";
/// The condition of a link written where the tenant has no `company_links` map yet.
const WITHOUT_LINKS: &str = "attribute_exists(pk) AND attribute_not_exists(company_links)";

/// One conditional UpdateItem of a tenant: its expressions, names and values.
struct TenantUpdate {
    expression: String,
    condition: &'static str,
    names: Vec<(String, String)>,
    values: Vec<(String, AttributeValue)>,
}

impl TenantUpdate {
    fn new(expression: impl Into<String>, condition: &'static str) -> Self {
        Self { expression: expression.into(), condition, names: Vec::new(), values: Vec::new() }
    }
    fn name(mut self, placeholder: &str, name: &str) -> Self {
        self.names.push((placeholder.to_owned(), name.to_owned()));
        self
    }
    fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.push((placeholder.to_owned(), value));
        self
    }
}

impl DynamoConfigStore {
    /// Runs one update; `Ok(None)` when its condition did not hold.
    async fn try_update(&self, tenant_key: Item, update: TenantUpdate) -> Result<Option<Tenant>, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(tenant_key))
            .update_expression(update.expression)
            .condition_expression(update.condition)
            .return_values(ReturnValue::AllNew);
        for (placeholder, name) in update.names {
            request = request.expression_attribute_names(placeholder, name);
        }
        for (placeholder, value) in update.values {
            request = request.expression_attribute_values(placeholder, value);
        }
        match request.send().await {
            Ok(output) => output.attributes().cloned().map(|item| from_item(item, "tenant")).transpose(),
            Err(error) if condition_failed(&error) => Ok(None),
            Err(error) => Err(store_error("update tenant", error)),
        }
    }

    /// Sets or removes one entry of the tenant's `company_links` map, touching no other
    /// attribute, so writers of different links (or of other attributes) never undo each
    /// other. A link to `connectwise` also removes the legacy `connectwise_company_id` (the new
    /// link supersedes it); links to other destinations leave it.
    ///
    /// A document path into a map that does not exist yet is refused by DynamoDB, and
    /// `if_not_exists(company_links, ..)` cannot be combined with a write below the same path
    /// in one expression. So: write the entry where the map exists; where it does not, create
    /// the map holding the entry (conditioned on its absence, so a concurrent creator is never
    /// overwritten); if both conditions fail, another writer created the map in between (try
    /// again) or the tenant does not exist (`None`).
    async fn update_company_link(
        &self,
        tenant_key: Item,
        destination: &DestinationId,
        company: Option<&str>,
    ) -> Result<Option<Tenant>, StoreError> {
        let legacy = destination.as_str() == LEGACY_DESTINATION_ID;
        let drop_legacy = if legacy { " REMOVE connectwise_company_id" } else { "" };
        for _ in 0..5 {
            let in_map = match company {
                Some(company) => TenantUpdate::new(format!("SET company_links.#d = :c{drop_legacy}"), WITH_LINKS).value(":c", s(company)),
                None if legacy => TenantUpdate::new("REMOVE company_links.#d, connectwise_company_id", WITH_LINKS),
                None => TenantUpdate::new("REMOVE company_links.#d", WITH_LINKS),
            }
            .name("#d", destination.as_str());
            if let Some(tenant) = self.try_update(tenant_key.clone(), in_map).await? {
                return Ok(Some(tenant));
            }
            let without_map = match company {
                Some(company) => Some(
                    TenantUpdate::new(format!("SET company_links = :links{drop_legacy}"), WITHOUT_LINKS)
                        .value(":links", AttributeValue::M(HashMap::from([(destination.as_str().to_owned(), s(company))]))),
                ),
                None if legacy => Some(TenantUpdate::new("REMOVE connectwise_company_id", WITHOUT_LINKS)),
                // No links at all, so none to remove: the tenant stays as it is.
                None => None,
            };
            let Some(without_map) = without_map else {
                return get(&self.client, &self.table, tenant_key, "get tenant").await?.map(|item| from_item(item, "tenant")).transpose();
            };
            if let Some(tenant) = self.try_update(tenant_key.clone(), without_map).await? {
                return Ok(Some(tenant));
            }
            if get(&self.client, &self.table, tenant_key.clone(), "get tenant").await?.is_none() {
                return Ok(None);
            }
            jitter(20).await;
        }
        Err(StoreError::Conflict { what: format!("company link {destination}") })
    }
}
