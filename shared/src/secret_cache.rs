//! A small TTL cache in front of a [`SecretStore`], so warm containers do not call Secrets
//! Manager for every tenant on every run. Writes go through and refresh the cache.

use crate::error::SecretError;
use crate::ports::{SecretName, SecretStore};
use crate::secret::SecretString;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Caches reads of an inner store for `ttl`.
pub struct CachingSecretStore {
    inner: Arc<dyn SecretStore>,
    ttl: Duration,
    entries: Mutex<HashMap<SecretName, (Instant, Option<SecretString>)>>,
}

impl CachingSecretStore {
    /// Wraps `inner`.
    #[must_use]
    pub fn new(inner: Arc<dyn SecretStore>, ttl: Duration) -> Self {
        Self { inner, ttl, entries: Mutex::new(HashMap::new()) }
    }
}

#[async_trait]
impl SecretStore for CachingSecretStore {
    async fn put_secret(&self, name: &SecretName, value: &SecretString) -> Result<(), SecretError> {
        self.inner.put_secret(name, value).await?;
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(name.clone(), (Instant::now(), Some(value.clone())));
        Ok(())
    }

    async fn get_secret(&self, name: &SecretName) -> Result<Option<SecretString>, SecretError> {
        if let Some((at, value)) = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(name) {
            if at.elapsed() < self.ttl {
                return Ok(value.clone());
            }
        }
        let value = self.inner.get_secret(name).await?;
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(name.clone(), (Instant::now(), value.clone()));
        Ok(value)
    }

    async fn delete_secret(&self, name: &SecretName) -> Result<(), SecretError> {
        self.inner.delete_secret(name).await?;
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(name.clone(), (Instant::now(), None));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MspId;
    use crate::memory::MemorySecretStore;

    #[tokio::test]
    async fn reads_are_served_from_cache_until_the_ttl_passes() {
        let inner = Arc::new(MemorySecretStore::default());
        let name = SecretName::destination(&MspId::parse("acme").unwrap(), &crate::ids::DestinationId::parse("psa").unwrap());
        inner.put_secret(&name, &SecretString::new("v1")).await.unwrap();
        let cache = CachingSecretStore::new(inner.clone(), Duration::from_secs(300));
        assert_eq!(cache.get_secret(&name).await.unwrap(), Some(SecretString::new("v1")));
        inner.put_secret(&name, &SecretString::new("v2")).await.unwrap();
        assert_eq!(cache.get_secret(&name).await.unwrap(), Some(SecretString::new("v1")), "cached");
        let fresh = CachingSecretStore::new(inner, Duration::ZERO);
        assert_eq!(fresh.get_secret(&name).await.unwrap(), Some(SecretString::new("v2")));
    }
}
