//! The sync's decisions: a period done once, an intent resolved by what the PSA has, a hand
//! edit reported and kept or restored, report-only PSAs never written, and the periods.

use super::*;

fn record(period: &str, found: Option<u32>, target: u32, outcome: Option<SyncOutcome>, last_set: Option<u32>) -> SyncRecord {
    SyncRecord {
        tenant_id: TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap(),
        destination_id: DestinationId::parse("psa").unwrap(),
        period: period.into(),
        found,
        target,
        outcome,
        last_set,
        hand_edit: None,
        at: Utc::now(),
    }
}

#[test]
fn a_first_sync_writes_and_one_that_finds_the_figure_records_it() {
    assert_eq!(decide(None, "2026-12", None, 40, false, true), Decision::Write { hand_edit: None });
    assert_eq!(decide(None, "2026-12", Some(40), 40, false, true), Decision::Record { outcome: SyncOutcome::AlreadySet, hand_edit: None });
}

#[test]
fn a_period_done_is_never_written_again() {
    let done = record("2026-12", Some(30), 40, Some(SyncOutcome::Set), Some(40));
    assert_eq!(decide(Some(&done), "2026-12", Some(40), 45, false, true), Decision::Done { hand_edit: None });
    let edited = HandEdit { set_by_vigil: 40, found: Some(41) };
    assert_eq!(decide(Some(&done), "2026-12", Some(41), 45, true, true), Decision::Done { hand_edit: Some(edited) });
}

#[test]
fn an_intent_without_an_outcome_is_resolved_by_what_the_psa_has() {
    let intent = record("2026-12", Some(30), 40, None, Some(30));
    assert_eq!(
        decide(Some(&intent), "2026-12", Some(40), 40, false, true),
        Decision::Record { outcome: SyncOutcome::Set, hand_edit: None }
    );
    assert_eq!(decide(Some(&intent), "2026-12", Some(30), 40, false, true), Decision::Write { hand_edit: None });
}

#[test]
fn a_quantity_changed_by_hand_is_reported_and_kept_or_set_back_as_the_mapping_says() {
    let last = record("2026-11", Some(30), 35, Some(SyncOutcome::Set), Some(35));
    let edited = Some(HandEdit { set_by_vigil: 35, found: Some(50) });
    assert_eq!(
        decide(Some(&last), "2026-12", Some(50), 40, false, true),
        Decision::Record { outcome: SyncOutcome::HandEditKept, hand_edit: edited }
    );
    assert_eq!(decide(Some(&last), "2026-12", Some(50), 40, true, true), Decision::Write { hand_edit: edited });
    assert_eq!(decide(Some(&last), "2026-12", Some(35), 40, false, true), Decision::Write { hand_edit: None });
}

#[test]
fn a_report_only_psa_is_never_written() {
    assert_eq!(decide(None, "2026-12", Some(3), 40, true, false), Decision::Record { outcome: SyncOutcome::ReportOnly, hand_edit: None });
}

#[test]
fn month_end_syncs_on_the_months_last_day_and_daily_every_day() {
    let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    assert_eq!(SyncSchedule::MonthEnd.period_on(day(11, 29)), None);
    assert_eq!(SyncSchedule::MonthEnd.period_on(day(11, 30)).unwrap().key, "2026-11");
    assert_eq!(SyncSchedule::MonthEnd.period_on(day(12, 31)).unwrap().effective, day(12, 31));
    assert_eq!(SyncSchedule::Daily.period_on(day(11, 29)).unwrap().key, "2026-11-29");
    assert_eq!(SyncSchedule::MonthEnd.period_of(day(11, 3)).key, "2026-11");
}

#[test]
fn a_mapping_needs_both_references() {
    let mapping = BillingMapping {
        tenant_id: TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap(),
        destination_id: DestinationId::parse("psa").unwrap(),
        agreement_id: " 12 ".into(),
        product_id: "".into(),
        restore_hand_edits: false,
    };
    assert!(mapping.clone().validated().is_err());
    let fixed = BillingMapping { product_id: "VIGIL-MBX".into(), ..mapping };
    assert_eq!(fixed.validated().unwrap().line().agreement_id, "12");
}

#[test]
fn a_daily_schedule_syncs_every_day_for_that_day() {
    let due = SyncSchedule::Daily.period_on(day(11, 29)).unwrap();
    assert_eq!(due.key, "2026-11-29");
    assert_eq!(due.effective, day(11, 29));
}

#[test]
fn a_month_end_schedule_syncs_the_month_on_its_last_day_only() {
    assert_eq!(SyncSchedule::MonthEnd.period_on(day(11, 29)), None);
    let due = SyncSchedule::MonthEnd.period_on(day(11, 30)).unwrap();
    assert_eq!(due.key, "2026-11");
    assert_eq!(due.effective, day(11, 30));
    assert_eq!(SyncSchedule::MonthEnd.period_on(day(12, 31)).unwrap().key, "2026-12");
    assert_eq!(SyncSchedule::MonthEnd.period_on(day(12, 1)), None);
}

fn day(month: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, month, d).unwrap()
}
