//! Who may do what through the config API: an MSP's principals (staff and automations), their
//! API tokens, roles and permissions, the alert categories a principal is limited to, and the
//! authenticated [`Access`] every service method checks. The configuration audit log's entries
//! are here too. AWS-free; stored through [`crate::ports::PrincipalStore`] and
//! [`crate::ports::AuditLog`].

use crate::alert::Category;
use crate::ids::{MspId, PrincipalId, TokenId};
use crate::services::admin::AdminError;
use crate::tenant::TokenHash;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One thing a principal may do. Roles are fixed sets of these; automations hold an explicit
/// list (their scopes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Permission {
    /// List and read alerts, their counts and the SIEM feed (within the principal's categories).
    #[serde(rename = "alerts:read")]
    AlertsRead,
    /// Change an alert's status, assignee, classification and comments; suppress alerts like
    /// one (within the principal's categories).
    #[serde(rename = "alerts:triage")]
    AlertsTriage,
    /// Create and delete suppression rules (a category-limited principal: only rules naming a
    /// policy of its categories).
    #[serde(rename = "suppressions:write")]
    SuppressionsWrite,
    /// Read tenants, streams, the MSP's settings, destinations and policies (policies and
    /// suppressions within the principal's categories).
    #[serde(rename = "config:read")]
    ConfigRead,
    /// Change tenants, streams, the MSP's settings, destinations (without credentials),
    /// policies, switches and policy context; run tests, lookups and replays.
    #[serde(rename = "config:write")]
    ConfigWrite,
    /// Write credentials: a tenant's Microsoft 365 app, a destination's PSA credentials.
    #[serde(rename = "credentials:write")]
    CredentialsWrite,
    /// Create, change and delete principals and their tokens.
    #[serde(rename = "principals:manage")]
    PrincipalsManage,
    /// Read the MSP's configuration audit log.
    #[serde(rename = "audit:read")]
    AuditRead,
    /// Remove an admin relationship to a customer tenant (the admin-relationship monitor's
    /// removal action).
    #[serde(rename = "relationships:remove")]
    RelationshipsRemove,
    /// Offboard a customer tenant: stop watching it and, after the retention, delete its data.
    #[serde(rename = "tenants:offboard")]
    TenantsOffboard,
}

impl Permission {
    /// Every permission, in the order the README's table lists them.
    pub const ALL: [Permission; 10] = [
        Self::AlertsRead,
        Self::AlertsTriage,
        Self::SuppressionsWrite,
        Self::ConfigRead,
        Self::ConfigWrite,
        Self::CredentialsWrite,
        Self::PrincipalsManage,
        Self::AuditRead,
        Self::RelationshipsRemove,
        Self::TenantsOffboard,
    ];

    /// The scope's name (`alerts:read` …).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AlertsRead => "alerts:read",
            Self::AlertsTriage => "alerts:triage",
            Self::SuppressionsWrite => "suppressions:write",
            Self::ConfigRead => "config:read",
            Self::ConfigWrite => "config:write",
            Self::CredentialsWrite => "credentials:write",
            Self::PrincipalsManage => "principals:manage",
            Self::AuditRead => "audit:read",
            Self::RelationshipsRemove => "relationships:remove",
            Self::TenantsOffboard => "tenants:offboard",
        }
    }
}

/// A principal's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Everything, including principals and credentials.
    Owner,
    /// Configuration, policies, destinations (not their credentials), triage and suppressions.
    Engineer,
    /// Triage and suppression within their alert categories.
    Analyst,
    /// Reading within their alert categories, and the audit log.
    ReadOnly,
    /// A machine: exactly the scopes it was given (never principals:manage).
    Automation,
}

impl Role {
    /// Every role, in the order the README's table lists them.
    pub const ALL: [Role; 5] = [Self::Owner, Self::Engineer, Self::Analyst, Self::ReadOnly, Self::Automation];

    /// The role's name as the API spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Engineer => "engineer",
            Self::Analyst => "analyst",
            Self::ReadOnly => "read-only",
            Self::Automation => "automation",
        }
    }

    /// What the role may do; an automation's are its scopes.
    #[must_use]
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Self::Owner => &Permission::ALL,
            Self::Engineer => &[AlertsRead, AlertsTriage, SuppressionsWrite, ConfigRead, ConfigWrite, AuditRead],
            Self::Analyst => &[AlertsRead, AlertsTriage, SuppressionsWrite, ConfigRead],
            Self::ReadOnly => &[AlertsRead, ConfigRead, AuditRead],
            Self::Automation => &[],
        }
    }

    /// Whether a principal of this role may be limited to some alert categories. Owners and
    /// engineers configure every policy, so they always see every category.
    #[must_use]
    pub fn may_be_category_limited(self) -> bool {
        matches!(self, Self::Analyst | Self::ReadOnly | Self::Automation)
    }
}

/// Most principals an MSP may have.
pub const PRINCIPALS_MAX: usize = 200;
/// Most live (neither revoked nor expired) tokens a principal may hold at once.
pub const LIVE_TOKENS_MAX: usize = 10;
/// Longest life of a token, in days.
pub const TOKEN_DAYS_MAX: u32 = 397;
/// Life of a token when the request names none, in days.
pub const TOKEN_DAYS_DEFAULT: u32 = 90;
/// Longest principal or token name, in characters.
pub const NAME_CHARS: usize = 100;
/// Longest e-mail address, in characters.
pub const EMAIL_CHARS: usize = 254;
/// How long configuration audit entries are kept, in days.
pub const AUDIT_RETENTION_DAYS: i64 = 400;

/// A member of an MSP's staff, or an automation, that authenticates with its API tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Principal {
    pub msp_id: MspId,
    pub principal_id: PrincipalId,
    pub name: String,
    /// Staff only (automations have none).
    #[serde(default)]
    pub email: Option<String>,
    pub role: Role,
    /// Limits what an analyst, reader or automation sees to these alert categories; `None`:
    /// every category.
    #[serde(default)]
    pub categories: Option<BTreeSet<Category>>,
    /// An automation's permissions (empty for every other role).
    #[serde(default)]
    pub scopes: BTreeSet<Permission>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Principal {
    /// What this principal may do.
    #[must_use]
    pub fn permissions(&self) -> BTreeSet<Permission> {
        if self.role == Role::Automation { self.scopes.clone() } else { self.role.permissions().iter().copied().collect() }
    }

    /// Checks the principal's fields: names and e-mail within bounds, categories only where the
    /// role allows them (and not empty), scopes only and always for automations, never
    /// principals:manage.
    ///
    /// # Errors
    /// Invalid, naming the field.
    pub fn check(&self) -> Result<(), AdminError> {
        let invalid = |detail: String| Err(AdminError::Invalid(detail));
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > NAME_CHARS {
            return invalid(format!("name: 1 to {NAME_CHARS} characters"));
        }
        if let Some(email) = &self.email
            && (email.chars().count() > EMAIL_CHARS || !email.contains('@') || email.contains(char::is_whitespace))
        {
            return invalid(format!("email: {email:?} is not an e-mail address of at most {EMAIL_CHARS} characters"));
        }
        if self.role != Role::Automation && self.email.is_none() {
            return invalid("email: staff principals have an e-mail address".into());
        }
        match &self.categories {
            Some(_) if !self.role.may_be_category_limited() => {
                return invalid(format!("categories: a principal of role {} sees every category", self.role.as_str()));
            }
            Some(categories) if categories.is_empty() => {
                return invalid("categories: name at least one category, or leave it out for every category".into());
            }
            _ => {}
        }
        if self.role == Role::Automation {
            if self.scopes.is_empty() {
                return invalid("scopes: an automation needs at least one scope".into());
            }
            if self.scopes.contains(&Permission::PrincipalsManage) {
                return invalid("scopes: an automation may not manage principals".into());
            }
        } else if !self.scopes.is_empty() {
            return invalid(format!("scopes: only automations have scopes; a {} has its role's permissions", self.role.as_str()));
        }
        Ok(())
    }
}

/// An API token as stored: its hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredToken {
    pub msp_id: MspId,
    pub hash: TokenHash,
    pub token_id: TokenId,
    /// `None`: a token issued before principals existed, which acts as an owner.
    #[serde(default)]
    pub principal_id: Option<PrincipalId>,
    #[serde(default)]
    pub name: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub revoked_at: Option<DateTime<Utc>>,
    /// The token's last four characters, so its holder can tell which one it is.
    #[serde(default)]
    pub ends_with: String,
}

impl StoredToken {
    /// Whether the token authenticates at `now`.
    #[must_use]
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none_or(|at| at > now) && self.expires_at.is_none_or(|at| at > now)
    }
}

/// The authenticated caller: its MSP, who it is and what it may do. Every service method that
/// serves the API takes one and checks it ([`Access::permit`], [`Access::sees`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    msp_id: MspId,
    principal_id: PrincipalId,
    name: String,
    role: Role,
    permissions: BTreeSet<Permission>,
    categories: Option<BTreeSet<Category>>,
}

/// The principal id under which a token issued before principals acts.
pub const LEGACY_TOKEN_PRINCIPAL: &str = "legacy-token";
/// The principal id under which a consent through a consent link is recorded.
pub const CONSENT_REDIRECT_PRINCIPAL: &str = "consent-redirect";
/// The principal id under which the operator's tool (`vigil-admin`) acts.
pub const OPERATOR_PRINCIPAL: &str = "operator";

impl Access {
    /// The access of a principal.
    #[must_use]
    pub fn of(principal: &Principal) -> Self {
        Self {
            msp_id: principal.msp_id.clone(),
            principal_id: principal.principal_id.clone(),
            name: principal.name.clone(),
            role: principal.role,
            permissions: principal.permissions(),
            categories: principal.categories.clone(),
        }
    }

    /// Full access for the operator's tool acting on one MSP (creating its first owner,
    /// seeding a demo). Never built from anything a caller sends.
    #[must_use]
    pub fn operator(msp_id: &MspId) -> Self {
        Self::owner_named(msp_id, OPERATOR_PRINCIPAL, "operator (vigil-admin)")
    }

    /// An owner's access for a token issued before principals existed.
    #[must_use]
    pub fn legacy_token(msp_id: &MspId) -> Self {
        Self::owner_named(msp_id, LEGACY_TOKEN_PRINCIPAL, "API token issued before principals")
    }

    /// The actor of a customer administrator's consent, recorded from Microsoft's redirect
    /// (which carries no token; its signed state names the MSP). It may do nothing itself.
    #[must_use]
    pub fn consent_redirect(msp_id: &MspId) -> Self {
        Self {
            msp_id: msp_id.clone(),
            principal_id: PrincipalId::parse(CONSENT_REDIRECT_PRINCIPAL).unwrap_or_else(|_| unreachable!("constant ids parse")),
            name: "customer administrator (consent link)".to_owned(),
            role: Role::Automation,
            permissions: BTreeSet::new(),
            categories: None,
        }
    }

    fn owner_named(msp_id: &MspId, principal_id: &str, name: &str) -> Self {
        Self {
            msp_id: msp_id.clone(),
            principal_id: PrincipalId::parse(principal_id).unwrap_or_else(|_| unreachable!("constant ids parse")),
            name: name.to_owned(),
            role: Role::Owner,
            permissions: Permission::ALL.into_iter().collect(),
            categories: None,
        }
    }

    /// The caller's MSP, when it holds `permission`.
    ///
    /// # Errors
    /// [`AdminError::Forbidden`] naming the permission.
    pub fn permit(&self, permission: Permission) -> Result<&MspId, AdminError> {
        if self.permissions.contains(&permission) {
            Ok(&self.msp_id)
        } else {
            Err(AdminError::Forbidden(format!(
                "this needs the {} permission, which a {} token does not have",
                permission.as_str(),
                self.role.as_str()
            )))
        }
    }

    /// Whether the caller holds `permission`.
    #[must_use]
    pub fn may(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }

    /// Whether the caller may see alerts (and policies, suppressions) of `category`.
    #[must_use]
    pub fn sees(&self, category: Category) -> bool {
        self.categories.as_ref().is_none_or(|categories| categories.contains(&category))
    }

    /// Whether the caller sees every category.
    #[must_use]
    pub fn sees_every_category(&self) -> bool {
        self.categories.is_none()
    }

    /// The caller's MSP (for reads the caller's permissions were already checked for).
    #[must_use]
    pub fn msp_id(&self) -> &MspId {
        &self.msp_id
    }

    #[must_use]
    pub fn principal_id(&self) -> &PrincipalId {
        &self.principal_id
    }

    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// Who the caller is, as alert histories and comments record it: `name (principal id)`.
    #[must_use]
    pub fn actor(&self) -> String {
        format!("{} ({})", self.name, self.principal_id)
    }

    /// The caller as audit entries record it.
    #[must_use]
    pub fn actor_ref(&self) -> Actor {
        Actor { principal_id: self.principal_id.clone(), name: self.name.clone() }
    }
}

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Actor {
    pub principal_id: PrincipalId,
    pub name: String,
}

/// One change to an MSP's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub msp_id: MspId,
    /// Orders entries: `{milliseconds since the epoch, 13 digits}-{random hex}`.
    pub entry_id: String,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    /// What happened, `thing.verb` (`tenant.registered`, `policy.replaced` …).
    pub action: String,
    /// What it happened to (`tenant 3f…`, `destination psa` …).
    pub target: String,
}

/// Longest audit target, in characters (longer ones are cut).
pub const AUDIT_TARGET_CHARS: usize = 200;

impl AuditEntry {
    /// A new entry at `at`, by `access`.
    ///
    /// # Errors
    /// When the random source fails.
    pub fn new(access: &Access, at: DateTime<Utc>, action: &str, target: &str) -> Result<Self, AdminError> {
        let mut bytes = [0u8; 6];
        getrandom::fill(&mut bytes).map_err(|e| AdminError::Random(e.to_string()))?;
        Ok(Self {
            msp_id: access.msp_id.clone(),
            entry_id: format!("{:013}-{}", at.timestamp_millis().max(0), hex::encode(bytes)),
            at,
            actor: access.actor_ref(),
            action: action.to_owned(),
            target: target.chars().take(AUDIT_TARGET_CHARS).collect(),
        })
    }
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// The last entry's id when more may follow.
    pub next: Option<String>,
}

/// The README's role table: one row per permission, one column per role (automations hold
/// the scopes they were given), and whether category limits apply.
#[must_use]
pub fn role_table() -> String {
    let mut table = String::from("| permission | owner | engineer | analyst | read-only | automation |\n|---|---|---|---|---|---|\n");
    for permission in Permission::ALL {
        table.push_str(&format!("| `{}` |", permission.as_str()));
        for role in Role::ALL {
            let cell = match role {
                Role::Automation if permission == Permission::PrincipalsManage => "never",
                Role::Automation => "if given",
                _ if role.permissions().contains(&permission) => "yes",
                _ => "—",
            };
            table.push_str(&format!(" {cell} |"));
        }
        table.push('\n');
    }
    table.push_str("| limited to alert categories | never | never | if given | if given | if given |\n");
    table
}

/// Where the README's role table starts.
pub const ROLE_TABLE_START: &str = "<!-- role-table:start (generated from shared/src/access.rs) -->";
/// Where it ends.
pub const ROLE_TABLE_END: &str = "<!-- role-table:end -->";

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn the_readme_role_table_is_the_one_generated_from_the_roles() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let start = readme.find(ROLE_TABLE_START).expect("README.md has the role table start marker") + ROLE_TABLE_START.len();
        let end = readme.find(ROLE_TABLE_END).expect("README.md has the role table end marker");
        let updated = format!("{}\n{}{}", &readme[..start], role_table(), &readme[end..]);
        if std::env::var_os("VIGIL_UPDATE_README").is_some() {
            std::fs::write(&path, &updated).unwrap();
            return;
        }
        assert!(
            updated == readme,
            "README.md's role table differs from the roles; run `VIGIL_UPDATE_README=1 cargo test -p vigil --lib access::tests` and commit README.md"
        );
    }

    fn principal(role: Role) -> Principal {
        let now = Utc::now();
        Principal {
            msp_id: MspId::parse("acme-msp").unwrap(),
            principal_id: PrincipalId::parse("p-1").unwrap(),
            name: "Ann".into(),
            email: Some("ann@acme.example".into()),
            role,
            categories: None,
            scopes: BTreeSet::new(),
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn an_analyst_limited_to_threat_management_sees_only_that_category_and_cannot_configure() {
        let mut analyst = principal(Role::Analyst);
        analyst.categories = Some([Category::ThreatManagement].into());
        let access = Access::of(&analyst);
        assert!(access.sees(Category::ThreatManagement));
        assert!(!access.sees(Category::DataLossPrevention));
        assert!(access.permit(Permission::AlertsTriage).is_ok());
        assert!(matches!(access.permit(Permission::ConfigWrite), Err(AdminError::Forbidden(_))));
    }

    #[test]
    fn an_automation_holds_exactly_its_scopes() {
        let mut automation = principal(Role::Automation);
        automation.email = None;
        automation.scopes = [Permission::AlertsRead].into();
        let access = Access::of(&automation);
        assert!(access.may(Permission::AlertsRead));
        assert!(Permission::ALL.iter().filter(|p| **p != Permission::AlertsRead).all(|p| !access.may(*p)));
    }

    #[test]
    fn principals_are_checked_for_role_consistent_categories_and_scopes() {
        let mut owner = principal(Role::Owner);
        owner.categories = Some([Category::Others].into());
        assert!(owner.check().is_err(), "owners see every category");
        let mut analyst = principal(Role::Analyst);
        analyst.categories = Some(BTreeSet::new());
        assert!(analyst.check().is_err(), "an empty category list would hide everything");
        analyst.scopes = [Permission::AlertsRead].into();
        analyst.categories = None;
        assert!(analyst.check().is_err(), "only automations have scopes");
        let mut automation = principal(Role::Automation);
        assert!(automation.check().is_err(), "an automation needs scopes");
        automation.scopes = [Permission::PrincipalsManage].into();
        assert!(automation.check().is_err(), "no automation manages principals");
        automation.scopes = [Permission::AlertsRead].into();
        assert!(automation.check().is_ok());
        let mut engineer = principal(Role::Engineer);
        engineer.email = None;
        assert!(engineer.check().is_err(), "staff have an e-mail address");
        engineer.email = Some("x".repeat(EMAIL_CHARS) + "@a.example");
        assert!(engineer.check().is_err());
        engineer.email = Some("e@a.example".into());
        engineer.name = "n".repeat(NAME_CHARS + 1);
        assert!(engineer.check().is_err());
    }

    #[test]
    fn a_token_is_live_until_it_expires_or_is_revoked() {
        let now = Utc::now();
        let mut token = StoredToken {
            msp_id: MspId::parse("acme-msp").unwrap(),
            hash: TokenHash("h".into()),
            token_id: TokenId::parse("t-1").unwrap(),
            principal_id: None,
            name: String::new(),
            created_at: now,
            expires_at: Some(now + Duration::hours(1)),
            revoked_at: None,
            ends_with: String::new(),
        };
        assert!(token.is_live(now));
        assert!(!token.is_live(now + Duration::hours(1)), "expired at its expiry");
        token.revoked_at = Some(now + Duration::minutes(5));
        assert!(token.is_live(now), "a rotation's grace period");
        assert!(!token.is_live(now + Duration::minutes(5)));
    }

    #[test]
    fn the_role_table_lists_every_permission_and_role() {
        let table = role_table();
        assert_eq!(table.lines().count(), 2 + Permission::ALL.len() + 1);
        assert!(table.contains("| `principals:manage` | yes | — | — | — | never |"));
        assert!(table.contains("| `alerts:triage` | yes | yes | yes | — | if given |"));
    }
}
