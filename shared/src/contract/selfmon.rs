//! The [`crate::ports::CredentialsEpisodeStore`] contract, run against memory and DynamoDB on
//! moto: one open episode per (MSP, destination), the first one opened wins, marking and closing
//! act only on the episode with the given start, and another MSP's destination of the same id is
//! its own.

use super::unique_msp;
use crate::ids::DestinationId;
use crate::ports::CredentialsEpisodeStore;
use crate::selfmon::CredentialsEpisode;
use chrono::{Duration, TimeZone, Utc};

/// What every [`crate::ports::CredentialsEpisodeStore`] must do.
pub async fn credentials_episode_store_contract(store: &dyn CredentialsEpisodeStore) {
    let (msp, other) = (unique_msp(), unique_msp());
    let (psa, chat) = (DestinationId::parse("psa").unwrap(), DestinationId::parse("chat").unwrap());
    let at = Utc.timestamp_opt(1_765_000_000, 123_000_000).unwrap();
    let episode = |destination: &DestinationId, since| CredentialsEpisode {
        destination: destination.clone(),
        since,
        raised: false,
        error: "PSA refused our credentials: 401".into(),
    };

    assert_eq!(store.credentials_episode(&msp, &psa).await.unwrap(), None);
    let first = episode(&psa, at);
    assert_eq!(store.open_credentials_episode(&msp, &first).await.unwrap(), first, "the first refusal opens the episode");
    let later = episode(&psa, at + Duration::minutes(5));
    assert_eq!(store.open_credentials_episode(&msp, &later).await.unwrap(), first, "a later refusal finds the open one");
    assert_eq!(store.credentials_episode(&msp, &psa).await.unwrap(), Some(first.clone()));
    assert_eq!(store.credentials_episode(&msp, &chat).await.unwrap(), None, "per destination");
    assert_eq!(store.credentials_episode(&other, &psa).await.unwrap(), None, "another MSP's destination of the same id is its own");

    assert!(!store.mark_credentials_raised(&msp, &psa, later.since).await.unwrap(), "not the open episode's start");
    assert!(!store.mark_credentials_raised(&other, &psa, at).await.unwrap(), "another MSP has no episode");
    assert!(store.mark_credentials_raised(&msp, &psa, at).await.unwrap());
    assert_eq!(store.credentials_episode(&msp, &psa).await.unwrap(), Some(CredentialsEpisode { raised: true, ..first.clone() }));
    assert_eq!(store.credentials_episode(&other, &psa).await.unwrap(), None, "marking created nothing for another MSP");

    let theirs = episode(&psa, at - Duration::hours(1));
    assert_eq!(store.open_credentials_episode(&other, &theirs).await.unwrap(), theirs);
    assert!(!store.close_credentials_episode(&msp, &psa, later.since).await.unwrap(), "a close for another start does nothing");
    assert!(!store.close_credentials_episode(&msp, &psa, theirs.since).await.unwrap(), "nor one naming the other MSP's start");
    assert!(store.credentials_episode(&msp, &psa).await.unwrap().is_some());
    assert!(store.close_credentials_episode(&msp, &psa, at).await.unwrap());
    assert_eq!(store.credentials_episode(&msp, &psa).await.unwrap(), None, "closed");
    assert!(!store.close_credentials_episode(&msp, &psa, at).await.unwrap(), "closing twice finds nothing");
    assert!(!store.mark_credentials_raised(&msp, &psa, at).await.unwrap(), "a closed episode is not marked");
    assert_eq!(store.credentials_episode(&msp, &psa).await.unwrap(), None, "and not brought back by the mark");
    assert_eq!(store.credentials_episode(&other, &psa).await.unwrap(), Some(theirs), "the other MSP's episode is untouched");

    assert_eq!(store.open_credentials_episode(&msp, &later).await.unwrap(), later, "the next refusal opens a new episode");
}
