//! Contract suites: one async function per port that states what every adapter must do.
//! Unit tests run them against the in-memory adapters; `tests/` runs the same functions against
//! the DynamoDB, SQS and Secrets Manager adapters on moto. Each suite uses fresh random ids, so
//! suites can share tables and run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use crate::alert::{Alert, AlertHits, AlertStatus, Category, Fact, Severity};
use crate::destination::{Destination, DestinationSettings, Routing};
use crate::error::StoreError;
use crate::ids::DestinationId;
use crate::ids::{AlertId, ContentType, MspId, PolicyId, RecordId, TenantId};
use crate::ports::{
    AlertStore, ClaimOutcome, ConfigStore, IngestStateStore, MessageQueue, PolicyStore, SecretName, SecretStore, StoredPolicy, StreamKey,
    StreamState, Suppression, TenantChange, TriggerKey, TriggerStateStore,
};
use crate::ports::{BudgetGrant, DestinationStore, RequestBudget};
use crate::secret::SecretString;
use crate::tenant::{Msp, Tenant, TokenHash};
use crate::ticket::{Delivery, TicketRef, TicketState};
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::collections::HashSet;
use std::future::Future;

mod alert_changes;
mod billing;
#[cfg(feature = "connectors")]
pub mod delivery_storm;
mod licences;
mod offboarding;
mod onboarding;
mod rate_limits;
mod relationships;
mod selfmon;

pub use alert_changes::{alert_change_index_contract, tenant_change_index_contract};
pub use billing::{BillingContractLines, billing_store_contract, billing_target_contract, mailbox_count_store_contract, sample_count};
pub use licences::licence_store_contract;
pub use offboarding::offboarding_store_contract;
pub use onboarding::onboarding_store_contract;
pub use rate_limits::rate_limiter_contract;
pub use relationships::{relationship_store_contract, sample_relationship};
pub use selfmon::credentials_episode_store_contract;

/// A random suffix for ids that must not collide across runs.
#[must_use]
pub fn unique_suffix() -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("random bytes");
    hex::encode(bytes)
}

/// A fresh MSP id.
#[must_use]
pub fn unique_msp() -> MspId {
    MspId::parse(&format!("msp-{}", unique_suffix())).unwrap()
}

/// A fresh tenant GUID.
#[must_use]
pub fn unique_tenant() -> TenantId {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("random bytes");
    let h = hex::encode(bytes);
    TenantId::parse(&format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])).unwrap()
}

/// An alert with plausible values, for tests.
#[must_use]
pub fn sample_alert(at: DateTime<Utc>) -> Alert {
    sample_alert_for(&MspId::parse("acme").unwrap(), &TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap(), at)
}

/// An alert of a given MSP and tenant, for tests.
#[must_use]
pub fn sample_alert_for(msp_id: &MspId, tenant_id: &TenantId, at: DateTime<Utc>) -> Alert {
    let window_start = Utc.timestamp_opt(at.timestamp() - at.timestamp().rem_euclid(900), 0).unwrap();
    Alert {
        id: AlertId::derive(&[
            msp_id.as_str(),
            tenant_id.as_str(),
            "builtin.forwarding-rule",
            "alice@contoso.com",
            &window_start.timestamp().to_string(),
        ]),
        msp_id: msp_id.clone(),
        tenant_id: tenant_id.clone(),
        tenant_name: "Contoso".into(),
        policy_id: PolicyId::parse("builtin.forwarding-rule").unwrap(),
        policy_name: "Creation of forwarding/redirect rule".into(),
        category: Category::ThreatManagement,
        severity: Severity::Informational,
        group_key: "alice@contoso.com".into(),
        title: "Mail forwarding to x@evil.example set up by alice@contoso.com".into(),
        window_start,
        window_end: window_start + Duration::minutes(15),
        status: AlertStatus::New,
        hit_count: 0,
        first_seen: at,
        last_seen: at,
        facts: vec![Fact::new("User", "alice@contoso.com"), Fact::new("ForwardTo", "x@evil.example")],
        created_at: at,
        updated_at: at,
        resolved_at: None,
        version: 0,
        detail: crate::alert::AlertDetail::default(),
        triage: crate::alert::Triage::default(),
    }
}

/// A registered tenant "Contoso", with credentials and linked to company 250 in the destination `psa`.
#[must_use]
pub fn sample_tenant(msp_id: &MspId, tenant_id: &TenantId) -> Tenant {
    Tenant {
        msp_id: msp_id.clone(),
        tenant_id: tenant_id.clone(),
        name: "Contoso".into(),
        domains: vec![],
        break_glass_accounts: vec![],
        company_links: [(DestinationId::parse("psa").unwrap(), "250".to_owned())].into(),
        legacy_connectwise_company_id: None,
        m365_credentials_set: true,
        credentials_from_msp_app: false,
        webhook_auth_hash: None,
        webhook_registered: false,
        offboarded_at: None,
        streams: None,
        created_at: Utc::now(),
    }
}

fn tenant(msp_id: &MspId, tenant_id: &TenantId, name: &str) -> Tenant {
    Tenant {
        msp_id: msp_id.clone(),
        tenant_id: tenant_id.clone(),
        name: name.into(),
        domains: vec!["contoso.com".into()],
        break_glass_accounts: vec![],
        company_links: std::collections::BTreeMap::new(),
        legacy_connectwise_company_id: None,
        m365_credentials_set: false,
        credentials_from_msp_app: false,
        webhook_auth_hash: None,
        webhook_registered: false,
        offboarded_at: None,
        streams: None,
        created_at: Utc::now(),
    }
}

/// A principal of `msp_id` for contract tests.
#[must_use]
pub fn sample_principal(msp_id: &MspId, id: &str, role: crate::access::Role) -> crate::access::Principal {
    let at = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
    crate::access::Principal {
        msp_id: msp_id.clone(),
        principal_id: crate::ids::PrincipalId::parse(id).unwrap(),
        name: format!("Principal {id}"),
        email: Some(format!("{id}@msp.example")),
        role,
        categories: Some([crate::alert::Category::ThreatManagement].into()),
        scopes: std::collections::BTreeSet::new(),
        created_at: at,
        updated_at: at,
    }
}

/// What every [`crate::ports::PrincipalStore`] must do.
pub async fn principal_store_contract(store: &dyn crate::ports::PrincipalStore) {
    use crate::access::{Role, StoredToken};
    use crate::ids::TokenId;
    let (msp_id, other_msp) = (unique_msp(), unique_msp());
    let analyst = sample_principal(&msp_id, "p-analyst", Role::Analyst);
    let owner = sample_principal(&msp_id, "p-owner", Role::Owner);
    store.put_principal(&analyst).await.unwrap();
    store.put_principal(&owner).await.unwrap();
    assert_eq!(store.get_principal(&msp_id, &analyst.principal_id).await.unwrap(), Some(analyst.clone()), "read back whole");
    assert_eq!(store.get_principal(&other_msp, &analyst.principal_id).await.unwrap(), None, "another MSP never reads it");
    let listed: Vec<_> = store.list_principals(&msp_id).await.unwrap().into_iter().map(|p| p.principal_id).collect();
    assert_eq!(listed, vec![analyst.principal_id.clone(), owner.principal_id.clone()], "listed by id");
    assert!(store.list_principals(&other_msp).await.unwrap().is_empty());
    let mut changed = analyst.clone();
    changed.role = Role::ReadOnly;
    store.put_principal(&changed).await.unwrap();
    assert_eq!(store.get_principal(&msp_id, &analyst.principal_id).await.unwrap().unwrap().role, Role::ReadOnly, "replaced");
    assert!(!store.delete_principal(&other_msp, &owner.principal_id).await.unwrap(), "another MSP cannot delete it");
    assert!(store.delete_principal(&msp_id, &owner.principal_id).await.unwrap());
    assert!(!store.delete_principal(&msp_id, &owner.principal_id).await.unwrap(), "nothing left to delete");

    let at = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
    let token = |n: i64| StoredToken {
        msp_id: msp_id.clone(),
        hash: TokenHash(format!("{}{n}", unique_suffix())),
        token_id: TokenId::parse(&format!("t-{n}")).unwrap(),
        principal_id: Some(analyst.principal_id.clone()),
        name: format!("token {n}"),
        created_at: at + Duration::seconds(n),
        expires_at: Some(at + Duration::days(90)),
        revoked_at: None,
        ends_with: "abcd".into(),
    };
    let (second, first) = (token(2), token(1));
    store.put_token(&second).await.unwrap();
    store.put_token(&first).await.unwrap();
    assert_eq!(store.token(&msp_id, &first.hash).await.unwrap(), Some(first.clone()));
    assert_eq!(store.token(&other_msp, &first.hash).await.unwrap(), None, "a token belongs to one MSP only");
    let ids: Vec<_> = store.tokens(&msp_id).await.unwrap().into_iter().map(|t| t.token_id).collect();
    assert_eq!(ids, vec![first.token_id.clone(), second.token_id.clone()], "oldest first");
    let revoked = StoredToken { revoked_at: Some(at + Duration::hours(1)), ..first.clone() };
    store.put_token(&revoked).await.unwrap();
    assert_eq!(store.token(&msp_id, &first.hash).await.unwrap(), Some(revoked), "revocation is stored");
    store.delete_token(&msp_id, &first.hash).await.unwrap();
    assert_eq!(store.token(&msp_id, &first.hash).await.unwrap(), None);
    assert_eq!(store.tokens(&msp_id).await.unwrap().len(), 1);
    assert!(store.tokens(&other_msp).await.unwrap().is_empty());
}

/// What every [`crate::ports::AuditLog`] must do.
pub async fn audit_log_contract(log: &dyn crate::ports::AuditLog) {
    use crate::access::{Access, AuditEntry};
    let (msp_id, other_msp) = (unique_msp(), unique_msp());
    let access = Access::operator(&msp_id);
    let at = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
    let mut written = Vec::new();
    for i in 0..7 {
        let entry = AuditEntry::new(&access, at + Duration::seconds(i), "tenant.registered", &format!("tenant {i}")).unwrap();
        log.append(&entry).await.unwrap();
        written.push(entry);
    }
    log.append(&AuditEntry::new(&Access::operator(&other_msp), at, "policy.created", "x").unwrap()).await.unwrap();
    written.reverse();
    let first = log.entries(&msp_id, 3, None).await.unwrap();
    assert_eq!(first.entries, written[..3].to_vec(), "newest first, whole");
    let second = log.entries(&msp_id, 3, first.next.as_deref()).await.unwrap();
    assert_eq!(second.entries, written[3..6].to_vec(), "a page continues after the last entry of the one before");
    let third = log.entries(&msp_id, 3, second.next.as_deref()).await.unwrap();
    assert_eq!(third.entries, written[6..].to_vec());
    assert_eq!(third.next, None, "the last page says so");
    assert_eq!(log.entries(&other_msp, 10, None).await.unwrap().entries.len(), 1, "each MSP reads its own log");
}

/// Tenants read a page at a time: in tenant-id order, each page continuing after the one
/// before, the last one saying so, and never another MSP's tenant (which sorts among them).
async fn tenant_pages_contract(store: &dyn ConfigStore) {
    let (msp_id, other_msp) = (unique_msp(), unique_msp());
    let mut ids: Vec<TenantId> = (0..5).map(|_| unique_tenant()).collect();
    for (i, id) in ids.iter().enumerate() {
        assert!(store.create_tenant(&tenant(&msp_id, id, &format!("Customer {i}"))).await.unwrap());
        assert!(store.create_tenant(&tenant(&other_msp, id, "Another MSP's")).await.unwrap());
    }
    ids.sort();
    let first = store.tenants_page(&msp_id, 2, None).await.unwrap();
    let page_ids = |page: &crate::ports::TenantPage| page.tenants.iter().map(|t| t.tenant_id.clone()).collect::<Vec<_>>();
    assert_eq!(page_ids(&first), ids[..2].to_vec(), "the first page: the lowest ids");
    assert_eq!(first.next.as_ref(), Some(&ids[1]), "more follow, after its last tenant");
    assert!(first.tenants.iter().all(|t| t.msp_id == msp_id), "only the MSP's own tenants");
    let second = store.tenants_page(&msp_id, 2, first.next.as_ref()).await.unwrap();
    assert_eq!(page_ids(&second), ids[2..4].to_vec(), "a page continues after the one before");
    let last = store.tenants_page(&msp_id, 2, second.next.as_ref()).await.unwrap();
    assert_eq!((page_ids(&last), last.next), (ids[4..].to_vec(), None), "the last page says so");
    let whole = store.tenants_page(&msp_id, 5, None).await.unwrap();
    assert_eq!((page_ids(&whole), whole.next), (ids.clone(), None), "a page exactly as long as the list is the last");
    assert_eq!(store.tenants_page(&msp_id, 0, None).await.unwrap().tenants.len(), 1, "at least one is read");
    assert_eq!(store.tenants_page(&unique_msp(), 10, None).await.unwrap(), crate::ports::TenantPage::default(), "an MSP without tenants");
}

/// What every [`ConfigStore`] must do.
pub async fn config_store_contract(store: &dyn ConfigStore) {
    let msp_id = unique_msp();
    let other_msp = unique_msp();
    let msp = Msp::new(msp_id.clone(), "Acme".into(), Utc.timestamp_opt(1_700_000_000, 0).unwrap());
    assert!(store.create_msp(&msp).await.unwrap(), "a new MSP is created");
    assert!(!store.create_msp(&Msp { name: "Other".into(), ..msp.clone() }).await.unwrap(), "creating it again is refused");
    assert_eq!(store.get_msp(&msp_id).await.unwrap(), Some(msp), "and leaves it unchanged");
    assert_eq!(store.get_msp(&other_msp).await.unwrap(), None);
    let mut with_publisher = store.get_msp(&msp_id).await.unwrap().unwrap();
    with_publisher.publisher_identifier = Some(unique_tenant());
    store.put_msp(&with_publisher).await.unwrap();
    assert_eq!(store.get_msp(&msp_id).await.unwrap(), Some(with_publisher), "settings are replaced");

    let t1 = tenant(&msp_id, &unique_tenant(), "Contoso");
    let t2 = tenant(&msp_id, &unique_tenant(), "Fabrikam");
    let foreign = tenant(&other_msp, &t1.tenant_id, "Same tenant, other MSP");
    assert!(store.create_tenant(&t1).await.unwrap());
    assert!(!store.create_tenant(&t1).await.unwrap());
    assert!(store.create_tenant(&t2).await.unwrap());
    assert!(store.create_tenant(&foreign).await.unwrap(), "two MSPs may register the same tenant independently");
    let mut mapped = t1.clone();
    mapped.company_links.insert(DestinationId::parse("psa").unwrap(), "250".into());
    store.put_tenant(&mapped).await.unwrap();
    assert_eq!(store.get_tenant(&msp_id, &t1.tenant_id).await.unwrap(), Some(mapped.clone()));
    assert_eq!(store.get_tenant(&other_msp, &t1.tenant_id).await.unwrap(), Some(foreign.clone()));
    let mut listed = store.list_tenants(&msp_id).await.unwrap();
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(listed, vec![mapped.clone(), t2.clone()], "listing shows only the MSP's own tenants");
    tenant_pages_contract(store).await;
    let all: HashSet<(String, String)> =
        store.list_all_tenants().await.unwrap().into_iter().map(|t| (t.msp_id.to_string(), t.tenant_id.to_string())).collect();
    for t in [&t1, &t2, &foreign] {
        assert!(all.contains(&(t.msp_id.to_string(), t.tenant_id.to_string())));
    }

    let psa = DestinationId::parse("psa").unwrap();
    let link = |company: Option<&str>| TenantChange::CompanyLink { destination: psa.clone(), company: company.map(str::to_owned) };
    let changed = store.update_tenant(&msp_id, &t2.tenant_id, &link(Some("77"))).await.unwrap().unwrap();
    assert_eq!(changed.company_link(&psa).as_deref(), Some("77"));
    let other = DestinationId::parse("other-psa").unwrap();
    let both = store
        .update_tenant(&msp_id, &t2.tenant_id, &TenantChange::CompanyLink { destination: other.clone(), company: Some("A-1".into()) })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (both.company_link(&psa).as_deref(), both.company_link(&other).as_deref()),
        (Some("77"), Some("A-1")),
        "one link per destination"
    );
    let unlinked = store
        .update_tenant(&msp_id, &t2.tenant_id, &TenantChange::CompanyLink { destination: other, company: None })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unlinked.company_links.len(), 1, "a link is removed alone");
    store.update_tenant(&msp_id, &t2.tenant_id, &TenantChange::Webhook { auth_hash: "ab12".into(), registered: true }).await.unwrap();
    store.update_tenant(&msp_id, &t2.tenant_id, &TenantChange::M365CredentialsSet).await.unwrap();
    let streams = vec![crate::ids::AuditStream::GraphAlerts];
    let after = store.update_tenant(&msp_id, &t2.tenant_id, &TenantChange::Streams(Some(streams.clone()))).await.unwrap().unwrap();
    assert_eq!(
        (
            after.company_link(&psa),
            after.webhook_auth_hash.as_deref(),
            after.m365_credentials_set,
            after.streams,
            after.webhook_registered,
            after.name.as_str()
        ),
        (Some("77".to_owned()), Some("ab12"), true, Some(streams), false, "Fabrikam"),
        "each change touches its own attributes only"
    );
    assert_eq!(store.get_tenant(&msp_id, &t2.tenant_id).await.unwrap().unwrap().company_link(&psa).as_deref(), Some("77"));
    let cleared = store.update_tenant(&msp_id, &t2.tenant_id, &TenantChange::Streams(None)).await.unwrap().unwrap();
    assert_eq!(cleared.streams, None);
    assert_eq!(
        store.update_tenant(&other_msp, &unique_tenant(), &TenantChange::M365CredentialsSet).await.unwrap(),
        None,
        "no tenant is created"
    );

    let connectwise = DestinationId::parse(crate::destination::LEGACY_DESTINATION_ID).unwrap();
    let legacy = Tenant { legacy_connectwise_company_id: Some(250), ..tenant(&msp_id, &unique_tenant(), "Legacy") };
    assert!(store.create_tenant(&legacy).await.unwrap());
    let elsewhere = store.update_tenant(&msp_id, &legacy.tenant_id, &link(Some("9"))).await.unwrap().unwrap();
    assert_eq!(
        (elsewhere.company_link(&connectwise).as_deref(), elsewhere.company_link(&psa).as_deref()),
        (Some("250"), Some("9")),
        "a link to another destination keeps the legacy ConnectWise company"
    );
    let unlink_connectwise = TenantChange::CompanyLink { destination: connectwise.clone(), company: None };
    let unlinked = store.update_tenant(&msp_id, &legacy.tenant_id, &unlink_connectwise).await.unwrap().unwrap();
    assert_eq!(
        (unlinked.company_link(&connectwise), unlinked.company_link(&psa).as_deref()),
        (None, Some("9")),
        "unlinking `connectwise` drops the legacy company too"
    );
}

/// A destination of `msp_id` for tests: an Autotask one with the given id.
#[must_use]
pub fn sample_destination(msp_id: &MspId, id: &str) -> Destination {
    Destination {
        msp_id: msp_id.clone(),
        id: DestinationId::parse(id).unwrap(),
        name: format!("PSA {id}"),
        enabled: true,
        settings: DestinationSettings::ConnectWise {
            api_root: "https://cw.example/v4_6_release/apis/3.0".into(),
            ticket_type: None,
            source: None,
        },
        routing: Routing { default_place: Some("1".into()), ..Routing::default() },
        requests_per_hour: None,
        credentials_set: true,
        created_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
        updated_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
    }
}

/// What every [`DestinationStore`] must do.
pub async fn destination_store_contract(store: &dyn DestinationStore) {
    let msp_id = unique_msp();
    let other_msp = unique_msp();
    let a = sample_destination(&msp_id, "alpha");
    let mut b = sample_destination(&msp_id, "beta");
    b.routing.priorities.insert(crate::alert::Severity::High, "8".into());
    let foreign = sample_destination(&other_msp, "alpha");
    assert_eq!(store.get_destination(&msp_id, &a.id).await.unwrap(), None);
    for d in [&a, &b, &foreign] {
        store.put_destination(d).await.unwrap();
    }
    assert_eq!(store.get_destination(&msp_id, &b.id).await.unwrap(), Some(b.clone()), "routing round-trips");
    let mut listed = store.list_destinations(&msp_id).await.unwrap();
    listed.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(listed, vec![a.clone(), b.clone()], "an MSP lists only its own destinations");
    let mut renamed = a.clone();
    renamed.name = "Renamed".into();
    store.put_destination(&renamed).await.unwrap();
    assert_eq!(store.get_destination(&msp_id, &a.id).await.unwrap().unwrap().name, "Renamed", "put replaces");
    let everyone: HashSet<(String, String)> =
        store.list_all_destinations().await.unwrap().into_iter().map(|d| (d.msp_id.to_string(), d.id.to_string())).collect();
    assert!(everyone.contains(&(other_msp.to_string(), "alpha".into())) && everyone.contains(&(msp_id.to_string(), "beta".into())));
    assert!(store.delete_destination(&msp_id, &a.id).await.unwrap());
    assert!(!store.delete_destination(&msp_id, &a.id).await.unwrap(), "nothing left to delete");
    assert_eq!(store.get_destination(&other_msp, &a.id).await.unwrap(), Some(foreign), "another MSP's destination of the same id stays");
}

/// What every [`RequestBudget`] must do: never grant more than the share in a rolling hour,
/// say how long to wait, and count each destination apart.
pub async fn request_budget_contract(budget: &dyn RequestBudget) {
    let msp_id = unique_msp();
    let psa = DestinationId::parse("psa").unwrap();
    let other = DestinationId::parse("other").unwrap();
    let t0 = Utc::now();
    for i in 0..10 {
        assert_eq!(budget.take(&msp_id, &psa, 1, 10, t0 + Duration::minutes(i)).await.unwrap(), BudgetGrant::Granted, "request {i}");
    }
    match budget.take(&msp_id, &psa, 1, 10, t0 + Duration::minutes(30)).await.unwrap() {
        BudgetGrant::Exhausted { retry_after } => {
            let wait = retry_after.as_secs();
            assert!((29 * 60..=31 * 60).contains(&wait), "the first request leaves the hour in ~30 minutes, not {wait} s");
        }
        BudgetGrant::Granted => panic!("an eleventh request within the hour must wait"),
    }
    assert_eq!(budget.take(&msp_id, &other, 1, 10, t0).await.unwrap(), BudgetGrant::Granted, "each destination has its own share");
    assert_eq!(budget.take(&unique_msp(), &psa, 1, 10, t0).await.unwrap(), BudgetGrant::Granted, "and each MSP");
    assert_eq!(
        budget.take(&msp_id, &psa, 1, 10, t0 + Duration::minutes(61)).await.unwrap(),
        BudgetGrant::Granted,
        "an hour after the first request, it has left the window"
    );
}

/// What every [`IngestStateStore`] must do.
pub async fn ingest_state_contract(store: &dyn IngestStateStore) {
    let msp_id = unique_msp();
    let tenant_id = unique_tenant();
    let stream = StreamKey { msp_id: msp_id.clone(), tenant_id: tenant_id.clone(), stream: ContentType::Exchange.into() };
    let now = Utc.timestamp_opt(1_767_600_000, 0).unwrap();
    assert_eq!(store.get_stream(&stream).await.unwrap(), None);
    let mut state = StreamState::starting_at(now);
    state.consecutive_failures = 2;
    state.last_error = Some("AADSTS700016: consent missing".into());
    state.lost = vec![(now - Duration::days(9), now - Duration::days(8))];
    store.put_stream(&stream, &state).await.unwrap();
    assert_eq!(store.get_stream(&stream).await.unwrap(), Some(state.clone()));
    state.covered_until = now + Duration::hours(1);
    state.last_success = Some(now);
    state.last_error = None;
    store.put_stream(&stream, &state).await.unwrap();
    assert_eq!(store.get_stream(&stream).await.unwrap(), Some(state), "a ledger is replaced whole");
    let other_stream = StreamKey { stream: crate::ids::AuditStream::GraphAlerts, ..stream.clone() };
    assert_eq!(store.get_stream(&other_stream).await.unwrap(), None, "ledgers are per stream");

    let record = RecordId::parse(&format!("rec-{}", unique_suffix())).unwrap();
    let lease = Duration::minutes(5);
    assert_eq!(store.claim_record(&msp_id, &tenant_id, &record, now, lease).await.unwrap(), ClaimOutcome::Claimed);
    assert_eq!(
        store.claim_record(&msp_id, &tenant_id, &record, now + Duration::minutes(1), lease).await.unwrap(),
        ClaimOutcome::InFlight,
        "a fresh claim is held"
    );
    assert_eq!(
        store.claim_record(&msp_id, &tenant_id, &record, now + Duration::minutes(6), lease).await.unwrap(),
        ClaimOutcome::Claimed,
        "an abandoned claim is taken over after its lease"
    );
    store.complete_records(&msp_id, &tenant_id, std::slice::from_ref(&record), now).await.unwrap();
    assert_eq!(
        store.claim_record(&msp_id, &tenant_id, &record, now + Duration::days(1), lease).await.unwrap(),
        ClaimOutcome::AlreadyProcessed
    );
    let other_tenant = unique_tenant();
    assert_eq!(
        store.claim_record(&msp_id, &other_tenant, &record, now, lease).await.unwrap(),
        ClaimOutcome::Claimed,
        "claims are per tenant"
    );

    let blob = "20260105101500123$20260105101500123$audit_exchange$Audit_Exchange";
    assert!(!store.blob_done(&msp_id, &tenant_id, blob).await.unwrap());
    store.mark_blob_done(&msp_id, &tenant_id, blob, now).await.unwrap();
    assert!(store.blob_done(&msp_id, &tenant_id, blob).await.unwrap());
    assert!(!store.blob_done(&msp_id, &other_tenant, blob).await.unwrap());
}

/// What every [`AlertStore`] must do.
pub async fn alert_store_contract(store: &dyn AlertStore) {
    let msp_id = unique_msp();
    let tenant_id = unique_tenant();
    let t0 = Utc.timestamp_opt(1_767_600_000, 0).unwrap();
    let template = sample_alert_for(&msp_id, &tenant_id, t0);
    let rec = |n: u32| (RecordId::parse(&format!("r{n}")).unwrap(), t0 + Duration::seconds(i64::from(n)));
    let hits = AlertHits::of_records(template.clone(), vec![rec(1), rec(2), rec(3)]);

    let stored = store.record_hits(&hits, t0).await.unwrap();
    assert_eq!(stored.hit_count, 3);
    assert_eq!(stored.first_seen, rec(1).1);
    assert_eq!(stored.last_seen, rec(3).1);
    let again = store.record_hits(&hits, t0).await.unwrap();
    assert_eq!(again.hit_count, 3, "repeating the same records changes nothing");
    let more = store.record_hits(&AlertHits::of_records(template.clone(), vec![rec(3), rec(4), rec(4)]), t0).await.unwrap();
    assert_eq!(more.hit_count, 4, "only records not counted before are added, duplicates within a call once");
    assert_eq!(store.get_alert(&msp_id, &template.id).await.unwrap().unwrap().hit_count, 4);
    assert_eq!(store.get_alert(&unique_msp(), &template.id).await.unwrap(), None, "another MSP never sees it");

    let resolved_at = t0 + Duration::hours(2);
    let resolved = store.resolve_alert(&msp_id, &template.id, resolved_at).await.unwrap().unwrap();
    assert_eq!((resolved.status, resolved.resolved_at, resolved.hit_count), (AlertStatus::Resolved, Some(resolved_at), 4));
    let again = store.resolve_alert(&msp_id, &template.id, resolved_at + Duration::hours(1)).await.unwrap().unwrap();
    assert_eq!((again.resolved_at, again.version), (Some(resolved_at), resolved.version), "resolving twice changes nothing");
    assert_eq!(store.resolve_alert(&msp_id, &AlertId::derive(&["nope"]), resolved_at).await.unwrap(), None);

    let many: Vec<_> = (100..260).map(rec).collect();
    let big = store.record_hits(&AlertHits::of_records(template.clone(), many), t0).await.unwrap();
    assert_eq!(big.hit_count, 164, "large batches are counted exactly");

    let second = AlertHits::of_records(sample_alert_for(&msp_id, &tenant_id, t0 + Duration::hours(1)), vec![rec(1)]);
    store.record_hits(&second, t0).await.unwrap();
    let first_page = store.list_alerts(&msp_id, 1, None).await.unwrap();
    assert_eq!(first_page.alerts.len(), 1);
    let next = first_page.next.clone().expect("a second page");
    let second_page = store.list_alerts(&msp_id, 1, Some(&next)).await.unwrap();
    assert_eq!(second_page.alerts.len(), 1);
    assert_ne!(first_page.alerts[0].id, second_page.alerts[0].id);
    assert!(store.list_alerts(&unique_msp(), 10, None).await.unwrap().alerts.is_empty());

    let mut triaged = store.get_alert(&msp_id, &template.id).await.unwrap().unwrap();
    let stale = triaged.clone();
    triaged.triage.assignee = Some("dana@msp.example".into());
    triaged.status = AlertStatus::InProgress;
    triaged.version += 1;
    store.update_alert(&triaged).await.unwrap();
    let read = store.get_alert(&msp_id, &template.id).await.unwrap().unwrap();
    assert_eq!((read.status, read.triage.assignee.as_deref()), (AlertStatus::InProgress, Some("dana@msp.example")));
    let day = t0.date_naive();
    let limited = |n: u32| {
        let mut a = sample_alert_for(&msp_id, &tenant_id, t0 + Duration::minutes(15 * i64::from(n)));
        a.id = AlertId::derive(&["daily", &n.to_string(), msp_id.as_str()]);
        a
    };
    let (a1, a2, a3) = (limited(1), limited(2), limited(3));
    assert!(store.take_daily_ticket(&a1, day, 2).await.unwrap());
    assert!(store.take_daily_ticket(&a2, day, 2).await.unwrap());
    assert!(store.take_daily_ticket(&a1, day, 2).await.unwrap(), "taking a held place again is a no-op");
    assert!(!store.take_daily_ticket(&a3, day, 2).await.unwrap(), "the day's places are held");
    assert!(store.take_daily_ticket(&a3, day.succ_opt().unwrap(), 2).await.unwrap(), "a new day, new places");
    let mail = DestinationId::parse("mail").unwrap();
    let other_mail = DestinationId::parse("mail-two").unwrap();
    assert!(store.take_daily_message(&a1, &mail, day, 2, "m1").await.unwrap());
    assert!(store.take_daily_message(&a2, &mail, day, 2, "m2").await.unwrap(), "the count is per policy and tenant, not per alert");
    assert!(store.take_daily_message(&a1, &mail, day, 2, "m1").await.unwrap(), "a retry of a counted message is a no-op");
    assert!(!store.take_daily_message(&a1, &mail, day, 2, "m3").await.unwrap(), "the day's messages are used");
    assert!(store.take_daily_message(&a1, &other_mail, day, 2, "m3").await.unwrap(), "each destination counts its own");
    assert!(store.take_daily_message(&a1, &mail, day.succ_opt().unwrap(), 2, "m3").await.unwrap(), "a new day, new places");
    let mut other_tenant = a3.clone();
    other_tenant.tenant_id = unique_tenant();
    assert!(store.take_daily_message(&other_tenant, &mail, day, 2, "m4").await.unwrap(), "another tenant counts its own");
    let mut lost_race = stale;
    lost_race.version += 1;
    assert!(matches!(store.update_alert(&lost_race).await, Err(StoreError::Conflict { .. })), "a stale update is refused");

    let psa = DestinationId::parse("psa").unwrap();
    assert_eq!(store.get_delivery(&msp_id, &template.id, &psa).await.unwrap(), None);
    let mut delivery = Delivery::new(msp_id.clone(), template.id.clone(), psa.clone());
    delivery.version = 1;
    delivery.create_attempted = true;
    delivery.lease_until = Some(t0);
    store.save_delivery(&delivery).await.unwrap();
    assert!(matches!(store.save_delivery(&delivery).await, Err(StoreError::Conflict { .. })), "a stale version loses");
    let mut done = delivery.clone();
    done.version = 2;
    done.ticket = Some(TicketRef::new("1001"));
    done.notified_hits = 4;
    done.lease_until = None;
    store.save_delivery(&done).await.unwrap();
    assert_eq!(store.get_delivery(&msp_id, &template.id, &psa).await.unwrap(), Some(done.clone()));
    assert_eq!(
        store.list_open_tickets(&msp_id, &psa).await.unwrap(),
        vec![(template.id.clone(), TicketRef::new("1001"))],
        "an open ticket is indexed"
    );
    let other = DestinationId::parse("other").unwrap();
    assert!(store.list_open_tickets(&msp_id, &other).await.unwrap().is_empty(), "per destination");
    let mut held = Delivery::new(msp_id.clone(), template.id.clone(), other.clone());
    held.version = 1;
    held.held_unlinked = true;
    store.save_delivery(&held).await.unwrap();
    assert_eq!(store.list_held_deliveries(&msp_id, &other).await.unwrap(), vec![template.id.clone()], "a held delivery is indexed");
    assert!(store.list_held_deliveries(&msp_id, &psa).await.unwrap().is_empty());
    let mut both = store.list_deliveries(&msp_id, &template.id).await.unwrap();
    both.sort_by(|x, y| x.destination.cmp(&y.destination));
    assert_eq!(both.iter().map(|d| d.destination.as_str()).collect::<Vec<_>>(), ["other", "psa"], "one delivery per destination");
    let mut released = held.clone();
    released.version = 2;
    released.held_unlinked = false;
    store.save_delivery(&released).await.unwrap();
    assert!(store.list_held_deliveries(&msp_id, &other).await.unwrap().is_empty(), "a released delivery leaves the held index");
    let mut closed = done.clone();
    closed.version = 3;
    closed.psa_state = Some(TicketState::Closed { status: "Closed".into(), by: Some("jsmith".into()), at: None });
    store.save_delivery(&closed).await.unwrap();
    assert!(store.list_open_tickets(&msp_id, &psa).await.unwrap().is_empty(), "a ticket closed in the PSA leaves the open index");
    assert!(store.list_open_tickets(&unique_msp(), &psa).await.unwrap().is_empty(), "another MSP sees none");

    oversized_hits_are_recorded_in_an_alert_cut_to_fit(store, &msp_id, &tenant_id, t0).await;
}

/// Ten matching records whose activities are 100 KB each: the alert is written cut to
/// [`crate::limits::ALERT_BYTES`] and marked truncated, and every hit is counted once.
async fn oversized_hits_are_recorded_in_an_alert_cut_to_fit(
    store: &dyn AlertStore,
    msp_id: &MspId,
    tenant_id: &TenantId,
    t0: DateTime<Utc>,
) {
    use crate::alert::{ActivityEntry, Entities, HitDetail};
    let mut template = sample_alert_for(msp_id, tenant_id, t0);
    template.id = AlertId::derive(&["oversized", msp_id.as_str()]);
    let mut hits = AlertHits::new(template.clone());
    for n in 0..10u32 {
        let id = RecordId::parse(&format!("big{n}")).unwrap();
        let at = t0 + Duration::seconds(i64::from(n));
        let activity = ActivityEntry {
            record_id: id.clone(),
            time: at,
            operation: "Set-InboxRule".into(),
            user: "alice@contoso.com".into(),
            client_ip: None,
            summary: format!("{n}{}", "ü".repeat(50_000)),
        };
        hits.details.insert(
            id.clone(),
            HitDetail { activity, entities: Entities { files: vec![format!("{n}{}", "f".repeat(100_000))], ..Entities::default() } },
        );
        hits.records.push((id, at));
    }
    let written = store.record_hits(&hits, t0).await.unwrap();
    let stored = store.get_alert(msp_id, &template.id).await.unwrap().unwrap();
    assert_eq!(written, stored);
    assert_eq!(stored.hit_count, 10, "every hit counts although the alert was cut");
    assert!(stored.detail.truncated);
    assert!(stored.json_size() <= crate::limits::ALERT_BYTES, "{} bytes", stored.json_size());
    assert_eq!(stored.detail.activity_counts.get("Set-InboxRule"), Some(&10));
    assert_eq!(store.record_hits(&hits, t0).await.unwrap().hit_count, 10, "the hit markers were written too");
}

/// What every [`SecretStore`] must do.
pub async fn secret_store_contract(store: &dyn SecretStore) {
    let msp_id = unique_msp();
    let name = SecretName::destination(&msp_id, &DestinationId::parse("psa").unwrap());
    assert_eq!(store.get_secret(&name).await.unwrap(), None);
    store.put_secret(&name, &SecretString::new("{\"v\":1}")).await.unwrap();
    store.put_secret(&name, &SecretString::new("{\"v\":1}")).await.unwrap();
    assert_eq!(store.get_secret(&name).await.unwrap(), Some(SecretString::new("{\"v\":1}")), "repeating a write is harmless");
    store.put_secret(&name, &SecretString::new("{\"v\":2}")).await.unwrap();
    assert_eq!(store.get_secret(&name).await.unwrap(), Some(SecretString::new("{\"v\":2}")), "a new value replaces the old");
    assert_eq!(store.get_secret(&SecretName::destination(&unique_msp(), &DestinationId::parse("psa").unwrap())).await.unwrap(), None);
}

/// What every [`MessageQueue`] must do; `receive_all` reads back everything sent so far.
pub async fn message_queue_contract<F, Fut>(queue: &dyn MessageQueue, receive_all: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Vec<String>>,
{
    let bodies: Vec<String> = (0..23).map(|i| format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(20_000))).collect();
    queue.send_all(&bodies[..20]).await.unwrap();
    queue.send_all(&[]).await.unwrap();
    queue.send_delayed(&bodies[20..], std::time::Duration::from_secs(1)).await.unwrap();
    let mut received = receive_all().await;
    received.sort();
    let mut expected = bodies.clone();
    expected.sort();
    assert_eq!(received, expected, "every message arrives once, whatever the batching, delayed ones after their delay");
}

/// The contract of [`TriggerStateStore`]: versioned writes, one winner per version.
pub async fn trigger_state_contract(store: &dyn TriggerStateStore) {
    use crate::policy::trigger::{ThresholdEntry, ThresholdState, TriggerState};
    let key = TriggerKey {
        msp_id: unique_msp(),
        tenant_id: unique_tenant(),
        policy_id: PolicyId::parse("builtin.brute-force").unwrap(),
        key: "Alice@Contoso.com|203.0.113.7 with spaces/and#hashes".into(),
    };
    assert_eq!(store.load_trigger(&key).await.unwrap(), None);
    let now = Utc::now();
    let mut state = ThresholdState::default();
    state.entries.push(ThresholdEntry { id: RecordId::parse("r1").unwrap(), at: now, value: Some("u1".into()), reported: false });
    let state = TriggerState::Threshold(state);
    store.save_trigger(&key, &state, 0, now + Duration::hours(1)).await.unwrap();
    assert_eq!(store.load_trigger(&key).await.unwrap(), Some((state.clone(), 1)));
    assert!(matches!(store.save_trigger(&key, &state, 0, now).await, Err(StoreError::Conflict { .. })), "version 0 only when absent");
    store.save_trigger(&key, &state, 1, now).await.unwrap();
    assert!(matches!(store.save_trigger(&key, &state, 1, now).await, Err(StoreError::Conflict { .. })), "one winner per version");
    assert_eq!(store.load_trigger(&key).await.unwrap().map(|(_, v)| v), Some(2));
    let other = TriggerKey { key: "bob@contoso.com".into(), ..key.clone() };
    assert_eq!(store.load_trigger(&other).await.unwrap(), None, "keys do not collide");
    baseline_state_round_trips(store).await;
}

/// An unusual-activity baseline is stored like threshold state: versioned, one winner per
/// version, and its hourly counts (8 days of hours, large counts, gaps) read back exactly.
async fn baseline_state_round_trips(store: &dyn TriggerStateStore) {
    use crate::policy::trigger::{BASELINE_HOURS, BaselineState, TriggerState, hour_of};
    let key = TriggerKey {
        msp_id: unique_msp(),
        tenant_id: unique_tenant(),
        policy_id: PolicyId::parse("builtin.unusual-external-sharing").unwrap(),
        key: "alice@contoso.com".into(),
    };
    assert_eq!(store.load_trigger(&key).await.unwrap(), None);
    let now = Utc::now();
    let newest = hour_of(now);
    let mut baseline = BaselineState { first_hour: Some(newest - BASELINE_HOURS - 23), ..BaselineState::default() };
    for hour in (newest - BASELINE_HOURS - 23..=newest).filter(|h| h % 5 != 0) {
        let count = u32::try_from(hour % 7).unwrap() + if hour == newest { 4_000_000 } else { 1 };
        baseline.hours.insert(hour, count);
    }
    baseline.applied = (0..64).map(|i| format!("message-{i}|{}", unique_suffix())).collect();
    let state = TriggerState::Baseline(baseline.clone());
    store.save_trigger(&key, &state, 0, baseline.expires()).await.unwrap();
    let (loaded, version) = store.load_trigger(&key).await.unwrap().unwrap();
    assert_eq!(version, 1);
    let TriggerState::Baseline(loaded) = loaded else { panic!("a baseline loads as a baseline: {loaded:?}") };
    assert_eq!(loaded.hours, baseline.hours, "every hourly count round-trips exactly");
    assert_eq!(loaded, baseline);
    let mut next = baseline.clone();
    assert!(next.apply("one-more", &[now]));
    let next = TriggerState::Baseline(next);
    assert!(matches!(store.save_trigger(&key, &next, 0, now).await, Err(StoreError::Conflict { .. })), "version 0 only when absent");
    store.save_trigger(&key, &next, 1, now + Duration::days(8)).await.unwrap();
    assert!(matches!(store.save_trigger(&key, &state, 1, now).await, Err(StoreError::Conflict { .. })), "a stale writer loses");
    assert_eq!(store.load_trigger(&key).await.unwrap(), Some((next, 2)), "the winner's counts are kept");
}

/// The contract of [`PolicyStore`]: policies, per-tenant switches and suppressions, each write
/// moving the revision; nothing leaks between MSPs.
pub async fn policy_store_contract(store: &dyn PolicyStore) {
    use crate::policy::catalogue::builtin;
    let msp_id = unique_msp();
    let tenant_id = unique_tenant();
    let now = Utc::now();
    let r0 = store.policy_revision(&msp_id).await.unwrap();
    let mut definition = (**builtin("builtin.forwarding-rule").unwrap()).clone();
    definition.id = PolicyId::parse("custom.forwarding-copy").unwrap();
    definition.severity = Severity::High;
    let stored = StoredPolicy { definition: definition.clone(), updated_at: now, updated_by: "dana".into() };
    store.put_policy(&msp_id, &stored).await.unwrap();
    let r1 = store.policy_revision(&msp_id).await.unwrap();
    assert!(r1 > r0, "writing a policy moves the revision");
    let read = store.get_policy(&msp_id, &definition.id).await.unwrap().unwrap();
    assert_eq!(read.definition.severity, Severity::High);
    assert_eq!(read.definition.conditions.to_json(), definition.conditions.to_json(), "conditions survive storage");
    assert_eq!(store.list_policies(&msp_id).await.unwrap().len(), 1);
    assert!(store.list_policies(&unique_msp()).await.unwrap().is_empty(), "other MSPs see nothing");

    store.set_tenant_policy(&msp_id, &tenant_id, &definition.id, false).await.unwrap();
    assert_eq!(store.tenant_policies(&msp_id, &tenant_id).await.unwrap(), vec![(definition.id.clone(), false)]);
    assert!(store.tenant_policies(&msp_id, &unique_tenant()).await.unwrap().is_empty());
    let r2 = store.policy_revision(&msp_id).await.unwrap();
    assert!(r2 > r1);

    let suppression = Suppression {
        id: "s1".into(),
        msp_id: msp_id.clone(),
        tenant_id: Some(tenant_id.clone()),
        user: Some("svc-scanner@contoso.com".into()),
        policy_id: None,
        conditions: Some(
            crate::policy::condition::Condition::from_json(
                &serde_json::json!({"field": "ClientIP", "op": "ip_in_cidr", "value": "10.0.0.0/8"}),
            )
            .unwrap(),
        ),
        expires_at: Some(now + Duration::days(1)),
        reason: "vulnerability scanner".into(),
        author: "dana".into(),
        created_at: now,
    };
    store.put_suppression(&suppression).await.unwrap();
    let listed = store.list_suppressions(&msp_id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].user.as_deref(), Some("svc-scanner@contoso.com"));
    assert!(listed[0].conditions.is_some());
    let r3 = store.policy_revision(&msp_id).await.unwrap();
    assert!(r3 > r2);
    assert!(store.delete_suppression(&msp_id, "s1").await.unwrap());
    assert!(!store.delete_suppression(&msp_id, "s1").await.unwrap(), "deleting twice finds nothing");
    assert!(store.list_suppressions(&msp_id).await.unwrap().is_empty());
    assert!(store.delete_policy(&msp_id, &definition.id).await.unwrap());
    assert_eq!(store.get_policy(&msp_id, &definition.id).await.unwrap().map(|p| p.definition.id), None);
    assert!(store.policy_revision(&msp_id).await.unwrap() > r3);
}

/// [`ReplayStore`](crate::ports::ReplayStore): a replay reads back whole, a put overwrites it
/// (never adds), replays are kept per MSP and tenant, and the latest one per tenant is kept.
pub async fn replay_store_contract(store: &dyn crate::ports::ReplayStore) {
    use crate::replay::{ContentProgress, Replay, ReplayStatus, WouldBeAlert};
    let (msp_id, tenant_id) = (unique_msp(), unique_tenant());
    let now = Utc::now();
    let policy = (**crate::policy::catalogue::builtin("builtin.external-forwarding").unwrap()).clone();
    let id = format!("rpl-{}0000", unique_suffix());
    let note = Some("the policy is switched off for this tenant".to_owned());
    let mut replay = Replay::queued(id.clone(), msp_id.clone(), tenant_id.clone(), policy, 168, vec![ContentType::Exchange], note, now);
    assert!(store.get_replay(&msp_id, &tenant_id, &id).await.unwrap().is_none());
    assert!(store.latest_replay(&msp_id, &tenant_id).await.unwrap().is_none());
    store.put_replay(&replay).await.unwrap();
    store.set_latest_replay(&msp_id, &tenant_id, &id).await.unwrap();
    assert_eq!(store.latest_replay(&msp_id, &tenant_id).await.unwrap().as_deref(), Some(id.as_str()));
    assert_eq!(store.get_replay(&msp_id, &tenant_id, &id).await.unwrap().unwrap().view(), replay.view());

    replay.restart(now);
    replay.progress = vec![ContentProgress { records_scanned: 3, listed_until: Some(now), ..ContentProgress::new(ContentType::Exchange) }];
    replay.records_scanned = 3;
    replay.alerts = vec![WouldBeAlert {
        alert_id: AlertId::derive(&["contract", &id]),
        title: "External mail forwarding".into(),
        severity: Severity::High,
        group_key: "alice@contoso.com".into(),
        hit_count: 1,
        first_seen: now,
        last_seen: now,
    }];
    replay.status = ReplayStatus::Done;
    store.put_replay(&replay).await.unwrap();
    let read = store.get_replay(&msp_id, &tenant_id, &id).await.unwrap().unwrap();
    assert_eq!(read.view(), replay.view(), "overwritten whole");
    assert_eq!(read.policy.id, replay.policy.id);

    assert!(store.get_replay(&unique_msp(), &tenant_id, &id).await.unwrap().is_none(), "another MSP's key");
    assert!(store.get_replay(&msp_id, &unique_tenant(), &id).await.unwrap().is_none(), "another tenant's key");
    assert!(store.latest_replay(&unique_msp(), &tenant_id).await.unwrap().is_none());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::*;

    #[tokio::test]
    async fn memory_trigger_store_honours_the_contract() {
        trigger_state_contract(&MemoryTriggerStore::default()).await;
    }

    #[tokio::test]
    async fn memory_policy_store_honours_the_contract() {
        policy_store_contract(&MemoryPolicyStore::default()).await;
    }

    #[tokio::test]
    async fn memory_config_store_honours_the_contract() {
        config_store_contract(&MemoryConfigStore::default()).await;
    }

    #[tokio::test]
    async fn memory_principal_store_honours_the_contract() {
        principal_store_contract(&MemoryConfigStore::default()).await;
    }

    #[tokio::test]
    async fn memory_relationship_store_honours_the_contract() {
        relationship_store_contract(&MemoryConfigStore::default()).await;
    }

    #[tokio::test]
    async fn memory_onboarding_store_honours_the_contract() {
        onboarding_store_contract(&crate::memory::MemoryOnboardingStore::default()).await;
    }

    #[tokio::test]
    async fn memory_offboarding_store_honours_the_contract() {
        offboarding_store_contract(&crate::memory::MemoryOffboardingStore::default()).await;
    }

    #[tokio::test]
    async fn memory_credentials_episode_store_honours_the_contract() {
        credentials_episode_store_contract(&crate::memory::MemoryCredentialsEpisodes::default()).await;
    }

    #[tokio::test]
    async fn memory_mailbox_count_store_honours_the_contract() {
        mailbox_count_store_contract(&crate::memory::MemoryBillingStore::default()).await;
    }

    #[tokio::test]
    async fn memory_licence_store_honours_the_contract() {
        licence_store_contract(&crate::memory::MemoryLicenceStore::default()).await;
    }

    #[tokio::test]
    async fn memory_billing_store_honours_the_contract() {
        billing_store_contract(&crate::memory::MemoryBillingStore::default()).await;
    }

    #[tokio::test]
    async fn memory_audit_log_honours_the_contract() {
        audit_log_contract(&MemoryConfigStore::default()).await;
    }

    #[tokio::test]
    async fn memory_destination_store_honours_the_contract() {
        destination_store_contract(&MemoryConfigStore::default()).await;
    }

    #[tokio::test]
    async fn memory_request_budget_honours_the_contract() {
        request_budget_contract(&MemoryRequestBudget::default()).await;
    }

    #[tokio::test]
    async fn memory_ingest_state_honours_the_contract() {
        ingest_state_contract(&MemoryIngestState::default()).await;
    }

    #[tokio::test]
    async fn memory_alert_store_honours_the_contract() {
        alert_store_contract(&MemoryAlertStore::default()).await;
    }

    #[tokio::test]
    async fn memory_rate_limiter_honours_the_contract() {
        rate_limiter_contract(&crate::memory::MemoryRateLimiter::default()).await;
    }

    #[tokio::test]
    async fn memory_alert_store_keeps_the_change_index_contract() {
        alert_change_index_contract(&MemoryAlertStore::default()).await;
    }

    #[tokio::test]
    async fn memory_alert_store_reads_a_tenants_entries_by_key_past_any_number_of_other_tenants_entries() {
        tenant_change_index_contract(&MemoryAlertStore::default()).await;
    }

    #[tokio::test]
    async fn memory_replay_store_honours_the_contract() {
        replay_store_contract(&MemoryReplayStore::default()).await;
    }

    #[tokio::test]
    async fn memory_secret_store_honours_the_contract() {
        secret_store_contract(&MemorySecretStore::default()).await;
    }

    #[tokio::test]
    async fn memory_queue_honours_the_contract() {
        let queue = MemoryQueue::default();
        message_queue_contract(&queue, || async {
            queue.drain().into_iter().chain(queue.drain_delayed().into_iter().map(|(b, _)| b)).collect()
        })
        .await;
    }
}
