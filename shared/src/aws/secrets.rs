//! [`SecretStore`] on AWS Secrets Manager. Names are `{prefix}{relative name}`, e.g.
//! `vigil/prod/acme/tenants/<tenant>/m365`; IAM scopes every function to the prefix, and only
//! the functions that use a credential may read it (the config API may only write).

use crate::error::SecretError;
use crate::ports::{SecretName, SecretStore};
use crate::secret::SecretString;
use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Secrets Manager under one name prefix.
#[derive(Debug, Clone)]
pub struct SecretsManagerStore {
    client: Client,
    prefix: String,
}

impl SecretsManagerStore {
    /// A store whose secret names all start with `prefix` (e.g. `vigil/prod/`).
    #[must_use]
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self { client, prefix: prefix.into() }
    }

    fn full_name(&self, name: &SecretName) -> String {
        format!("{}{}", self.prefix, name.as_str())
    }
}

fn secret_error<E, R>(operation: &str, error: &SdkError<E, R>) -> SecretError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(service) = error {
        let code = service.err().code().unwrap_or("Unknown");
        // Secrets Manager messages never contain secret values; keep them for operators.
        let message = format!("{operation}: {code}: {}", service.err().message().unwrap_or_default());
        return match code {
            "ThrottlingException" | "InternalServiceError" | "LimitExceededException" => SecretError::Unavailable(message),
            _ => SecretError::Rejected(message),
        };
    }
    SecretError::Unavailable(format!("{operation}: {}", DisplayErrorContext(error)))
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    async fn put_secret(&self, name: &SecretName, value: &SecretString) -> Result<(), SecretError> {
        let id = self.full_name(name);
        // Update first (the common case); create when it does not exist yet. A concurrent
        // creator makes CreateSecret fail with ResourceExists: then update again.
        for _ in 0..3 {
            match self.client.put_secret_value().secret_id(&id).secret_string(value.expose()).send().await {
                Ok(_) => return Ok(()),
                Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {}
                Err(error) => return Err(secret_error("put secret", &error)),
            }
            match self
                .client
                .create_secret()
                .name(&id)
                .secret_string(value.expose())
                .description("Vigil credential (write-only through the config API)")
                .send()
                .await
            {
                Ok(_) => return Ok(()),
                Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_exists_exception()) => {}
                Err(error) => return Err(secret_error("create secret", &error)),
            }
        }
        Err(SecretError::Unavailable(format!("could not write secret {id}")))
    }

    async fn get_secret(&self, name: &SecretName) -> Result<Option<SecretString>, SecretError> {
        let id = self.full_name(name);
        match self.client.get_secret_value().secret_id(&id).send().await {
            Ok(output) => Ok(output.secret_string().map(SecretString::new)),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(None),
            Err(error) => Err(secret_error("get secret", &error)),
        }
    }

    async fn delete_secret(&self, name: &SecretName) -> Result<(), SecretError> {
        let id = self.full_name(name);
        match self.client.delete_secret().secret_id(&id).force_delete_without_recovery(true).send().await {
            Ok(_) => Ok(()),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(()),
            Err(error) => Err(secret_error("delete secret", &error)),
        }
    }
}
