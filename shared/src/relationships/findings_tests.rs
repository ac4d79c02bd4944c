//! Findings at their edges against a fixed clock, and the transitions between reads.

use super::*;
use crate::relationships::test_support::{customer, now, relationship};
use crate::relationships::{AssignmentStatus, GLOBAL_ADMINISTRATOR};

struct World {
    relationships: Vec<AdminRelationship>,
    previous: Vec<AdminRelationship>,
    activities: BTreeMap<TenantId, PartnerActivity>,
    raised: BTreeMap<String, Vec<RaisedFinding>>,
    removed: BTreeSet<String>,
}

impl World {
    fn of(relationships: Vec<AdminRelationship>) -> Self {
        Self { relationships, previous: Vec::new(), activities: BTreeMap::new(), raised: BTreeMap::new(), removed: BTreeSet::new() }
    }
    fn used(mut self, n: u32, days_ago: i64) -> Self {
        let activity =
            PartnerActivity { last_sign_in: Some(now() - Duration::days(days_ago) - Duration::minutes(1)), ..PartnerActivity::default() };
        self.activities.insert(customer(n), activity);
        self
    }
    fn inputs(&self) -> FindingInputs<'_> {
        FindingInputs {
            relationships: &self.relationships,
            previous: &self.previous,
            activities: &self.activities,
            raised: &self.raised,
            removed_by_vigil: &self.removed,
            now: now(),
        }
    }
    fn holding(&self, index: usize) -> BTreeSet<FindingKind> {
        holding(&self.relationships[index], &self.inputs())
    }
}

#[test]
fn unused_access_holds_past_60_and_past_90_days_at_their_edges_and_only_while_access_is_granted() {
    for (days, over_60, over_90) in [(60, false, false), (61, true, false), (90, true, false), (91, true, true)] {
        let world = World::of(vec![relationship(1, 400)]).used(1, days);
        let found = world.holding(0);
        assert_eq!(found.contains(&FindingKind::UnusedOver60Days), over_60, "{days} days");
        assert_eq!(found.contains(&FindingKind::UnusedOver90Days), over_90, "{days} days");
    }
    let mut expired = relationship(1, 400);
    expired.status = RelationshipStatus::Expired;
    assert!(World::of(vec![expired]).holding(0).is_empty(), "expired access is not unused access");
}

#[test]
fn global_administrator_expiry_pending_approval_new_and_missing_assignments_hold_at_their_edges() {
    let mut admin = relationship(1, 20);
    admin.roles.push(GLOBAL_ADMINISTRATOR.into());
    let mut expiring = relationship(2, 20);
    expiring.auto_extend_days = 0;
    expiring.ends_at = Some(now() + Duration::days(30));
    let mut later = relationship(3, 20);
    later.auto_extend_days = 0;
    later.ends_at = Some(now() + Duration::days(31));
    let mut extending = relationship(4, 20);
    extending.ends_at = Some(now() + Duration::days(5));
    let mut pending = relationship(5, 0);
    pending.status = RelationshipStatus::ApprovalPending;
    pending.activated_at = None;
    pending.created_at = now() - Duration::days(81);
    let mut young_pending = pending.clone();
    young_pending.id = "rel-5b".into();
    young_pending.created_at = now() - Duration::days(80);
    let mut unassigned = relationship(6, 20);
    unassigned.access_assignments[0].status = AssignmentStatus::Error;
    let world =
        World::of(vec![admin, expiring, later, extending, pending, young_pending, unassigned, relationship(7, 6), relationship(8, 8)])
            .used(1, 1)
            .used(2, 1)
            .used(3, 1)
            .used(4, 1)
            .used(6, 1)
            .used(7, 1)
            .used(8, 1);
    let only = |kinds: &[FindingKind]| kinds.iter().copied().collect::<BTreeSet<_>>();
    assert_eq!(world.holding(0), only(&[FindingKind::GlobalAdministrator]));
    assert_eq!(world.holding(1), only(&[FindingKind::ExpiringWithoutAutoExtend]), "30 days left, no auto-extend");
    assert!(world.holding(2).is_empty(), "31 days left");
    assert!(world.holding(3).is_empty(), "it auto-extends");
    assert_eq!(world.holding(4), only(&[FindingKind::ApprovalPendingTooLong]), "81 days pending");
    assert!(world.holding(5).is_empty(), "80 days pending");
    assert_eq!(world.holding(6), only(&[FindingKind::NoWorkingAssignment]));
    assert_eq!(world.holding(7), only(&[FindingKind::NewRelationship]), "established 6 days ago");
    assert!(world.holding(8).is_empty(), "established 8 days ago");
}

#[test]
fn a_termination_is_the_customers_only_when_vigil_did_not_request_it_access_was_live_before_and_no_other_relationship_remains() {
    let live = relationship(1, 100);
    let mut terminated = live.clone();
    terminated.status = RelationshipStatus::Terminated;
    let mut world = World::of(vec![terminated.clone()]).used(1, 1);
    assert!(world.holding(0).is_empty(), "never seen live: an old termination, not news");
    world.previous = vec![live.clone()];
    assert_eq!(world.holding(0), BTreeSet::from([FindingKind::TerminatedByCustomer]));
    world.removed.insert(live.id.clone());
    assert!(world.holding(0).is_empty(), "Vigil removed it on the MSP's request");
    world.removed.clear();
    let mut replacement = relationship(1, 1);
    replacement.id = "rel-1-new".into();
    world.relationships.push(replacement);
    assert!(!world.holding(0).contains(&FindingKind::TerminatedByCustomer), "the customer still grants access through another");
}

#[test]
fn a_finding_is_raised_once_kept_with_its_first_time_and_cleared_with_that_time_when_it_stops_holding() {
    let mut world = World::of(vec![relationship(1, 400)]).used(1, 100);
    let (changes, after) = transitions(&world.inputs());
    let kinds: Vec<(FindingKind, bool)> = changes.iter().map(|t| (t.kind, t.raised)).collect();
    assert_eq!(kinds, vec![(FindingKind::UnusedOver60Days, true), (FindingKind::UnusedOver90Days, true)]);
    assert!(changes.iter().all(|t| t.since == now()));
    let first = now();
    world.raised = after
        .into_iter()
        .map(|(id, raised)| (id, raised.into_iter().map(|r| RaisedFinding { since: first - Duration::days(3), ..r }).collect()))
        .collect();
    let (again, kept) = transitions(&world.inputs());
    assert!(again.is_empty(), "a finding that still holds raises nothing more");
    assert_eq!(kept, world.raised, "kept with the time it was first seen");
    world = world.used(1, 0);
    let (cleared, after) = transitions(&world.inputs());
    assert_eq!(cleared.len(), 2);
    assert!(cleared.iter().all(|t| !t.raised && t.since == first - Duration::days(3)), "cleared with the time it was raised: {cleared:?}");
    assert!(after.is_empty());
}

#[test]
fn a_relationship_no_longer_listed_clears_what_was_raised_on_it() {
    let gone = relationship(1, 400);
    let mut world = World::of(vec![]);
    world.previous = vec![gone.clone()];
    world.raised.insert(gone.id.clone(), vec![RaisedFinding { kind: FindingKind::UnusedOver60Days, since: now() - Duration::days(2) }]);
    let (changes, after) = transitions(&world.inputs());
    assert_eq!(changes.len(), 1);
    assert!(!changes[0].raised && changes[0].relationship.id == gone.id && changes[0].kind == FindingKind::UnusedOver60Days);
    assert!(after.is_empty());
}

#[test]
fn both_events_of_a_finding_carry_its_first_time_and_the_relationship_figures() {
    let world = World::of(vec![relationship(1, 400)]).used(1, 100);
    let since = now() - Duration::days(4);
    let raised = Transition { relationship: &world.relationships[0], kind: FindingKind::UnusedOver90Days, since, raised: true };
    let cleared = Transition { raised: false, ..raised.clone() };
    let activity = world.activities[&customer(1)].clone();
    let (a, b) = (finding_event(&raised, &activity, now()), finding_event(&cleared, &activity, now()));
    assert_eq!(a["CreationTime"], b["CreationTime"]);
    assert_eq!(a["CreationTime"], since.format("%Y-%m-%dT%H:%M:%S").to_string());
    assert_ne!(a["Id"], b["Id"]);
    assert_eq!((a["Operation"].as_str(), b["Operation"].as_str()), (Some(FINDING_RAISED), Some(FINDING_CLEARED)));
    assert_eq!(a["Finding"], "unused_over_90_days");
    assert_eq!(a["DaysInactive"], 100);
    assert_eq!(a["Roles"], "Helpdesk Administrator");
    assert_eq!(a["OrganizationId"], customer(1).as_str());
    assert!(crate::audit::AuditRecord::from_value(a).is_ok(), "an audit record the evaluator reads");
}

#[test]
fn global_administrator_counts_while_awaiting_approval_but_not_once_ended() {
    let mut pending = relationship(1, 0);
    pending.roles.push(GLOBAL_ADMINISTRATOR.into());
    pending.status = RelationshipStatus::ApprovalPending;
    pending.activated_at = None;
    let mut ended = pending.clone();
    ended.id = "rel-ended".into();
    ended.status = RelationshipStatus::Terminated;
    let world = World::of(vec![pending, ended]);
    assert!(world.holding(0).contains(&FindingKind::GlobalAdministrator));
    assert!(!world.holding(1).contains(&FindingKind::GlobalAdministrator));
}

#[test]
fn access_ending_now_is_not_expiring_and_a_relationship_exactly_7_days_old_is_not_new() {
    let mut ending = relationship(1, 20);
    ending.auto_extend_days = 0;
    ending.ends_at = Some(now());
    let mut week_old = relationship(2, 0);
    week_old.created_at = now() - Duration::days(7);
    let world = World::of(vec![ending, week_old]).used(1, 1).used(2, 1);
    assert!(!world.holding(0).contains(&FindingKind::ExpiringWithoutAutoExtend));
    assert!(!world.holding(1).contains(&FindingKind::NewRelationship));
}

#[test]
fn a_termination_is_the_customers_only_by_this_relationships_own_history_and_the_same_customers_other_access() {
    let mut terminated = relationship(1, 100);
    terminated.status = RelationshipStatus::Terminated;
    let mut sibling = relationship(1, 100);
    sibling.id = "rel-1-sibling".into();
    // Another relationship of the customer was live before; this one never was seen live.
    let mut world = World::of(vec![terminated.clone()]);
    world.previous = vec![sibling.clone()];
    assert!(world.holding(0).is_empty(), "another relationship's history is not this one's");
    // Raised before, but another finding: not a termination already raised.
    world.raised.insert(terminated.id.clone(), vec![RaisedFinding { kind: FindingKind::UnusedOver60Days, since: now() }]);
    assert!(world.holding(0).is_empty());
    // Seen live before; another customer's live access or the same customer's ended one does
    // not stand in for it.
    world.previous = vec![relationship(1, 100)];
    let mut other_customer = relationship(2, 10);
    other_customer.id = "rel-2".into();
    let mut expired_sibling = sibling;
    expired_sibling.status = RelationshipStatus::Expired;
    world.relationships = vec![terminated, other_customer, expired_sibling];
    assert!(world.holding(0).contains(&FindingKind::TerminatedByCustomer));
}
