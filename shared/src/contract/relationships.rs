//! The [`crate::ports::RelationshipStore`] contract, run against memory and DynamoDB on moto:
//! relationships replaced whole per MSP, partner activity and actions (a later action never
//! replaced by an earlier one), refresh state, findings per relationship, removal previews taken
//! once, and one removal per relationship — every key under its MSP.

use super::{unique_msp, unique_tenant};
use crate::ids::{MspId, TenantId};
use chrono::{Duration, TimeZone, Utc};

/// An active GDAP relationship `id` of customer `tenant` for contract tests.
#[must_use]
pub fn sample_relationship(id: &str, tenant: &TenantId) -> crate::relationships::AdminRelationship {
    use crate::relationships::{AccessAssignment, AdminRelationship, AssignmentStatus, RelationshipKind, RelationshipStatus};
    let at = Utc.timestamp_opt(1_760_000_000, 0).unwrap();
    AdminRelationship {
        id: id.to_owned(),
        display_name: format!("{id} access"),
        kind: RelationshipKind::Gdap,
        status: RelationshipStatus::Active,
        customer_tenant_id: tenant.clone(),
        customer_name: "Contoso".into(),
        roles: vec!["729827e3-9c14-49f7-bb1b-9608f156bbb8".into()],
        duration_days: Some(730),
        auto_extend_days: 180,
        created_at: at,
        activated_at: Some(at + Duration::hours(1)),
        ends_at: Some(at + Duration::days(730)),
        access_assignments: vec![AccessAssignment {
            id: "a1".into(),
            status: AssignmentStatus::Active,
            group_id: "9b0e3a1c-0000-4000-8000-000000000001".into(),
            roles: vec!["729827e3-9c14-49f7-bb1b-9608f156bbb8".into()],
        }],
    }
}

/// What every [`crate::ports::RelationshipStore`] must do.
pub async fn relationship_store_contract(store: &dyn crate::ports::RelationshipStore) {
    use crate::relationships::{PartnerActivity, RelationshipStatus};
    let (msp_id, other_msp) = (unique_msp(), unique_msp());
    let (t1, t2) = (unique_tenant(), unique_tenant());
    let (a, b, c) = (sample_relationship("rel-a", &t1), sample_relationship("rel-b", &t2), sample_relationship("rel-c", &t2));
    store.replace_relationships(&msp_id, &[b.clone(), a.clone()]).await.unwrap();
    assert_eq!(store.relationships(&msp_id).await.unwrap(), vec![a.clone(), b.clone()], "whole, by id");
    assert!(store.relationships(&other_msp).await.unwrap().is_empty(), "another MSP reads none");
    let terminated = crate::relationships::AdminRelationship { status: RelationshipStatus::Terminated, ..a.clone() };
    store.replace_relationships(&msp_id, &[terminated.clone(), c.clone()]).await.unwrap();
    assert_eq!(store.relationships(&msp_id).await.unwrap(), vec![terminated.clone(), c.clone()], "replaced; one no longer listed is gone");
    let ended = crate::relationships::AdminRelationship { status: RelationshipStatus::Terminated, ..c.clone() };
    store.put_relationship(&msp_id, &ended).await.unwrap();
    assert_eq!(store.relationships(&msp_id).await.unwrap(), vec![terminated, ended], "one relationship written, the others as they were");
    store.put_relationship(&msp_id, &c).await.unwrap();
    store.replace_relationships(&other_msp, std::slice::from_ref(&b)).await.unwrap();
    assert_eq!(store.relationships(&msp_id).await.unwrap().len(), 2, "another MSP's read replaces only its own");

    let seen =
        PartnerActivity { last_sign_in: Some(Utc.timestamp_opt(1_765_000_000, 0).unwrap()), agents_last_day: 2, sign_ins_last_day: 7 };
    store.put_activity(&msp_id, &t1, &seen).await.unwrap();
    store.put_activity(&msp_id, &t2, &PartnerActivity::default()).await.unwrap();
    let activities = store.activities(&msp_id).await.unwrap();
    assert_eq!((activities.len(), activities.get(&t1)), (2, Some(&seen)));
    assert!(store.activities(&other_msp).await.unwrap().is_empty());

    assert_eq!(store.refresh_state(&msp_id).await.unwrap(), None);
    let at = Utc.timestamp_opt(1_765_000_000, 0).unwrap();
    let refresh = crate::relationships::RelationshipRefreshState {
        at,
        relationships: 2,
        error: None,
        last_success: Some(at),
        activity_error: Some("no AuditLog.Read.All".into()),
    };
    store.put_refresh(&msp_id, &refresh).await.unwrap();
    assert_eq!(store.refresh_state(&msp_id).await.unwrap(), Some(refresh));
    assert_eq!(store.refresh_state(&other_msp).await.unwrap(), None);

    let (earlier, later) = (Utc.timestamp_opt(1_765_100_000, 0).unwrap(), Utc.timestamp_opt(1_765_200_000, 0).unwrap());
    store.note_partner_action(&msp_id, &t1, later).await.unwrap();
    store.note_partner_action(&msp_id, &t1, earlier).await.unwrap();
    store.note_partner_action(&msp_id, &t2, earlier).await.unwrap();
    let actions = store.partner_actions(&msp_id).await.unwrap();
    assert_eq!((actions.get(&t1), actions.get(&t2)), (Some(&later), Some(&earlier)), "an earlier action never replaces a later one");
    assert!(store.partner_actions(&other_msp).await.unwrap().is_empty());
    let merged = store.activity_by_customer(&msp_id).await.unwrap();
    assert_eq!(merged[&t1].last_sign_in, Some(later), "a later technician action moves the last activity");
    assert_eq!((merged[&t1].agents_last_day, merged[&t1].sign_ins_last_day), (2, 7), "the sign-in counts stay");
    assert_eq!(store.activities(&msp_id).await.unwrap()[&t1], seen, "the sign-in activity itself is untouched");

    relationship_findings_contract(store, &msp_id, &other_msp).await;
    removal_contract(store, &msp_id, &other_msp, &t1).await;
}

async fn relationship_findings_contract(store: &dyn crate::ports::RelationshipStore, msp_id: &MspId, other_msp: &MspId) {
    use crate::relationships::findings::{FindingKind, RaisedFinding};
    let since = Utc.timestamp_opt(1_765_000_000, 0).unwrap();
    let raised = vec![
        RaisedFinding { kind: FindingKind::UnusedOver60Days, since },
        RaisedFinding { kind: FindingKind::GlobalAdministrator, since: since + Duration::days(1) },
    ];
    store.put_findings(msp_id, "rel-a", &raised).await.unwrap();
    store.put_findings(msp_id, "rel-b", &raised[..1]).await.unwrap();
    let all = store.findings(msp_id).await.unwrap();
    assert_eq!((all.len(), all.get("rel-a")), (2, Some(&raised)));
    assert!(store.findings(other_msp).await.unwrap().is_empty(), "another MSP reads none");
    store.put_findings(msp_id, "rel-b", &[]).await.unwrap();
    assert_eq!(store.findings(msp_id).await.unwrap().keys().collect::<Vec<_>>(), vec!["rel-a"], "none: forgotten");
    assert_eq!(store.relationships(msp_id).await.unwrap().len(), 2, "findings are not relationships");
}

async fn removal_contract(store: &dyn crate::ports::RelationshipStore, msp_id: &MspId, other_msp: &MspId, tenant: &TenantId) {
    use crate::relationships::removal::{Removal, RemovalPreview, RemovalStatus};
    let at = Utc.timestamp_opt(1_765_000_000, 0).unwrap();
    let preview = RemovalPreview {
        msp_id: msp_id.clone(),
        token_hash: "ab12".into(),
        items: Vec::new(),
        created_by: "Ann (p1)".into(),
        created_at: at,
        expires_at: at + Duration::minutes(10),
    };
    store.put_preview(&preview).await.unwrap();
    assert_eq!(store.take_preview(other_msp, "ab12").await.unwrap(), None, "another MSP cannot take it");
    assert_eq!(store.take_preview(msp_id, "ab13").await.unwrap(), None);
    assert_eq!(store.take_preview(msp_id, "ab12").await.unwrap(), Some(preview.clone()), "taken whole");
    assert_eq!(store.take_preview(msp_id, "ab12").await.unwrap(), None, "a preview is taken once");

    let removal = Removal {
        msp_id: msp_id.clone(),
        relationship_id: "rel-a".into(),
        relationship_name: "rel-a access".into(),
        customer_tenant_id: tenant.clone(),
        customer_name: "Contoso".into(),
        status: RemovalStatus::Requested,
        requested_by: "Ann (p1)".into(),
        requested_at: at,
        request_id: None,
        completed_at: None,
        error: None,
        notify: Some("it@contoso.example".into()),
        notification: None,
    };
    assert!(store.create_removal(&removal).await.unwrap());
    assert!(
        !store.create_removal(&Removal { requested_by: "Bob".into(), ..removal.clone() }).await.unwrap(),
        "one removal per relationship"
    );
    assert_eq!(store.removal(msp_id, "rel-a").await.unwrap(), Some(removal.clone()), "the first one stays");
    let notification = crate::relationships::removal::RemovalNotification {
        status: crate::relationships::removal::RemovalNotificationStatus::Sent,
        at,
        message_id: Some("m-1".into()),
        error: None,
    };
    let done = Removal {
        status: RemovalStatus::Terminated,
        request_id: Some("req-1".into()),
        completed_at: Some(at),
        notification: Some(notification),
        ..removal
    };
    store.put_removal(&done).await.unwrap();
    assert_eq!(store.removals(msp_id).await.unwrap(), vec![done]);
    assert_eq!(store.removal(other_msp, "rel-a").await.unwrap(), None);
    assert!(store.removals(other_msp).await.unwrap().is_empty());
    assert_eq!(store.relationships(msp_id).await.unwrap().len(), 2, "removals are not relationships");
}
