//! Alert tuning and triage behind the config API: policy CRUD (own policies and changed copies
//! of built-ins), per-tenant switches, the policy test bench, suppression rules, and the alert
//! lifecycle (filtered listing, status, assignee, classification, comments, with a history of
//! who changed what). Every method takes the authenticated caller's [`Access`] and checks its
//! permission; a principal limited to some alert categories sees only their policies, alerts
//! and suppressions. Configuration changes are recorded in the audit log; triage is recorded
//! in the alert's history under the authenticated principal.
//!
//! Time-ordered alert reads (the list and the SIEM feed) are in [`super::alert_feed`].
//!
//! Resolving an alert through the API (or taking it back from Resolved) announces it on the
//! tickets queue ([`AlertChangedMessage::fan_out`]), so the dispatcher closes (or carries on
//! with) its tickets in every destination.

use super::access::AuditTrail;
use super::admin::AdminError;
use super::shadow::{self, ShadowTenant};
use crate::access::{Access, Permission};
use crate::alert::{Alert, AlertStatus, Category, Classification, Comment, PolicyMode, Severity, TriageChange};
use crate::audit::AuditRecord;
use crate::clock::Clock;
use crate::error::StoreError;
use crate::ids::{AlertId, MspId, PolicyId, TenantId};
use crate::limits;
use crate::messages::AlertChangedMessage;
use crate::policy::condition::Condition;
use crate::policy::model::PolicyDefinition;
use crate::policy::{CompiledPolicy, CompiledTrigger, catalogue, effective_definitions};
use crate::ports::{AlertStore, ConfigStore, MessageQueue, PolicyStore, StoredPolicy, Suppression, TenantChange};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// A policy as the API lists it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyView {
    /// `builtin`, `builtin-changed` (the MSP's copy of a built-in) or `custom`.
    pub source: &'static str,
    pub policy: PolicyDefinition,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
}

/// Alert filters of the list endpoint; every given one must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AlertFilter {
    pub status: Option<AlertStatus>,
    pub severity: Option<Severity>,
    pub category: Option<Category>,
    pub policy: Option<PolicyId>,
    pub tenant: Option<TenantId>,
    pub mode: Option<PolicyMode>,
    /// Last seen at or after.
    pub from: Option<DateTime<Utc>>,
    /// Last seen before.
    pub to: Option<DateTime<Utc>>,
}

impl AlertFilter {
    pub(crate) fn accepts(&self, alert: &Alert) -> bool {
        self.status.is_none_or(|s| s == alert.status)
            && self.severity.is_none_or(|s| s == alert.severity)
            && self.category.is_none_or(|c| c == alert.category)
            && self.policy.as_ref().is_none_or(|p| *p == alert.policy_id)
            && self.tenant.as_ref().is_none_or(|t| *t == alert.tenant_id)
            && self.mode.is_none_or(|m| m == alert.detail.mode)
            && self.from.is_none_or(|f| alert.last_seen >= f)
            && self.to.is_none_or(|t| alert.last_seen < t)
    }
}

/// A change to an alert's triage; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TriageUpdate {
    pub status: Option<AlertStatus>,
    /// `""` clears it.
    pub assignee: Option<String>,
    pub classification: Option<Classification>,
    pub comment: Option<String>,
}

/// A new suppression rule as the API accepts it.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewSuppression {
    #[serde(default)]
    pub tenant_id: Option<TenantId>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub policy_id: Option<PolicyId>,
    #[serde(default)]
    pub conditions: Option<Condition>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    pub reason: String,
}

/// "Suppress alerts like this one".
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SuppressFromAlert {
    /// `user` (default): this policy, tenant and user/group; `tenant`: this policy and tenant.
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    pub reason: String,
}

/// What the test bench found.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyTestResult {
    pub records: usize,
    pub matches: Vec<Value>,
    pub alerts: Vec<Value>,
    /// Records that could not be read as audit records, with why.
    pub rejected: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The tuning use cases.
pub struct TuningService {
    pub config: Arc<dyn ConfigStore>,
    pub policies: Arc<dyn PolicyStore>,
    pub alerts: Arc<dyn AlertStore>,
    /// The tickets queue: a change to or from Resolved is announced on it.
    pub tickets: Arc<dyn MessageQueue>,
    pub clock: Arc<dyn Clock>,
    /// Where configuration changes are recorded.
    pub audit: AuditTrail,
}

fn invalid(detail: impl Into<String>) -> AdminError {
    AdminError::Invalid(detail.into())
}

/// Parses and checks a policy body; errors name the field.
///
/// # Errors
/// Invalid with every problem found.
pub fn parse_policy(body: Value) -> Result<PolicyDefinition, AdminError> {
    let definition: PolicyDefinition = serde_json::from_value(body).map_err(|e| invalid(format!("policy: {e}")))?;
    definition.check_limits().map_err(|problems| invalid(problems.join("; ")))?;
    definition.validate().map_err(|problems| invalid(problems.join("; ")))?;
    Ok(definition)
}

impl TuningService {
    /// Every policy in force for the MSP, built-ins first.
    ///
    /// # Errors
    /// Forbidden without config:read; when the store fails.
    pub async fn list_policies(&self, access: &Access) -> Result<Vec<PolicyView>, AdminError> {
        let msp_id = access.permit(Permission::ConfigRead)?;
        let stored = self.policies.list_policies(msp_id).await?;
        Ok(effective_definitions(&stored)
            .into_iter()
            .filter(|definition| access.sees(definition.category))
            .map(|definition| view(&stored, &definition))
            .collect())
    }

    /// The definition in force for the MSP under `policy_id`: its own policy or changed copy of
    /// a built-in, else the built-in.
    ///
    /// # Errors
    /// NotFound when neither a built-in nor the MSP's.
    async fn policy_in_force(&self, msp_id: &MspId, policy_id: &PolicyId) -> Result<Arc<PolicyDefinition>, AdminError> {
        match self.policies.get_policy(msp_id, policy_id).await? {
            Some(stored) => Ok(Arc::new(stored.definition)),
            None => catalogue::builtin(policy_id.as_str()).cloned().ok_or_else(|| AdminError::NotFound(format!("policy {policy_id}"))),
        }
    }

    /// The definition a test or replay runs: a string is a policy id (the policy in force for
    /// the MSP), anything else a definition given whole.
    ///
    /// # Errors
    /// NotFound for an unknown id or built-in, Invalid for a definition that does not parse.
    pub(crate) async fn definition_for(&self, msp_id: &MspId, policy: Value) -> Result<Arc<PolicyDefinition>, AdminError> {
        match policy {
            // An id: the policy in force for the MSP (its own, its copy of a built-in, or the built-in).
            Value::String(id) => {
                let id = PolicyId::parse(&id).map_err(|e| AdminError::NotFound(format!("policy {id:?} ({})", e.reason)))?;
                self.policy_in_force(msp_id, &id).await
            }
            body => {
                let definition = parse_policy(body)?;
                let id = definition.id.as_str();
                if catalogue::is_builtin(id) && catalogue::builtin(id).is_none() {
                    return Err(AdminError::NotFound(format!("built-in policy {id}")));
                }
                Ok(Arc::new(definition))
            }
        }
    }

    /// One policy.
    ///
    /// # Errors
    /// Forbidden without config:read; NotFound when neither a built-in nor the MSP's, or of a
    /// category the caller does not see.
    pub async fn policy(&self, access: &Access, policy_id: &PolicyId) -> Result<PolicyView, AdminError> {
        let msp_id = access.permit(Permission::ConfigRead)?;
        let found = self.policy_of(msp_id, policy_id).await?;
        if access.sees(found.policy.category) { Ok(found) } else { Err(AdminError::NotFound(format!("policy {policy_id}"))) }
    }

    async fn policy_of(&self, msp_id: &MspId, policy_id: &PolicyId) -> Result<PolicyView, AdminError> {
        let stored: Vec<StoredPolicy> = self.policies.get_policy(msp_id, policy_id).await?.into_iter().collect();
        let definition = stored
            .first()
            .map(|s| Arc::new(s.definition.clone()))
            .or_else(|| catalogue::builtin(policy_id.as_str()).cloned())
            .ok_or_else(|| AdminError::NotFound(format!("policy {policy_id}")))?;
        Ok(view(&stored, &definition))
    }

    /// Creates (`create_only`) or replaces a policy. Built-ins may be replaced (the MSP's copy
    /// wins) but not created; own policies have ids starting `custom.`.
    ///
    /// # Errors
    /// Invalid body, Conflict when creating an existing id, NotFound for an unknown built-in.
    pub async fn put_policy(
        &self,
        access: &Access,
        path_id: Option<&PolicyId>,
        mut body: Value,
        create_only: bool,
    ) -> Result<PolicyView, AdminError> {
        let msp_id = access.permit(Permission::ConfigWrite)?;
        if let (Some(id), Some(object)) = (path_id, body.as_object_mut()) {
            match object.get("id").and_then(Value::as_str) {
                None => {
                    object.insert("id".into(), Value::String(id.to_string()));
                }
                Some(given) if given != id.as_str() => return Err(invalid(format!("id {given:?} differs from the path's {id}"))),
                Some(_) => {}
            }
        }
        let definition = parse_policy(body)?;
        let id = definition.id.as_str();
        if catalogue::is_builtin(id) {
            if catalogue::builtin(id).is_none() {
                return Err(AdminError::NotFound(format!("built-in policy {id}")));
            }
            if create_only {
                return Err(AdminError::Conflict(format!("built-in policy {id}")));
            }
        } else if !id.starts_with("custom.") {
            return Err(invalid("id: own policies have ids starting with \"custom.\""));
        }
        if create_only && self.policies.get_policy(msp_id, &definition.id).await?.is_some() {
            return Err(AdminError::Conflict(format!("policy {id}")));
        }
        CompiledPolicy::compile(Arc::new(definition.clone())).map_err(invalid)?;
        let stored = StoredPolicy { definition, updated_at: self.clock.now(), updated_by: access.actor() };
        self.policies.put_policy(msp_id, &stored).await?;
        let action = if create_only { "policy.created" } else { "policy.replaced" };
        self.audit.record(access, action, format!("policy {}", stored.definition.id)).await?;
        Ok(view(std::slice::from_ref(&stored), &Arc::new(stored.definition.clone())))
    }

    /// Deletes an own policy, or the MSP's copy of a built-in (the shipped one is back).
    ///
    /// # Errors
    /// NotFound when there is nothing of the MSP's to delete.
    pub async fn delete_policy(&self, access: &Access, policy_id: &PolicyId) -> Result<(), AdminError> {
        let msp_id = access.permit(Permission::ConfigWrite)?;
        if self.policies.delete_policy(msp_id, policy_id).await? {
            self.audit.record(access, "policy.deleted", format!("policy {policy_id}")).await
        } else {
            Err(AdminError::NotFound(format!("policy {policy_id}")))
        }
    }

    /// Turns a policy on or off for one tenant.
    ///
    /// # Errors
    /// NotFound for an unknown tenant or policy.
    pub async fn set_tenant_policy(
        &self,
        access: &Access,
        tenant_id: &TenantId,
        policy_id: &PolicyId,
        enabled: bool,
    ) -> Result<(), AdminError> {
        let msp_id = access.permit(Permission::ConfigWrite)?;
        self.config.get_tenant(msp_id, tenant_id).await?.ok_or_else(|| AdminError::NotFound(format!("tenant {tenant_id}")))?;
        self.policy_of(msp_id, policy_id).await?;
        self.policies.set_tenant_policy(msp_id, tenant_id, policy_id, enabled).await?;
        let state = if enabled { "on" } else { "off" };
        self.audit.record(access, "tenant.policy-switched", format!("policy {policy_id} {state} for tenant {tenant_id}")).await
    }

    /// The tenant's own switches (policies turned on or off for it alone), of the policies the
    /// caller sees; a policy without one follows its own `enabled`.
    ///
    /// # Errors
    /// Forbidden without config:read; NotFound for an unknown tenant.
    pub async fn tenant_policy_switches(&self, access: &Access, tenant_id: &TenantId) -> Result<Vec<(PolicyId, bool)>, AdminError> {
        let msp_id = access.permit(Permission::ConfigRead)?;
        self.config.get_tenant(msp_id, tenant_id).await?.ok_or_else(|| AdminError::NotFound(format!("tenant {tenant_id}")))?;
        let visible: std::collections::BTreeSet<PolicyId> =
            self.list_policies(access).await?.into_iter().map(|view| view.policy.id).collect();
        let mut switches = self.policies.tenant_policies(msp_id, tenant_id).await?;
        switches.retain(|(policy_id, _)| visible.contains(policy_id));
        switches.sort();
        Ok(switches)
    }

    /// Sets what policies know of a tenant: its mail domains and break-glass accounts.
    ///
    /// # Errors
    /// Invalid values, NotFound for an unknown tenant.
    pub async fn set_policy_context(
        &self,
        access: &Access,
        tenant_id: &TenantId,
        domains: Vec<String>,
        break_glass_accounts: Vec<String>,
    ) -> Result<crate::tenant::Tenant, AdminError> {
        let msp_id = access.permit(Permission::ConfigWrite)?;
        let domains = super::admin::mail_domains(domains)?;
        limits::entries("break_glass_accounts", &break_glass_accounts, limits::BREAK_GLASS_ACCOUNTS_MAX)?;
        let accounts: Vec<String> = break_glass_accounts.into_iter().map(|a| a.trim().to_lowercase()).collect();
        limits::list("break_glass_accounts", &accounts, limits::BREAK_GLASS_ACCOUNTS_MAX, limits::USER_CHARS)?;
        if let Some(bad) = accounts.iter().find(|a| !a.contains('@') || a.contains(char::is_whitespace)) {
            return Err(invalid(format!("{bad:?} is not a user principal name")));
        }
        let change = TenantChange::PolicyContext { domains, break_glass_accounts: accounts };
        // Evaluators read the tenant with every message, so the change applies at once.
        let tenant = self
            .config
            .update_tenant(msp_id, tenant_id, &change)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("tenant {tenant_id}")))?;
        self.audit.record(access, "tenant.policy-context-changed", format!("tenant {tenant_id}")).await?;
        Ok(tenant)
    }

    /// Runs a policy over fixture records without storing anything: what would match and what
    /// alerts would result.
    ///
    /// # Errors
    /// Invalid policy, NotFound for an unknown tenant.
    pub async fn test_policy(
        &self,
        access: &Access,
        policy: Value,
        records: Vec<Value>,
        tenant_id: Option<&TenantId>,
    ) -> Result<PolicyTestResult, AdminError> {
        let msp_id = access.permit(Permission::ConfigWrite)?;
        let definition = self.definition_for(msp_id, policy).await?;
        let compiled = CompiledPolicy::compile(definition).map_err(invalid)?;
        let tenant = match tenant_id {
            Some(id) => {
                let tenant = self.config.get_tenant(msp_id, id).await?.ok_or_else(|| AdminError::NotFound(format!("tenant {id}")))?;
                ShadowTenant::of(&tenant)
            }
            None => ShadowTenant::placeholder(),
        };
        let scope = tenant.scope(msp_id);
        let now = self.clock.now();
        let mut result =
            PolicyTestResult { records: records.len(), matches: Vec::new(), alerts: Vec::new(), rejected: Vec::new(), note: None };
        let mut found = Vec::new();
        for (index, value) in records.into_iter().enumerate() {
            match AuditRecord::from_value(value) {
                Ok(record) => {
                    if let Some(m) = compiled.evaluate_described(&scope, &record) {
                        result.matches.push(serde_json::json!({"index": index, "record_id": m.record_id, "title": m.title, "group_key": m.group_key, "resolves": m.resolves}));
                        found.push(m);
                    }
                }
                Err(e) => result.rejected.push(serde_json::json!({"index": index, "error": e.to_string()})),
            }
        }
        if matches!(compiled.trigger, CompiledTrigger::UnusualActivity { .. }) {
            result.note = Some(shadow::UNUSUAL_ACTIVITY_NOTE.into());
        }
        result.alerts = shadow::alerts_from_matches(&compiled, &scope, &found, now).iter().map(shadow::alert_summary).collect();
        Ok(result)
    }

    /// Creates a suppression rule.
    ///
    /// # Errors
    /// Forbidden without suppressions:write, or, for a principal limited to some categories,
    /// without a `policy_id` of one of them; Invalid values, NotFound for an unknown tenant.
    pub async fn create_suppression(&self, access: &Access, body: NewSuppression) -> Result<Suppression, AdminError> {
        let msp_id = access.permit(Permission::SuppressionsWrite)?;
        if !access.sees_every_category() && body.policy_id.is_none() {
            return Err(AdminError::Forbidden(
                "a principal limited to some alert categories suppresses one policy at a time: name its policy_id".into(),
            ));
        }
        if body.reason.trim().is_empty() {
            return Err(invalid("reason: say why these alerts are suppressed"));
        }
        limits::chars("reason", body.reason.trim(), limits::SUPPRESSION_REASON_CHARS)?;
        if let Some(user) = &body.user {
            limits::chars("user", user.trim(), limits::USER_CHARS)?;
        }
        if let Some(conditions) = &body.conditions {
            limits::condition("conditions", conditions, limits::SUPPRESSION_CONDITION_BYTES)?;
        }
        if let Some(tenant_id) = &body.tenant_id {
            self.config.get_tenant(msp_id, tenant_id).await?.ok_or_else(|| AdminError::NotFound(format!("tenant {tenant_id}")))?;
        }
        if let Some(policy_id) = &body.policy_id {
            let policy = self.policy_in_force(msp_id, policy_id).await?;
            if !access.sees(policy.category) {
                return Err(AdminError::NotFound(format!("policy {policy_id}")));
            }
        }
        let now = self.clock.now();
        if body.expires_at.is_some_and(|e| e <= now) {
            return Err(invalid("expires_at: must be in the future"));
        }
        if body.tenant_id.is_none() && body.user.is_none() && body.policy_id.is_none() && body.conditions.is_none() {
            return Err(invalid("a suppression needs a scope: tenant_id, user, policy_id or conditions"));
        }
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|e| AdminError::Random(e.to_string()))?;
        let suppression = Suppression {
            id: format!("sup-{}", hex::encode(bytes)),
            msp_id: msp_id.clone(),
            tenant_id: body.tenant_id,
            user: body.user.map(|u| u.trim().to_lowercase()),
            policy_id: body.policy_id,
            conditions: body.conditions,
            expires_at: body.expires_at,
            reason: body.reason.trim().to_owned(),
            author: access.actor(),
            created_at: now,
        };
        self.policies.put_suppression(&suppression).await?;
        self.audit.record(access, "suppression.created", format!("suppression {} ({})", suppression.id, suppression.reason)).await?;
        Ok(suppression)
    }

    /// A suppression for alerts like this one (same policy and tenant, and user unless the
    /// scope is `tenant`).
    ///
    /// # Errors
    /// Forbidden without alerts:read and suppressions:write; NotFound for an unknown alert or
    /// one the caller does not see; Invalid values.
    pub async fn suppress_like(&self, access: &Access, alert_id: &AlertId, body: SuppressFromAlert) -> Result<Suppression, AdminError> {
        access.permit(Permission::AlertsRead)?;
        let msp_id = access.permit(Permission::SuppressionsWrite)?;
        let alert = super::admin::visible_alert(self.alerts.as_ref(), access, msp_id, alert_id).await?;
        let user = match body.scope.as_deref() {
            None | Some("user") => Some(alert.group_key.clone()),
            Some("tenant") => None,
            Some(other) => return Err(invalid(format!("scope: {other:?} is not user or tenant"))),
        };
        let request = NewSuppression {
            tenant_id: Some(alert.tenant_id.clone()),
            user,
            policy_id: Some(alert.policy_id.clone()),
            conditions: None,
            expires_at: body.expires_at,
            reason: body.reason,
        };
        self.create_suppression(access, request).await
    }

    /// The MSP's suppression rules.
    ///
    /// # Errors
    /// Forbidden without config:read. A principal limited to some categories sees the rules
    /// naming a policy of them.
    pub async fn suppressions(&self, access: &Access) -> Result<Vec<Suppression>, AdminError> {
        let msp_id = access.permit(Permission::ConfigRead)?;
        let mut visible = Vec::new();
        for suppression in self.policies.list_suppressions(msp_id).await? {
            if self.suppression_visible(access, &suppression).await? {
                visible.push(suppression);
            }
        }
        Ok(visible)
    }

    /// Whether a category-limited caller may see (and delete) a suppression: it names a policy
    /// of the caller's categories.
    async fn suppression_visible(&self, access: &Access, suppression: &Suppression) -> Result<bool, AdminError> {
        if access.sees_every_category() {
            return Ok(true);
        }
        let Some(policy_id) = &suppression.policy_id else { return Ok(false) };
        match self.policy_in_force(access.msp_id(), policy_id).await {
            Ok(policy) => Ok(access.sees(policy.category)),
            Err(AdminError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes a suppression rule.
    ///
    /// # Errors
    /// Forbidden without suppressions:write; NotFound when the MSP has no such rule, or the
    /// caller does not see it.
    pub async fn delete_suppression(&self, access: &Access, id: &str) -> Result<(), AdminError> {
        let msp_id = access.permit(Permission::SuppressionsWrite)?;
        let not_found = || AdminError::NotFound(format!("suppression {id}"));
        if !access.sees_every_category() {
            let stored = self.policies.list_suppressions(msp_id).await?.into_iter().find(|s| s.id == id).ok_or_else(not_found)?;
            if !self.suppression_visible(access, &stored).await? {
                return Err(not_found());
            }
        }
        if self.policies.delete_suppression(msp_id, id).await? {
            self.audit.record(access, "suppression.deleted", format!("suppression {id}")).await
        } else {
            Err(not_found())
        }
    }

    /// Changes an alert's triage, recording who changed what. A request naming a status when
    /// the alert is or becomes Resolved announces the alert on the tickets queue, even when the
    /// status did not change: a request retried after a failed announcement announces again,
    /// and the dispatcher makes a repeated announcement harmless.
    ///
    /// # Errors
    /// Forbidden without alerts:triage; NotFound for an unknown alert or one the caller does not
    /// see; Invalid values; a queue failure (the change is stored).
    pub async fn triage(&self, access: &Access, alert_id: &AlertId, update: &TriageUpdate) -> Result<Alert, AdminError> {
        let msp_id = access.permit(Permission::AlertsTriage)?;
        let author = access.actor();
        let author = author.as_str();
        if let Some(comment) = &update.comment {
            if comment.trim().is_empty() {
                return Err(invalid(format!("comment: 1 to {} characters", limits::COMMENT_CHARS)));
            }
            limits::chars("comment", comment.trim(), limits::COMMENT_CHARS)?;
        }
        if let Some(assignee) = &update.assignee {
            limits::chars("assignee", assignee.trim(), limits::USER_CHARS)?;
        }
        for _ in 0..5 {
            let mut alert = super::admin::visible_alert(self.alerts.as_ref(), access, msp_id, alert_id).await?;
            let now = self.clock.now();
            let announce = update.status.is_some_and(|status| status == AlertStatus::Resolved || alert.status == AlertStatus::Resolved);
            let mut changes = Vec::new();
            if let Some(status) = update.status
                && status != alert.status
            {
                changes.push(("status", Some(format!("{:?}", alert.status)), Some(format!("{status:?}"))));
                alert.status = status;
                alert.resolved_at = (status == AlertStatus::Resolved).then_some(now);
            }
            if let Some(assignee) = &update.assignee {
                let next = Some(assignee.trim().to_owned()).filter(|a| !a.is_empty());
                if next != alert.triage.assignee {
                    changes.push(("assignee", alert.triage.assignee.clone(), next.clone()));
                    alert.triage.assignee = next;
                }
            }
            if let Some(classification) = update.classification
                && Some(classification) != alert.triage.classification
            {
                changes.push((
                    "classification",
                    alert.triage.classification.map(|c| format!("{c:?}")),
                    Some(format!("{classification:?}")),
                ));
                alert.triage.classification = Some(classification);
            }
            if let Some(comment) = &update.comment {
                alert.triage.comments.push(Comment { author: author.to_owned(), at: now, text: comment.trim().to_owned() });
                changes.push(("comment", None, Some(comment.trim().chars().take(80).collect())));
            }
            if changes.is_empty() {
                return self.announced(alert, announce).await;
            }
            for (field, from, to) in changes {
                alert.triage.history.push(TriageChange { author: author.to_owned(), at: now, field: field.to_owned(), from, to });
            }
            alert.triage.bound();
            // An alert stored before these bounds may still be too large to write.
            alert.fit_within(limits::ALERT_BYTES);
            alert.updated_at = now;
            alert.version += 1;
            match self.alerts.update_alert(&alert).await {
                Ok(()) => return self.announced(alert, announce).await,
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(AdminError::Store(StoreError::Conflict { what: format!("alert {alert_id}") }))
    }

    /// `alert`, after announcing it to every destination when `announce`.
    async fn announced(&self, alert: Alert, announce: bool) -> Result<Alert, AdminError> {
        if announce {
            let message = AlertChangedMessage::fan_out(alert.msp_id.clone(), alert.id.clone());
            let body = serde_json::to_string(&message).map_err(|e| invalid(e.to_string()))?;
            self.tickets.send_all(&[body]).await?;
        }
        Ok(alert)
    }
}

fn view(stored: &[StoredPolicy], definition: &Arc<PolicyDefinition>) -> PolicyView {
    let own = stored.iter().find(|s| s.definition.id == definition.id);
    let source = match (catalogue::is_builtin(definition.id.as_str()), own.is_some()) {
        (true, false) => "builtin",
        (true, true) => "builtin-changed",
        (false, _) => "custom",
    };
    PolicyView {
        source,
        policy: (**definition).clone(),
        updated_at: own.map(|s| s.updated_at),
        updated_by: own.map(|s| s.updated_by.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::memory::{MemoryAlertStore, MemoryConfigStore, MemoryPolicyStore, MemoryQueue};

    fn service(alerts: Arc<MemoryAlertStore>) -> TuningService {
        service_with_queue(alerts, Arc::new(MemoryQueue::default()))
    }

    fn service_with_queue(alerts: Arc<MemoryAlertStore>, tickets: Arc<MemoryQueue>) -> TuningService {
        TuningService {
            config: Arc::new(MemoryConfigStore::default()),
            policies: Arc::new(MemoryPolicyStore::default()),
            alerts,
            tickets,
            clock: Arc::new(SystemClock),
            audit: crate::services::access::AuditTrail {
                log: Arc::new(crate::memory::MemoryConfigStore::default()),
                clock: Arc::new(crate::clock::SystemClock),
            },
        }
    }

    #[tokio::test]
    async fn resolving_an_alert_or_taking_it_back_announces_it_to_every_destination_and_other_changes_do_not() {
        let alerts = Arc::new(MemoryAlertStore::default());
        let alert = stored_alert(&alerts).await;
        let queue = Arc::new(MemoryQueue::default());
        let tuning = service_with_queue(alerts, queue.clone());
        let status = |status| TriageUpdate { status: Some(status), ..TriageUpdate::default() };
        let fan_out = serde_json::to_string(&AlertChangedMessage::fan_out(alert.msp_id.clone(), alert.id.clone())).unwrap();
        tuning
            .triage(
                &Access::operator(&alert.msp_id),
                &alert.id,
                &TriageUpdate { comment: Some("looking".into()), ..TriageUpdate::default() },
            )
            .await
            .unwrap();
        assert!(queue.drain().is_empty(), "a comment closes no ticket");
        let resolved = tuning.triage(&Access::operator(&alert.msp_id), &alert.id, &status(AlertStatus::Resolved)).await.unwrap();
        assert_eq!(resolved.status, AlertStatus::Resolved);
        assert_eq!(queue.drain(), std::slice::from_ref(&fan_out));
        tuning.triage(&Access::operator(&alert.msp_id), &alert.id, &status(AlertStatus::Resolved)).await.unwrap();
        assert_eq!(queue.drain(), std::slice::from_ref(&fan_out), "a retried request announces again");
        let reopened = tuning.triage(&Access::operator(&alert.msp_id), &alert.id, &status(AlertStatus::New)).await.unwrap();
        assert_eq!(reopened.status, AlertStatus::New);
        assert_eq!(queue.drain(), [fan_out], "taking it back from Resolved is announced too");
        tuning.triage(&Access::operator(&alert.msp_id), &alert.id, &status(AlertStatus::New)).await.unwrap();
        assert!(queue.drain().is_empty(), "a status that neither is nor was Resolved announces nothing");
    }

    /// An analyst of `msp` limited to Threat management.
    fn threat_analyst(msp: &MspId) -> Access {
        let now = Utc::now();
        Access::of(&crate::access::Principal {
            msp_id: msp.clone(),
            principal_id: crate::ids::PrincipalId::parse("p-ann").unwrap(),
            name: "Ann".into(),
            email: Some("ann@msp.example".into()),
            role: crate::access::Role::Analyst,
            categories: Some([Category::ThreatManagement].into()),
            scopes: Default::default(),
            created_at: now,
            updated_at: now,
        })
    }

    #[tokio::test]
    async fn a_category_limited_analyst_suppresses_only_policies_of_its_categories_and_sees_only_their_rules() {
        let tuning = service(Arc::new(MemoryAlertStore::default()));
        let msp = MspId::parse("acme").unwrap();
        let (owner, analyst) = (Access::operator(&msp), threat_analyst(&msp));
        let rule = |policy: Option<&str>| NewSuppression {
            tenant_id: None,
            user: Some("svc@contoso.com".into()),
            policy_id: policy.map(|p| PolicyId::parse(p).unwrap()),
            conditions: None,
            expires_at: None,
            reason: "known service account".into(),
        };
        assert!(matches!(tuning.create_suppression(&analyst, rule(None)).await, Err(AdminError::Forbidden(_))), "a rule of every policy");
        let dlp = tuning.create_suppression(&analyst, rule(Some("builtin.mass-download"))).await;
        assert!(matches!(dlp, Err(AdminError::NotFound(_))), "another category's policy is not there for it");
        let own = tuning.create_suppression(&analyst, rule(Some("builtin.forwarding-rule"))).await.unwrap();
        assert_eq!(own.author, "Ann (p-ann)");
        let owners = tuning.create_suppression(&owner, rule(None)).await.unwrap();
        let visible: Vec<String> = tuning.suppressions(&analyst).await.unwrap().into_iter().map(|s| s.id).collect();
        assert_eq!(visible, vec![own.id.clone()]);
        assert_eq!(tuning.suppressions(&owner).await.unwrap().len(), 2, "the owner sees every rule");
        assert!(matches!(tuning.delete_suppression(&analyst, &owners.id).await, Err(AdminError::NotFound(_))));
        tuning.delete_suppression(&analyst, &own.id).await.unwrap();
    }

    /// An alert with one hit, stored.
    async fn stored_alert(alerts: &MemoryAlertStore) -> Alert {
        let hits = crate::alert::AlertHits::of_records(
            crate::contract::sample_alert(Utc::now()),
            vec![(crate::ids::RecordId::parse("r1").unwrap(), Utc::now())],
        );
        alerts.record_hits(&hits, Utc::now()).await.unwrap()
    }

    /// A SharePoint `FileAccessed` record of `user`.
    fn file_accessed(n: usize, user: &str, at: DateTime<Utc>) -> Value {
        serde_json::json!({
            "CreationTime": at.format("%Y-%m-%dT%H:%M:%S").to_string(), "Id": format!("aaaaaaaa-0000-4000-8000-{n:012}"),
            "Operation": "FileAccessed", "OrganizationId": "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11", "RecordType": 6,
            "UserKey": "10032001A2B3C4D5", "UserType": 0, "Version": 1, "Workload": "SharePoint", "ClientIP": "203.0.113.77",
            "UserId": user, "ObjectId": format!("https://contoso.sharepoint.com/sites/Finance/Shared Documents/{n}.xlsx")
        })
    }

    fn file_access_policy(trigger: Value) -> Value {
        serde_json::json!({
            "id": "custom.file-access", "name": "File access", "description": "Trying a trigger on the test bench.",
            "category": "InformationGovernance", "severity": "Medium",
            "activity": {"record_types": [6], "operations": ["FileAccessed"]},
            "conditions": {"field": "Workload", "op": "equals", "value": "SharePoint"},
            "trigger": trigger, "aggregation": {"window_minutes": 60, "group_by": ["UserId"]},
            "title": "File access by {UserId}"
        })
    }

    fn hour_start(hour: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(hour * 3600, 0).unwrap()
    }

    #[tokio::test]
    async fn the_test_bench_replays_an_unusual_activity_policy_over_the_records_own_week() {
        let tuning = service(Arc::new(MemoryAlertStore::default()));
        let msp = crate::contract::unique_msp();
        let first = 490_000;
        let mut records = Vec::new();
        let mut add = |user: &str, hour: i64, n: usize| {
            for _ in 0..n {
                let record = file_accessed(records.len(), user, hour_start(hour));
                records.push(record);
            }
        };
        // alice: a week of two accesses an hour, then a normal hour (3) and a jump (30).
        for hour in first..first + 168 {
            add("alice@contoso.com", hour, 2);
        }
        add("alice@contoso.com", first + 168, 3);
        add("alice@contoso.com", first + 169, 30);
        // bob: the same jump with no week before it.
        add("bob@contoso.com", first + 169, 30);
        let policy = file_access_policy(serde_json::json!({"type": "unusual_activity", "group_by": ["UserId"], "min_count": 10}));
        let result = tuning.test_policy(&crate::access::Access::operator(&msp), policy, records, None).await.unwrap();
        assert_eq!(result.matches.len(), 2 * 168 + 3 + 30 + 30);
        assert_eq!(result.alerts.len(), 1, "{:#?}", result.alerts);
        let alert = &result.alerts[0];
        assert_eq!((alert["group_key"].as_str(), alert["hit_count"].as_u64()), (Some("alice@contoso.com"), Some(30)));
        let trigger = alert["facts"].as_array().unwrap().iter().find(|f| f["name"] == "Trigger").unwrap();
        assert!(trigger["value"].as_str().unwrap().starts_with("30 matches in the hour"), "{trigger}");
    }

    #[tokio::test]
    async fn the_test_bench_counts_a_threshold_over_the_records_own_times() {
        let tuning = service(Arc::new(MemoryAlertStore::default()));
        let msp = crate::contract::unique_msp();
        let start = hour_start(490_000);
        let minutes = |user: &str, first: usize, every: i64| -> Vec<Value> {
            (0..3).map(|i| file_accessed(first + i, user, start + chrono::Duration::minutes(every * i as i64))).collect()
        };
        // Three in two minutes for alice; three an hour apart for bob.
        let mut records = minutes("alice@contoso.com", 0, 1);
        records.extend(minutes("bob@contoso.com", 10, 60));
        let policy = file_access_policy(serde_json::json!({"type": "threshold", "count": 3, "window_minutes": 10, "group_by": ["UserId"]}));
        let result = tuning.test_policy(&crate::access::Access::operator(&msp), policy, records, None).await.unwrap();
        assert_eq!(result.alerts.len(), 1, "{:#?}", result.alerts);
        assert_eq!((result.alerts[0]["group_key"].as_str(), result.alerts[0]["hit_count"].as_u64()), (Some("alice@contoso.com"), Some(3)));
    }

    #[tokio::test]
    async fn a_triage_history_keeps_the_newest_comments_within_its_byte_budget() {
        let alerts = Arc::new(MemoryAlertStore::default());
        let alert = stored_alert(&alerts).await;
        let tuning = service(alerts.clone());
        for n in 0..500 {
            let update =
                TriageUpdate { comment: Some(format!("{n:04}{}", "c".repeat(limits::COMMENT_CHARS - 4))), ..TriageUpdate::default() };
            tuning.triage(&Access::operator(&alert.msp_id), &alert.id, &update).await.unwrap();
        }
        let read = alerts.get_alert(&alert.msp_id, &alert.id).await.unwrap().unwrap();
        let triage = &read.triage;
        let kept = limits::TRIAGE_COMMENT_BYTES / limits::COMMENT_CHARS;
        assert_eq!(triage.comments.len(), kept);
        assert_eq!(triage.comments_dropped, 500 - kept as u64);
        assert!(triage.comments.last().unwrap().text.starts_with("0499"), "the newest stays");
        assert!(triage.comments.first().unwrap().text.starts_with(&format!("{:04}", 500 - kept)), "the oldest go");
        assert_eq!((triage.history.len(), triage.history_dropped), (limits::TRIAGE_HISTORY_KEPT, 500 - limits::TRIAGE_HISTORY_KEPT as u64));
        assert!(read.json_size() < limits::TRIAGE_COMMENT_BYTES + 32 * 1024, "{} bytes", read.json_size());
        assert!(!read.detail.truncated, "bounding triage is not truncating the alert");
    }

    #[tokio::test]
    async fn triage_and_suppression_texts_over_their_limits_are_refused_naming_the_field() {
        let alerts = Arc::new(MemoryAlertStore::default());
        let alert = stored_alert(&alerts).await;
        let tuning = service(alerts);
        let refused = |result: Result<_, AdminError>| match result {
            Err(AdminError::Invalid(message)) => message,
            other => panic!("{other:?}"),
        };
        let long_comment = TriageUpdate { comment: Some("c".repeat(limits::COMMENT_CHARS + 1)), ..TriageUpdate::default() };
        assert_eq!(
            refused(tuning.triage(&Access::operator(&alert.msp_id), &alert.id, &long_comment).await.map(|_| ())),
            "comment: at most 4000 characters"
        );
        let long_assignee = TriageUpdate { assignee: Some("a".repeat(limits::USER_CHARS + 1)), ..TriageUpdate::default() };
        assert_eq!(
            refused(tuning.triage(&Access::operator(&alert.msp_id), &alert.id, &long_assignee).await.map(|_| ())),
            "assignee: at most 256 characters"
        );
        let suppression = |reason: String| NewSuppression {
            tenant_id: None,
            user: Some("alice@contoso.com".into()),
            policy_id: None,
            conditions: None,
            expires_at: None,
            reason,
        };
        let long_reason = tuning.create_suppression(&Access::operator(&alert.msp_id), suppression("r".repeat(1_000_000))).await;
        assert_eq!(refused(long_reason.map(|_| ())), "reason: at most 1000 characters");
        assert!(
            tuning
                .create_suppression(&Access::operator(&alert.msp_id), suppression("r".repeat(limits::SUPPRESSION_REASON_CHARS)))
                .await
                .is_ok()
        );
    }
}
