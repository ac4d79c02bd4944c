//! Principals, their API tokens and the configuration audit log behind the config API: who a
//! bearer token is ([`AccessService::authenticate`]), the operator's "create an MSP and its
//! first owner", and the owner's management of principals and tokens. Every change is written
//! to the MSP's audit log through [`AuditTrail`], which the other services share.

use super::admin::AdminError;
use crate::access::{
    Access, AuditEntry, AuditPage, LIVE_TOKENS_MAX, PRINCIPALS_MAX, Permission, Principal, Role, StoredToken, TOKEN_DAYS_DEFAULT,
    TOKEN_DAYS_MAX,
};
use crate::alert::Category;
use crate::clock::Clock;
use crate::ids::{MspId, PrincipalId, TokenId};
use crate::ports::{AuditLog, ConfigStore, PrincipalStore};
use crate::secret::SecretString;
use crate::tenant::{ApiToken, Msp};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Writes configuration changes to the MSP's audit log, stamped with the caller.
#[derive(Clone)]
pub struct AuditTrail {
    pub log: Arc<dyn AuditLog>,
    pub clock: Arc<dyn Clock>,
}

impl AuditTrail {
    /// Records that `access` did `action` to `target`. Called after the change is stored: a
    /// failure here is a 503 and the caller's retry (every change is idempotent) records it.
    ///
    /// # Errors
    /// When the log cannot be written.
    pub async fn record(&self, access: &Access, action: &str, target: impl std::fmt::Display) -> Result<(), AdminError> {
        let entry = AuditEntry::new(access, self.clock.now(), action, &target.to_string())?;
        Ok(self.log.append(&entry).await?)
    }
}

/// A new principal as the API accepts it.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewPrincipal {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    pub role: Role,
    #[serde(default)]
    pub categories: Option<BTreeSet<Category>>,
    #[serde(default)]
    pub scopes: BTreeSet<Permission>,
}

/// A change to a principal; absent fields stay as they are (`categories: null` lifts the
/// limit).
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PrincipalChange {
    pub name: Option<String>,
    pub email: Option<String>,
    pub role: Option<Role>,
    #[serde(default, deserialize_with = "super::present")]
    pub categories: Option<Option<BTreeSet<Category>>>,
    pub scopes: Option<BTreeSet<Permission>>,
}

/// A token request.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What the token is for ("SIEM connector", "laptop").
    pub name: String,
    /// 1 to [`TOKEN_DAYS_MAX`]; default [`TOKEN_DAYS_DEFAULT`].
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// A newly issued token: the only time its text is shown.
#[derive(Debug)]
pub struct IssuedToken {
    pub token: SecretString,
    pub stored: StoredToken,
}

/// The access use cases.
pub struct AccessService {
    pub config: Arc<dyn ConfigStore>,
    pub principals: Arc<dyn PrincipalStore>,
    pub audit: AuditTrail,
    pub clock: Arc<dyn Clock>,
}

fn random_id(prefix: &str) -> Result<String, AdminError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| AdminError::Random(e.to_string()))?;
    Ok(format!("{prefix}-{}", hex::encode(bytes)))
}

fn not_found_principal(id: &PrincipalId) -> AdminError {
    AdminError::NotFound(format!("principal {id}"))
}

impl AccessService {
    /// Who a bearer token is: its principal's access while the token is live and its principal
    /// exists; a token issued before principals acts as an owner.
    ///
    /// # Errors
    /// [`AdminError::Unauthenticated`] for a malformed, unknown, expired or revoked token, or
    /// one whose principal was deleted.
    pub async fn authenticate(&self, bearer: &str) -> Result<Access, AdminError> {
        let presented = ApiToken::parse(bearer).map_err(|_| AdminError::Unauthenticated)?;
        let token = self.principals.token(&presented.msp_id, &presented.hash).await?.ok_or(AdminError::Unauthenticated)?;
        if !token.is_live(self.clock.now()) {
            return Err(AdminError::Unauthenticated);
        }
        match &token.principal_id {
            None => Ok(Access::legacy_token(&presented.msp_id)),
            Some(id) => {
                let principal = self.principals.get_principal(&presented.msp_id, id).await?.ok_or(AdminError::Unauthenticated)?;
                Ok(Access::of(&principal))
            }
        }
    }

    /// Operator only (`vigil-admin`, the local stack): creates the MSP if it is new, and an
    /// owner with a first token. Running it again adds another owner, so a locked-out MSP can
    /// be given a way back in.
    ///
    /// # Errors
    /// When the store or the random source fails; Invalid names or e-mail.
    pub async fn create_msp_with_owner(
        &self,
        msp_id: &MspId,
        msp_name: &str,
        owner_name: &str,
        owner_email: &str,
    ) -> Result<(Principal, IssuedToken), AdminError> {
        let now = self.clock.now();
        self.config.create_msp(&Msp::new(msp_id.clone(), msp_name.to_owned(), now)).await?;
        let operator = Access::operator(msp_id);
        let request = NewPrincipal {
            name: owner_name.to_owned(),
            email: Some(owner_email.to_owned()),
            role: Role::Owner,
            categories: None,
            scopes: BTreeSet::new(),
        };
        let owner = self.create_principal(&operator, request).await?;
        let token = self
            .issue_token(&operator, &owner.principal_id, NewToken { name: "first token".into(), expires_in_days: Some(TOKEN_DAYS_MAX) })
            .await?;
        Ok((owner, token))
    }

    /// The caller's own principal (a legacy token or the operator has none: `None`).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn me(&self, access: &Access) -> Result<Option<Principal>, AdminError> {
        Ok(self.principals.get_principal(access.msp_id(), access.principal_id()).await?)
    }

    /// Every principal of the MSP.
    ///
    /// # Errors
    /// Forbidden without principals:manage.
    pub async fn principals(&self, access: &Access) -> Result<Vec<Principal>, AdminError> {
        let msp_id = access.permit(Permission::PrincipalsManage)?;
        Ok(self.principals.list_principals(msp_id).await?)
    }

    /// One principal.
    ///
    /// # Errors
    /// Forbidden without principals:manage; NotFound.
    pub async fn principal(&self, access: &Access, id: &PrincipalId) -> Result<Principal, AdminError> {
        let msp_id = access.permit(Permission::PrincipalsManage)?;
        self.principals.get_principal(msp_id, id).await?.ok_or_else(|| not_found_principal(id))
    }

    /// Creates a principal (without tokens).
    ///
    /// # Errors
    /// Forbidden without principals:manage; Invalid fields; Refused past [`PRINCIPALS_MAX`].
    pub async fn create_principal(&self, access: &Access, request: NewPrincipal) -> Result<Principal, AdminError> {
        let msp_id = access.permit(Permission::PrincipalsManage)?;
        let now = self.clock.now();
        let principal = Principal {
            msp_id: msp_id.clone(),
            principal_id: PrincipalId::parse(&random_id("p")?).map_err(|e| AdminError::Random(e.to_string()))?,
            name: request.name.trim().to_owned(),
            email: request.email.map(|e| e.trim().to_lowercase()),
            role: request.role,
            categories: request.categories,
            scopes: request.scopes,
            created_at: now,
            updated_at: now,
        };
        principal.check()?;
        if self.principals.list_principals(msp_id).await?.len() >= PRINCIPALS_MAX {
            return Err(AdminError::Refused(format!("an MSP has at most {PRINCIPALS_MAX} principals; delete one first")));
        }
        self.principals.put_principal(&principal).await?;
        self.audit
            .record(
                access,
                "principal.created",
                format!("principal {} ({}, {})", principal.principal_id, principal.name, principal.role.as_str()),
            )
            .await?;
        Ok(principal)
    }

    /// Changes a principal. The last owner cannot stop being one.
    ///
    /// # Errors
    /// Forbidden without principals:manage; NotFound; Invalid fields; Refused for the last owner.
    pub async fn update_principal(&self, access: &Access, id: &PrincipalId, change: PrincipalChange) -> Result<Principal, AdminError> {
        let msp_id = access.permit(Permission::PrincipalsManage)?;
        let mut principal = self.principals.get_principal(msp_id, id).await?.ok_or_else(|| not_found_principal(id))?;
        let was_owner = principal.role == Role::Owner;
        if let Some(name) = change.name {
            principal.name = name.trim().to_owned();
        }
        if let Some(email) = change.email {
            principal.email = Some(email.trim().to_lowercase());
        }
        if let Some(role) = change.role {
            principal.role = role;
        }
        if let Some(categories) = change.categories {
            principal.categories = categories;
        }
        if let Some(scopes) = change.scopes {
            principal.scopes = scopes;
        }
        principal.check()?;
        if was_owner && principal.role != Role::Owner {
            self.refuse_losing_the_last_owner(msp_id, id).await?;
        }
        principal.updated_at = self.clock.now();
        self.principals.put_principal(&principal).await?;
        self.audit
            .record(
                access,
                "principal.changed",
                format!("principal {} ({}, {})", principal.principal_id, principal.name, principal.role.as_str()),
            )
            .await?;
        Ok(principal)
    }

    /// Deletes a principal after revoking its tokens. The last owner cannot be deleted.
    ///
    /// # Errors
    /// Forbidden without principals:manage; NotFound; Refused for the last owner.
    pub async fn delete_principal(&self, access: &Access, id: &PrincipalId) -> Result<(), AdminError> {
        let msp_id = access.permit(Permission::PrincipalsManage)?;
        let principal = self.principals.get_principal(msp_id, id).await?.ok_or_else(|| not_found_principal(id))?;
        if principal.role == Role::Owner {
            self.refuse_losing_the_last_owner(msp_id, id).await?;
        }
        let now = self.clock.now();
        for mut token in self.principals.tokens(msp_id).await?.into_iter().filter(|t| t.principal_id.as_ref() == Some(id)) {
            if token.is_live(now) {
                token.revoked_at = Some(now);
                self.principals.put_token(&token).await?;
            }
        }
        self.principals.delete_principal(msp_id, id).await?;
        self.audit.record(access, "principal.deleted", format!("principal {id} ({})", principal.name)).await
    }

    async fn refuse_losing_the_last_owner(&self, msp_id: &MspId, leaving: &PrincipalId) -> Result<(), AdminError> {
        let owners = self
            .principals
            .list_principals(msp_id)
            .await?
            .into_iter()
            .filter(|p| p.role == Role::Owner && p.principal_id != *leaving)
            .count();
        if owners == 0 {
            return Err(AdminError::Refused("this is the MSP's last owner; make another principal an owner first".into()));
        }
        Ok(())
    }

    /// A principal's tokens (never their text), oldest first.
    ///
    /// # Errors
    /// Forbidden without principals:manage; NotFound.
    pub async fn tokens(&self, access: &Access, id: &PrincipalId) -> Result<Vec<StoredToken>, AdminError> {
        let msp_id = access.permit(Permission::PrincipalsManage)?;
        self.principals.get_principal(msp_id, id).await?.ok_or_else(|| not_found_principal(id))?;
        Ok(self.principals.tokens(msp_id).await?.into_iter().filter(|t| t.principal_id.as_ref() == Some(id)).collect())
    }

    /// Issues a token to a principal; its text is in the answer only.
    ///
    /// # Errors
    /// Forbidden without principals:manage; NotFound; Invalid name or life; Refused past
    /// [`LIVE_TOKENS_MAX`] live tokens.
    pub async fn issue_token(&self, access: &Access, id: &PrincipalId, request: NewToken) -> Result<IssuedToken, AdminError> {
        let msp_id = access.permit(Permission::PrincipalsManage)?;
        let principal = self.principals.get_principal(msp_id, id).await?.ok_or_else(|| not_found_principal(id))?;
        let name = request.name.trim();
        if name.is_empty() || name.chars().count() > crate::access::NAME_CHARS {
            return Err(AdminError::Invalid(format!("name: 1 to {} characters", crate::access::NAME_CHARS)));
        }
        let days = request.expires_in_days.unwrap_or(TOKEN_DAYS_DEFAULT);
        if !(1..=TOKEN_DAYS_MAX).contains(&days) {
            return Err(AdminError::Invalid(format!("expires_in_days: 1 to {TOKEN_DAYS_MAX}")));
        }
        let now = self.clock.now();
        let mine: Vec<StoredToken> =
            self.principals.tokens(msp_id).await?.into_iter().filter(|t| t.principal_id.as_ref() == Some(id)).collect();
        if mine.iter().filter(|t| t.is_live(now)).count() >= LIVE_TOKENS_MAX {
            return Err(AdminError::Refused(format!("a principal holds at most {LIVE_TOKENS_MAX} live tokens; revoke one first")));
        }
        // Dead tokens are kept for a while so their holder sees why they fail, then dropped:
        // a principal's stored tokens stay bounded.
        for dead in mine.iter().filter(|t| !t.is_live(now) && dead_since(t).is_some_and(|at| at < now - Duration::days(30))) {
            self.principals.delete_token(msp_id, &dead.hash).await?;
        }
        let issued = self.new_token(msp_id, &principal, name, now, now + Duration::days(i64::from(days)))?;
        self.principals.put_token(&issued.stored).await?;
        self.audit.record(access, "token.issued", format!("token {} ({name}) of principal {id}", issued.stored.token_id)).await?;
        Ok(issued)
    }

    fn new_token(
        &self,
        msp_id: &MspId,
        principal: &Principal,
        name: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<IssuedToken, AdminError> {
        let (token, parsed) = ApiToken::issue(msp_id).map_err(|e| AdminError::Random(e.to_string()))?;
        let text = token.expose();
        let ends_with = text.get(text.len().saturating_sub(4)..).unwrap_or_default().to_owned();
        let stored = StoredToken {
            msp_id: msp_id.clone(),
            hash: parsed.hash,
            token_id: TokenId::parse(&random_id("t")?).map_err(|e| AdminError::Random(e.to_string()))?,
            principal_id: Some(principal.principal_id.clone()),
            name: name.to_owned(),
            created_at: now,
            expires_at: Some(expires_at),
            revoked_at: None,
            ends_with,
        };
        Ok(IssuedToken { token, stored })
    }

    async fn token_of(&self, msp_id: &MspId, id: &PrincipalId, token_id: &TokenId) -> Result<StoredToken, AdminError> {
        self.principals
            .tokens(msp_id)
            .await?
            .into_iter()
            .find(|t| t.principal_id.as_ref() == Some(id) && t.token_id == *token_id)
            .ok_or_else(|| AdminError::NotFound(format!("token {token_id} of principal {id}")))
    }

    /// Revokes a token at once (revoking it again changes nothing).
    ///
    /// # Errors
    /// Forbidden without principals:manage; NotFound.
    pub async fn revoke_token(&self, access: &Access, id: &PrincipalId, token_id: &TokenId) -> Result<StoredToken, AdminError> {
        let msp_id = access.permit(Permission::PrincipalsManage)?;
        let mut token = self.token_of(msp_id, id, token_id).await?;
        let now = self.clock.now();
        if token.revoked_at.is_none_or(|at| at > now) {
            token.revoked_at = Some(now);
            self.principals.put_token(&token).await?;
        }
        self.audit.record(access, "token.revoked", format!("token {token_id} ({}) of principal {id}", token.name)).await?;
        Ok(token)
    }

    /// Rotates a token: a new one with the same name and life, and the old one revoked after
    /// `grace_minutes` (0 to 1,440; 0: at once), so a client can switch without a gap.
    ///
    /// # Errors
    /// Forbidden without principals:manage; NotFound; Invalid grace; Refused for a dead token.
    pub async fn rotate_token(
        &self,
        access: &Access,
        id: &PrincipalId,
        token_id: &TokenId,
        grace_minutes: u32,
    ) -> Result<IssuedToken, AdminError> {
        let msp_id = access.permit(Permission::PrincipalsManage)?;
        if grace_minutes > 1_440 {
            return Err(AdminError::Invalid("grace_minutes: 0 to 1440".into()));
        }
        let principal = self.principals.get_principal(msp_id, id).await?.ok_or_else(|| not_found_principal(id))?;
        let mut old = self.token_of(msp_id, id, token_id).await?;
        let now = self.clock.now();
        if !old.is_live(now) {
            return Err(AdminError::Refused(format!("token {token_id} is expired or revoked; issue a new one")));
        }
        let life = old.expires_at.map_or(Duration::days(i64::from(TOKEN_DAYS_DEFAULT)), |at| at - old.created_at);
        let issued = self.new_token(msp_id, &principal, &old.name, now, now + life)?;
        // The new token first: a crash between the writes leaves both live, never neither.
        self.principals.put_token(&issued.stored).await?;
        old.revoked_at = Some(now + Duration::minutes(i64::from(grace_minutes)));
        self.principals.put_token(&old).await?;
        self.audit
            .record(
                access,
                "token.rotated",
                format!("token {token_id} ({}) of principal {id}, replaced by {}", old.name, issued.stored.token_id),
            )
            .await?;
        Ok(issued)
    }

    /// The MSP's configuration audit log, newest first.
    ///
    /// # Errors
    /// Forbidden without audit:read; Invalid limit.
    pub async fn audit_log(&self, access: &Access, limit: usize, before: Option<&str>) -> Result<AuditPage, AdminError> {
        let msp_id = access.permit(Permission::AuditRead)?;
        if !(1..=200).contains(&limit) {
            return Err(AdminError::Invalid("limit: 1 to 200".into()));
        }
        if let Some(before) = before
            && (before.len() > 40 || !before.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
        {
            return Err(AdminError::Invalid("cursor: not a cursor this log gave".into()));
        }
        Ok(self.audit.log.entries(msp_id, limit, before).await?)
    }
}

/// When a dead token died (revoked or expired), if it has.
fn dead_since(token: &StoredToken) -> Option<DateTime<Utc>> {
    match (token.revoked_at, token.expires_at) {
        (Some(revoked), Some(expires)) => Some(revoked.min(expires)),
        (Some(at), None) | (None, Some(at)) => Some(at),
        (None, None) => None,
    }
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
