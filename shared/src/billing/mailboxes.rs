//! Which directory users count as **protected mailboxes** (`shared/reference/licences-billing-outputs.md`
//! §1.4–1.5): a user is counted once when
//!
//! * the account is enabled (`accountEnabled` true: blocked accounts are left out),
//! * it is a member (`userType` `Member`: guests are left out),
//! * and at least one of its `assignedPlans` is an Exchange Online mailbox plan —
//!   `EXCHANGE_S_STANDARD` (Plan 1), `EXCHANGE_S_ENTERPRISE` (Plan 2), `EXCHANGE_S_DESKLESS`
//!   (Kiosk) or `EXCHANGE_S_ESSENTIALS` — with `capabilityStatus` `Enabled`.
//!
//! `EXCHANGE_S_FOUNDATION` is plumbing in many SKUs, not a mailbox, and never counts. A user
//! holding two Exchange plans (E3 plus an Exchange Plan 2 add-on) counts once: users are
//! de-duplicated by id across pages. Shared mailboxes carry no licence and have sign-in blocked,
//! so a licence-based count leaves them out (reference: unconfirmed for licensed shared mailboxes).
//! Plans are matched by `servicePlanId` (the names are for people).

use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// `EXCHANGE_S_STANDARD`, Exchange Online (Plan 1).
pub const EXCHANGE_PLAN_1: &str = "9aaf7827-d63c-4b61-89c3-182f06f82e5c";
/// `EXCHANGE_S_ENTERPRISE`, Exchange Online (Plan 2).
pub const EXCHANGE_PLAN_2: &str = "efb87545-963c-4e0d-99df-69c6916d9eb0";
/// `EXCHANGE_S_DESKLESS`, Exchange Online Kiosk.
pub const EXCHANGE_KIOSK: &str = "4a82b400-a79f-41a4-b4e2-e94f5787b113";
/// `EXCHANGE_S_ESSENTIALS`, Exchange Essentials.
pub const EXCHANGE_ESSENTIALS: &str = "1126bef5-da20-4f07-b45e-ad25d2581aa8";
/// `EXCHANGE_S_FOUNDATION`: in many SKUs, not a mailbox.
pub const EXCHANGE_FOUNDATION: &str = "113feb6c-3fe4-4440-bddc-54d774bf0318";

/// The service plans that make a mailbox.
pub const MAILBOX_PLANS: [&str; 4] = [EXCHANGE_PLAN_1, EXCHANGE_PLAN_2, EXCHANGE_KIOSK, EXCHANGE_ESSENTIALS];

/// One plan of a user's `assignedPlans`, as Graph sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignedPlan {
    #[serde(default)]
    pub service_plan_id: String,
    /// `Enabled`, `Warning`, `Suspended`, `Deleted`, `LockedOut`.
    #[serde(default)]
    pub capability_status: String,
    #[serde(default)]
    pub service: Option<String>,
}

/// A directory user as listed with `$select=id,accountEnabled,userType,assignedPlans`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryUser {
    pub id: String,
    /// `null` counts as not enabled: a count never guesses upwards.
    #[serde(default)]
    pub account_enabled: Option<bool>,
    /// `Member` or `Guest`; `null` (not returned) counts as a member.
    #[serde(default)]
    pub user_type: Option<String>,
    #[serde(default)]
    pub assigned_plans: Vec<AssignedPlan>,
}

impl DirectoryUser {
    /// Whether this user is a protected mailbox (see the module docs).
    #[must_use]
    pub fn is_protected_mailbox(&self) -> bool {
        self.account_enabled == Some(true)
            && self.user_type.as_deref().is_none_or(|t| t.eq_ignore_ascii_case("Member"))
            && self.assigned_plans.iter().any(|plan| {
                MAILBOX_PLANS.iter().any(|id| plan.service_plan_id.eq_ignore_ascii_case(id))
                    && plan.capability_status.eq_ignore_ascii_case("Enabled")
            })
    }

    /// The user with only the plans that matter to the count (keeps a listing small).
    #[must_use]
    pub fn trimmed(mut self) -> Self {
        self.assigned_plans.retain(|plan| MAILBOX_PLANS.iter().any(|id| plan.service_plan_id.eq_ignore_ascii_case(id)));
        self
    }
}

/// What one listing of a tenant's users found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MailboxTally {
    /// Users listed (each once).
    pub users: u32,
    /// Of those, protected mailboxes.
    pub protected: u32,
}

/// Counts protected mailboxes, each user once (a user listed twice, e.g. on two pages while
/// the directory changed, counts once).
#[must_use]
pub fn tally<'a>(users: impl IntoIterator<Item = &'a DirectoryUser>) -> MailboxTally {
    let mut seen = HashSet::new();
    let mut protected = HashSet::new();
    for user in users {
        let id = user.id.to_ascii_lowercase();
        if user.is_protected_mailbox() {
            protected.insert(id.clone());
        }
        seen.insert(id);
    }
    MailboxTally { users: u32::try_from(seen.len()).unwrap_or(u32::MAX), protected: u32::try_from(protected.len()).unwrap_or(u32::MAX) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(id: &str, status: &str) -> AssignedPlan {
        AssignedPlan { service_plan_id: id.into(), capability_status: status.into(), service: Some("exchange".into()) }
    }

    fn user(id: &str, enabled: bool, kind: &str, plans: Vec<AssignedPlan>) -> DirectoryUser {
        DirectoryUser { id: id.into(), account_enabled: Some(enabled), user_type: Some(kind.into()), assigned_plans: plans }
    }

    #[test]
    fn each_exchange_mailbox_plan_enabled_makes_a_protected_mailbox() {
        for id in MAILBOX_PLANS {
            assert!(user("u", true, "Member", vec![plan(id, "Enabled")]).is_protected_mailbox(), "{id}");
        }
    }

    #[test]
    fn the_foundation_plan_alone_is_not_a_mailbox() {
        assert!(!user("u", true, "Member", vec![plan(EXCHANGE_FOUNDATION, "Enabled")]).is_protected_mailbox());
    }

    #[test]
    fn a_plan_not_enabled_does_not_count() {
        for status in ["Suspended", "Deleted", "LockedOut", "Warning", ""] {
            assert!(!user("u", true, "Member", vec![plan(EXCHANGE_PLAN_1, status)]).is_protected_mailbox(), "{status}");
        }
    }

    #[test]
    fn disabled_accounts_and_guests_are_left_out() {
        assert!(!user("u", false, "Member", vec![plan(EXCHANGE_PLAN_1, "Enabled")]).is_protected_mailbox());
        assert!(!user("u", true, "Guest", vec![plan(EXCHANGE_PLAN_1, "Enabled")]).is_protected_mailbox());
        let unknown = DirectoryUser { account_enabled: None, ..user("u", true, "Member", vec![plan(EXCHANGE_PLAN_1, "Enabled")]) };
        assert!(!unknown.is_protected_mailbox(), "an account whose state is not listed is not counted");
    }

    #[test]
    fn a_user_with_two_exchange_plans_counts_once() {
        let both = user("u1", true, "Member", vec![plan(EXCHANGE_PLAN_1, "Enabled"), plan(EXCHANGE_PLAN_2, "Enabled")]);
        let other = user("u2", true, "Member", vec![plan(EXCHANGE_KIOSK, "Enabled")]);
        let again = DirectoryUser { id: "U1".into(), ..both.clone() };
        assert_eq!(tally([&both, &other, &again]), MailboxTally { users: 2, protected: 2 });
    }

    #[test]
    fn trimming_keeps_only_mailbox_plans() {
        let trimmed = user("u", true, "Member", vec![plan(EXCHANGE_FOUNDATION, "Enabled"), plan(EXCHANGE_PLAN_2, "Enabled")]).trimmed();
        assert_eq!(trimmed.assigned_plans, vec![plan(EXCHANGE_PLAN_2, "Enabled")]);
        assert!(trimmed.is_protected_mailbox());
    }
}
