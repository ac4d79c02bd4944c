//! [`OnboardingStore`] on the config table, in the MSP's partition: `ONBOARD-APP` (the MSP
//! app's public part), `ONBOARD-LINK#{nonce}` per consent link and `ONBOARD-NONCE#{nonce}` per
//! used state (both purged by the table's TTL, `purge_at`: a link
//! [`crate::onboarding::LINK_RECORD_DAYS`] after it expired, a nonce when its state expires —
//! a replay after that is refused as expired), `ONBOARD-TEST#{tenant id}` for a tenant's last
//! access test and `ONBOARD-BULK#{job id}` per bulk onboarding (at most
//! [`crate::onboarding::BULK_MAX`] customers, so one small item).

use super::config_store::DynamoConfigStore;
use super::dynamodb::{from_item, get, key, msp_pk, n, put, put_if_absent, query_prefix, s, to_item};
use crate::error::StoreError;
use crate::ids::{MspId, TenantId};
use crate::onboarding::{AccessTest, BulkJob, ConsentLink, LINK_RECORD_DAYS, MspApp};
use crate::ports::OnboardingStore;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

const APP_SK: &str = "ONBOARD-APP";
const LINK_PREFIX: &str = "ONBOARD-LINK#";
const NONCE_PREFIX: &str = "ONBOARD-NONCE#";
const TEST_PREFIX: &str = "ONBOARD-TEST#";
const BULK_PREFIX: &str = "ONBOARD-BULK#";

#[async_trait]
impl OnboardingStore for DynamoConfigStore {
    async fn put_app(&self, msp_id: &MspId, app: &MspApp) -> Result<(), StoreError> {
        put(&self.client, &self.table, to_item(app, msp_pk(msp_id), APP_SK.into())?, "put MSP app").await
    }
    async fn app(&self, msp_id: &MspId) -> Result<Option<MspApp>, StoreError> {
        get(&self.client, &self.table, key(msp_pk(msp_id), APP_SK.into()), "get MSP app")
            .await?
            .map(|i| from_item(i, "MSP app"))
            .transpose()
    }
    async fn put_link(&self, msp_id: &MspId, link: &ConsentLink) -> Result<(), StoreError> {
        let mut item = to_item(link, msp_pk(msp_id), format!("{LINK_PREFIX}{}", link.id))?;
        item.insert("purge_at".into(), n((link.expires_at + Duration::days(LINK_RECORD_DAYS)).timestamp()));
        put(&self.client, &self.table, item, "put consent link").await
    }
    async fn link(&self, msp_id: &MspId, link_id: &str) -> Result<Option<ConsentLink>, StoreError> {
        get(&self.client, &self.table, key(msp_pk(msp_id), format!("{LINK_PREFIX}{link_id}")), "get consent link")
            .await?
            .map(|i| from_item(i, "consent link"))
            .transpose()
    }
    async fn links(&self, msp_id: &MspId) -> Result<Vec<ConsentLink>, StoreError> {
        query_prefix(&self.client, &self.table, msp_pk(msp_id), LINK_PREFIX, "list consent links")
            .await?
            .into_iter()
            .map(|i| from_item(i, "consent link"))
            .collect()
    }
    async fn claim_nonce(&self, msp_id: &MspId, nonce: &str, expires_at: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut item = key(msp_pk(msp_id), format!("{NONCE_PREFIX}{nonce}"));
        item.insert("used".into(), s("true"));
        item.insert("purge_at".into(), n(expires_at.timestamp()));
        put_if_absent(&self.client, &self.table, item, "use consent state").await
    }
    async fn put_access_test(&self, msp_id: &MspId, test: &AccessTest) -> Result<(), StoreError> {
        put(&self.client, &self.table, to_item(test, msp_pk(msp_id), format!("{TEST_PREFIX}{}", test.tenant_id))?, "put access test").await
    }
    async fn access_test(&self, msp_id: &MspId, tenant_id: &TenantId) -> Result<Option<AccessTest>, StoreError> {
        get(&self.client, &self.table, key(msp_pk(msp_id), format!("{TEST_PREFIX}{tenant_id}")), "get access test")
            .await?
            .map(|i| from_item(i, "access test"))
            .transpose()
    }
    async fn put_bulk(&self, msp_id: &MspId, job: &BulkJob) -> Result<(), StoreError> {
        put(&self.client, &self.table, to_item(job, msp_pk(msp_id), format!("{BULK_PREFIX}{}", job.id))?, "put bulk onboarding").await
    }
    async fn bulk(&self, msp_id: &MspId, job_id: &str) -> Result<Option<BulkJob>, StoreError> {
        get(&self.client, &self.table, key(msp_pk(msp_id), format!("{BULK_PREFIX}{job_id}")), "get bulk onboarding")
            .await?
            .map(|i| from_item(i, "bulk onboarding"))
            .transpose()
    }
}
