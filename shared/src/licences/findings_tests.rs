use super::*;
use crate::licences::test_support::{at, sku, subscription};
use crate::licences::{LicenceSnapshot, TenantLicences};

fn settings(threat: &[u32]) -> FindingSettings {
    FindingSettings { lifecycle_days: 30, threat_record_types: threat.iter().copied().collect() }
}

fn read(state: &mut TenantLicences, snapshot: LicenceSnapshot, settings: &FindingSettings, now: DateTime<Utc>) -> Vec<Transition> {
    let previous = state.snapshot.clone();
    state.take_snapshot(snapshot, now);
    let (changes, after) = transitions(state, &previous, settings, true, now);
    state.raised = after;
    changes
}

fn of(subscriptions: Vec<crate::licences::LicenceSubscription>) -> LicenceSnapshot {
    LicenceSnapshot { skus: vec![sku(LicenceStatus::Enabled, 10, 20, &[DefenderPlan::Plan1])], subscriptions }
}

fn kinds(changes: &[Transition]) -> Vec<(FindingKind, bool)> {
    changes.iter().map(|t| (t.kind, t.raised)).collect()
}

#[test]
fn a_subscription_through_its_lifecycle_raises_and_clears_one_finding_per_state() {
    let s = settings(&[]);
    let mut state = TenantLicences::default();
    assert!(read(&mut state, of(vec![subscription("sub-1", LicenceStatus::Enabled, 90)]), &s, at(0)).is_empty(), "far from its date");
    let near = read(&mut state, of(vec![subscription("sub-1", LicenceStatus::Enabled, 20)]), &s, at(1));
    assert_eq!(kinds(&near), vec![(FindingKind::LifecycleDateNear, true)]);
    let grace = read(&mut state, of(vec![subscription("sub-1", LicenceStatus::Warning, 50)]), &s, at(21));
    assert_eq!(kinds(&grace), vec![(FindingKind::LifecycleDateNear, false), (FindingKind::GracePeriod, true)]);
    assert_eq!(grace[0].since, at(1), "the cleared event lands on the alert it raised");
    assert!(read(&mut state, of(vec![subscription("sub-1", LicenceStatus::Warning, 50)]), &s, at(22)).is_empty(), "held, not raised again");
    let suspended = read(&mut state, of(vec![subscription("sub-1", LicenceStatus::Suspended, 140)]), &s, at(51));
    assert_eq!(kinds(&suspended), vec![(FindingKind::GracePeriod, false), (FindingKind::Suspended, true)]);
    let renewed = read(&mut state, of(vec![subscription("sub-1", LicenceStatus::Enabled, 400)]), &s, at(60));
    assert_eq!(kinds(&renewed), vec![(FindingKind::Suspended, false)]);
    assert!(state.raised.is_empty());
}

#[test]
fn a_trial_or_a_date_beyond_the_horizon_raises_no_lifecycle_finding_and_the_horizon_is_the_msps() {
    let mut trial = subscription("sub-1", LicenceStatus::Enabled, 10);
    trial.is_trial = true;
    let mut state = TenantLicences::default();
    assert!(read(&mut state, of(vec![trial]), &settings(&[]), at(0)).is_empty());
    let seven = FindingSettings { lifecycle_days: 7, ..settings(&[]) };
    let mut state = TenantLicences::default();
    assert!(read(&mut state, of(vec![subscription("sub-1", LicenceStatus::Enabled, 10)]), &seven, at(0)).is_empty());
    assert_eq!(read(&mut state, of(vec![subscription("sub-1", LicenceStatus::Enabled, 10)]), &seven, at(3)).len(), 1);
}

#[test]
fn locked_out_and_deleted_raise_one_finding_and_a_subscription_no_longer_listed_clears_it() {
    let s = settings(&[]);
    let mut state = TenantLicences::default();
    let locked = read(&mut state, of(vec![subscription("sub-1", LicenceStatus::LockedOut, 10)]), &s, at(0));
    assert_eq!(kinds(&locked), vec![(FindingKind::LockedOutOrDeleted, true)]);
    assert!(read(&mut state, of(vec![subscription("sub-1", LicenceStatus::Deleted, 10)]), &s, at(1)).is_empty(), "the same finding");
    let gone = read(&mut state, of(vec![]), &s, at(2));
    assert_eq!(kinds(&gone), vec![(FindingKind::LockedOutOrDeleted, false)]);
    assert!(matches!(&gone[0].subject, Subject::Subscription(sub) if sub.id == "sub-1"), "described from the read before");
}

#[test]
fn more_licences_assigned_than_usable_units_is_one_finding_per_product_counting_grace_units() {
    let s = settings(&[]);
    let mut state = TenantLicences::default();
    let over = LicenceSnapshot { skus: vec![sku(LicenceStatus::Enabled, 23, 20, &[])], subscriptions: vec![] };
    assert_eq!(kinds(&read(&mut state, over, &s, at(0))), vec![(FindingKind::OverAssigned, true)]);
    assert!(state.raised.contains_key("sku:cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"));
    let mut in_grace = sku(LicenceStatus::Warning, 18, 0, &[]);
    in_grace.prepaid_units.warning = 20;
    let fixed = LicenceSnapshot { skus: vec![in_grace], subscriptions: vec![] };
    assert_eq!(kinds(&read(&mut state, fixed, &s, at(1))), vec![(FindingKind::OverAssigned, false)], "grace units still count");
}

#[test]
fn the_defender_finding_holds_only_while_threat_policies_watch_what_the_plans_no_longer_give() {
    let air_and_urls = settings(&[41, 64]);
    let plan1 = LicenceSnapshot { skus: vec![sku(LicenceStatus::Enabled, 1, 5, &[DefenderPlan::Plan1])], subscriptions: vec![] };
    let mut state = TenantLicences::default();
    let changes = read(&mut state, plan1.clone(), &air_and_urls, at(0));
    assert_eq!(kinds(&changes), vec![(FindingKind::DefenderPlanMissing, true)], "AIR needs Plan 2");
    let event = finding_event(&changes[0], EventTenant { tenant_id: "t", name: "Contoso" }, &state, &air_and_urls, at(0));
    assert_eq!(event["MissingRecordTypes"], "64 (AirInvestigation)");
    let lapsed = LicenceSnapshot { skus: vec![sku(LicenceStatus::Suspended, 1, 0, &[DefenderPlan::Plan2])], subscriptions: vec![] };
    let mut state = TenantLicences::default();
    let changes = read(&mut state, lapsed, &air_and_urls, at(0));
    let event = finding_event(&changes[0], EventTenant { tenant_id: "t", name: "Contoso" }, &state, &air_and_urls, at(0));
    assert_eq!(event["MissingRecordTypes"], "41 (ThreatIntelligenceUrl), 64 (AirInvestigation)", "a lapsed plan gives nothing");
    assert!(event["LicenceMessage"].as_str().unwrap().contains("can no longer see record types 41"));
    let mut state = TenantLicences::default();
    assert!(read(&mut state, plan1.clone(), &settings(&[]), at(0)).is_empty(), "no threat policy on: nothing to say");
    assert!(read(&mut state, plan1, &settings(&[28, 41, 47]), at(1)).is_empty(), "Plan 1 gives those");
}

#[test]
fn a_refused_read_raises_needs_reconsent_keeps_the_other_findings_and_a_good_read_clears_it() {
    let s = settings(&[]);
    let mut state = TenantLicences::default();
    read(&mut state, of(vec![subscription("sub-1", LicenceStatus::Warning, 10)]), &s, at(0));
    let previous = state.snapshot.clone();
    state.read_failed(at(1), "Authorization_RequestDenied".into(), true);
    let (changes, after) = transitions(&state, &previous, &s, false, at(1));
    assert_eq!(kinds(&changes), vec![(FindingKind::NeedsReconsent, true)], "the grace-period finding is not cleared by a refusal");
    assert!(after.contains_key("sub-1") && after.contains_key(CONSENT_SUBJECT));
    state.raised = after;
    let back = read(&mut state, of(vec![subscription("sub-1", LicenceStatus::Warning, 10)]), &s, at(2));
    assert_eq!(kinds(&back), vec![(FindingKind::NeedsReconsent, false)]);
}

#[test]
fn the_event_carries_the_seeds_fields_and_says_what_the_status_was_and_since_when() {
    let s = settings(&[]);
    let mut state = TenantLicences::default();
    read(&mut state, of(vec![subscription("sub-1", LicenceStatus::Enabled, 90)]), &s, at(0));
    let changes = read(&mut state, of(vec![subscription("sub-1", LicenceStatus::Warning, 30)]), &s, at(5));
    let event = finding_event(&changes[0], EventTenant { tenant_id: "5e1f", name: "Contoso" }, &state, &s, at(5));
    assert_eq!(event["Operation"], FINDING_RAISED);
    assert_eq!((event["OrganizationName"].as_str(), event["OrganizationId"].as_str()), (Some("Contoso"), Some("5e1f")));
    assert_eq!(event["SubscriptionId"], "sub-1");
    assert_eq!(event["CreationTime"], "2026-12-06T06:00:00");
    let message = event["LicenceMessage"].as_str().unwrap();
    assert!(message.contains("was Enabled, now Warning") && message.contains("since 2026-12-06 06:00 UTC"), "{message}");
    assert!(message.contains("disabled on 2026-12-31"), "{message}");
    let near = read(&mut state, of(vec![subscription("sub-1", LicenceStatus::Enabled, 25)]), &s, at(6));
    let event =
        finding_event(near.iter().find(|t| t.raised).unwrap(), EventTenant { tenant_id: "5e1f", name: "Contoso" }, &state, &s, at(6));
    assert!(event["LicenceMessage"].as_str().unwrap().contains("expires or renews on 2026-12-26"), "{event:#}");
}
