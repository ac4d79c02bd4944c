//! [`CredentialsEpisodeStore`] on the config table, in the MSP's partition:
//!
//! | pk          | sk                       | item                                             |
//! |-------------|--------------------------|--------------------------------------------------|
//! | `MSP#{msp}` | `DESTCRED#{destination}` | the open episode (JSON attributes) and `since_ms` |
//!
//! Opening is a put-if-absent; marking it raised and closing it are conditional on `since_ms`,
//! the episode's start, so a write meant for an episode that closed meanwhile does nothing.

use super::config_store::DynamoConfigStore;
use super::dynamodb::{condition_failed, from_item, get, key, msp_pk, n, put_if_absent, store_error, to_item};
use crate::error::StoreError;
use crate::ids::{DestinationId, MspId};
use crate::ports::CredentialsEpisodeStore;
use crate::selfmon::CredentialsEpisode;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

const EPISODE_PREFIX: &str = "DESTCRED#";

fn episode_key(msp_id: &MspId, destination: &DestinationId) -> super::dynamodb::Item {
    key(msp_pk(msp_id), format!("{EPISODE_PREFIX}{destination}"))
}

#[async_trait]
impl CredentialsEpisodeStore for DynamoConfigStore {
    async fn credentials_episode(&self, msp_id: &MspId, destination: &DestinationId) -> Result<Option<CredentialsEpisode>, StoreError> {
        get(&self.client, &self.table, episode_key(msp_id, destination), "get credentials episode")
            .await?
            .map(|item| from_item(item, "credentials episode"))
            .transpose()
    }

    async fn open_credentials_episode(&self, msp_id: &MspId, episode: &CredentialsEpisode) -> Result<CredentialsEpisode, StoreError> {
        let mut item = to_item(episode, msp_pk(msp_id), format!("{EPISODE_PREFIX}{}", episode.destination))?;
        item.insert("since_ms".into(), n(episode.since.timestamp_millis()));
        if put_if_absent(&self.client, &self.table, item, "open credentials episode").await? {
            return Ok(episode.clone());
        }
        // One is open: the stored one wins (it may close between the put and this read, in
        // which case this refusal opens a new one).
        match self.credentials_episode(msp_id, &episode.destination).await? {
            Some(open) => Ok(open),
            None => self.open_credentials_episode(msp_id, episode).await,
        }
    }

    async fn mark_credentials_raised(&self, msp_id: &MspId, destination: &DestinationId, since: DateTime<Utc>) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(episode_key(msp_id, destination)))
            .update_expression("SET raised = :t")
            .condition_expression("since_ms = :since")
            .expression_attribute_values(":t", aws_sdk_dynamodb::types::AttributeValue::Bool(true))
            .expression_attribute_values(":since", n(since.timestamp_millis()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if condition_failed(&error) => Ok(false),
            Err(error) => Err(store_error("mark credentials episode raised", error)),
        }
    }

    async fn close_credentials_episode(
        &self,
        msp_id: &MspId,
        destination: &DestinationId,
        since: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(episode_key(msp_id, destination)))
            .condition_expression("since_ms = :since")
            .expression_attribute_values(":since", n(since.timestamp_millis()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if condition_failed(&error) => Ok(false),
            Err(error) => Err(store_error("close credentials episode", error)),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_episode_key_lies_in_the_msps_partition() {
        let msp = crate::ids::MspId::parse("acme").unwrap();
        let key = super::episode_key(&msp, &crate::ids::DestinationId::parse("psa").unwrap());
        assert_eq!(key["pk"], crate::aws::dynamodb::s("MSP#acme"));
        assert_eq!(key["sk"], crate::aws::dynamodb::s("DESTCRED#psa"));
    }
}
