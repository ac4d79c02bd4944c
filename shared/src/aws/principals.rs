//! [`PrincipalStore`] and [`AuditLog`] on the config table, in the MSP's partition:
//! `PRINCIPAL#{id}` per principal, `TOKEN#{sha-256}` per API token (the key tokens had before
//! principals existed, so those still authenticate: an item without a `token_id` reads as a
//! legacy owner token), and `AUDIT#{entry id}` per configuration change, removed by the
//! table's TTL (`purge_at`) after [`AUDIT_RETENTION_DAYS`].

use super::config_store::DynamoConfigStore;
use super::dynamodb::{Item, delete_existing, from_item, get, key, msp_pk, n, put, query_prefix, s, store_error, text, to_item};
use crate::access::{AUDIT_RETENTION_DAYS, AuditEntry, AuditPage, Principal, StoredToken};
use crate::error::StoreError;
use crate::ids::{MspId, PrincipalId, TokenId};
use crate::ports::{AuditLog, PrincipalStore};
use crate::tenant::TokenHash;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

const PRINCIPAL_PREFIX: &str = "PRINCIPAL#";
const TOKEN_PREFIX: &str = "TOKEN#";
const AUDIT_PREFIX: &str = "AUDIT#";
/// Sorts after every `AUDIT#…` key (`$` follows `#`).
const AUDIT_END: &str = "AUDIT$";

fn token_from_item(msp_id: &MspId, item: Item) -> Result<StoredToken, StoreError> {
    if item.contains_key("token_id") {
        return from_item(item, "API token");
    }
    // Issued before principals: only the key and `created_at` were stored.
    let hash = text(&item, "sk")?.trim_start_matches(TOKEN_PREFIX).to_owned();
    let created_at = text(&item, "created_at")
        .ok()
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map_or(DateTime::<Utc>::UNIX_EPOCH, |at| at.with_timezone(&Utc));
    let token_id = TokenId::parse(&format!("t-legacy-{}", hash.get(..12).unwrap_or(&hash)))
        .map_err(|e| StoreError::Corrupt { what: "legacy API token".into(), reason: e.to_string() })?;
    Ok(StoredToken {
        msp_id: msp_id.clone(),
        hash: TokenHash(hash),
        token_id,
        principal_id: None,
        name: "issued before principals".into(),
        created_at,
        expires_at: None,
        revoked_at: None,
        ends_with: String::new(),
    })
}

#[async_trait]
impl PrincipalStore for DynamoConfigStore {
    async fn put_principal(&self, principal: &Principal) -> Result<(), StoreError> {
        let sk = format!("{PRINCIPAL_PREFIX}{}", principal.principal_id);
        put(&self.client, &self.table, to_item(principal, msp_pk(&principal.msp_id), sk)?, "put principal").await
    }
    async fn get_principal(&self, msp_id: &MspId, id: &PrincipalId) -> Result<Option<Principal>, StoreError> {
        get(&self.client, &self.table, key(msp_pk(msp_id), format!("{PRINCIPAL_PREFIX}{id}")), "get principal")
            .await?
            .map(|item| from_item(item, "principal"))
            .transpose()
    }
    async fn list_principals(&self, msp_id: &MspId) -> Result<Vec<Principal>, StoreError> {
        query_prefix(&self.client, &self.table, msp_pk(msp_id), PRINCIPAL_PREFIX, "list principals")
            .await?
            .into_iter()
            .map(|item| from_item(item, "principal"))
            .collect()
    }
    async fn delete_principal(&self, msp_id: &MspId, id: &PrincipalId) -> Result<bool, StoreError> {
        delete_existing(&self.client, &self.table, key(msp_pk(msp_id), format!("{PRINCIPAL_PREFIX}{id}")), "delete principal").await
    }
    async fn put_token(&self, token: &StoredToken) -> Result<(), StoreError> {
        let sk = format!("{TOKEN_PREFIX}{}", token.hash.0);
        put(&self.client, &self.table, to_item(token, msp_pk(&token.msp_id), sk)?, "put API token").await
    }
    async fn token(&self, msp_id: &MspId, hash: &TokenHash) -> Result<Option<StoredToken>, StoreError> {
        get(&self.client, &self.table, key(msp_pk(msp_id), format!("{TOKEN_PREFIX}{}", hash.0)), "get API token")
            .await?
            .map(|item| token_from_item(msp_id, item))
            .transpose()
    }
    async fn tokens(&self, msp_id: &MspId) -> Result<Vec<StoredToken>, StoreError> {
        let mut tokens = query_prefix(&self.client, &self.table, msp_pk(msp_id), TOKEN_PREFIX, "list API tokens")
            .await?
            .into_iter()
            .map(|item| token_from_item(msp_id, item))
            .collect::<Result<Vec<_>, _>>()?;
        tokens.sort_by_key(|t| t.created_at);
        Ok(tokens)
    }
    async fn delete_token(&self, msp_id: &MspId, hash: &TokenHash) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(msp_pk(msp_id), format!("{TOKEN_PREFIX}{}", hash.0))))
            .send()
            .await
            .map_err(|e| store_error("delete API token", e))?;
        Ok(())
    }
}

#[async_trait]
impl AuditLog for DynamoConfigStore {
    async fn append(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let mut item = to_item(entry, msp_pk(&entry.msp_id), format!("{AUDIT_PREFIX}{}", entry.entry_id))?;
        item.insert("purge_at".into(), n((entry.at + Duration::days(AUDIT_RETENTION_DAYS)).timestamp()));
        put(&self.client, &self.table, item, "append audit entry").await
    }
    async fn entries(&self, msp_id: &MspId, limit: usize, before: Option<&str>) -> Result<AuditPage, StoreError> {
        let upper = before.map_or_else(|| AUDIT_END.to_owned(), |b| format!("{AUDIT_PREFIX}{b}"));
        let wanted = limit.saturating_add(1);
        let mut entries: Vec<AuditEntry> = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
                .expression_attribute_values(":pk", s(msp_pk(msp_id)))
                .expression_attribute_values(":low", s(AUDIT_PREFIX))
                .expression_attribute_values(":high", s(upper.clone()))
                .scan_index_forward(false)
                .limit(i32::try_from(wanted + 1).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_error("list audit entries", e))?;
            for item in output.items().iter().cloned() {
                let entry: AuditEntry = from_item(item, "audit entry")?;
                // BETWEEN includes its bound: the entry the page continues after is not repeated.
                if before.is_none_or(|b| entry.entry_id.as_str() < b) {
                    entries.push(entry);
                }
            }
            match output.last_evaluated_key() {
                Some(last) if !last.is_empty() && entries.len() < wanted => start = Some(last.clone()),
                _ => break,
            }
        }
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next = if more { entries.last().map(|e| e.entry_id.clone()) } else { None };
        Ok(AuditPage { entries, next })
    }
}
