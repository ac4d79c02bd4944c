//! The admin-relationship report behind the config API: the MSP's relationships as its partner
//! tenant last listed them, with partner activity per customer, turned into report rows at the
//! time of the request ([`crate::relationships::report`]), filtered, sorted and paged, with the
//! summary across every customer, or exported as CSV.
//!
//! The report is about the MSP's own access to every customer: it needs config:read and, for a
//! principal limited to some alert categories, the Permissions category (the category of the
//! admin-relationship alerts).

use super::admin::AdminError;
use crate::access::{Access, Permission};
use crate::alert::Category;
use crate::clock::Clock;
use crate::ports::RelationshipStore;
use crate::relationships::report::{InactivityBucket, Recommendation, ReportRow, ReportSummary};
use crate::relationships::{RelationshipKind, RelationshipRefreshState, RelationshipStatus};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::cmp::Ordering;
use std::sync::Arc;

/// Largest page.
pub const PAGE_MAX: usize = 200;

/// Filters, order and paging of the report; every filter given must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    pub bucket: Option<InactivityBucket>,
    pub recommendation: Option<Recommendation>,
    pub kind: Option<RelationshipKind>,
    pub status: Option<RelationshipStatus>,
    /// A customer's tenant id, or part of its name (any case).
    pub customer: Option<String>,
    /// `customer` (default), `days_inactive`, `days_enabled` or `ends_at`; `-` first for
    /// descending.
    pub sort: Option<String>,
    /// 1 to 200 (default 50).
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 200))]
    pub limit: Option<usize>,
    /// `next_cursor` of the page before.
    pub cursor: Option<String>,
}

/// A page of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportPage {
    pub rows: Vec<ReportRow>,
    pub next_cursor: Option<String>,
    /// Across every relationship, whatever the filters.
    pub summary: ReportSummary,
    pub as_of: DateTime<Utc>,
    /// How the last read of the partner tenant went (`None`: never read).
    pub last_read: Option<RelationshipRefreshState>,
}

/// The report use cases.
pub struct RelationshipReportService {
    pub store: Arc<dyn RelationshipStore>,
    /// Whether the MSP's partner tenant is connected (for a read on request).
    pub config: Arc<dyn crate::ports::ConfigStore>,
    /// The poll-jobs queue, for a read on request.
    pub jobs: Arc<dyn crate::ports::MessageQueue>,
    pub clock: Arc<dyn Clock>,
}

/// A read on request is refused this soon after the last one.
pub const REFRESH_AFTER_MINUTES: i64 = 5;

fn invalid(detail: impl Into<String>) -> AdminError {
    AdminError::Invalid(detail.into())
}

type Order = fn(&ReportRow, &ReportRow) -> Ordering;

fn order(sort: Option<&str>) -> Result<(Order, bool), AdminError> {
    let sort = sort.unwrap_or("customer");
    let (field, descending) = sort.strip_prefix('-').map_or((sort, false), |field| (field, true));
    let order: Order = match field {
        "customer" => |a, b| a.customer_name.to_lowercase().cmp(&b.customer_name.to_lowercase()),
        "days_inactive" => |a, b| a.days_inactive.cmp(&b.days_inactive),
        "days_enabled" => |a, b| a.days_enabled.cmp(&b.days_enabled),
        "ends_at" => |a, b| a.ends_at.cmp(&b.ends_at),
        other => {
            return Err(invalid(format!(
                "sort: {other:?} is not customer, days_inactive, days_enabled or ends_at (- first for descending)"
            )));
        }
    };
    Ok((order, descending))
}

impl RelationshipReportService {
    /// Asks the audit-poller to read the partner tenant now rather than at the next daily read
    /// (after fixing an assignment, or to see a removal or a new relationship sooner).
    ///
    /// # Errors
    /// Forbidden without config:write; Refused (409) when no partner tenant is connected or the
    /// last read is less than [`REFRESH_AFTER_MINUTES`] old.
    pub async fn refresh(&self, access: &Access) -> Result<(), AdminError> {
        let msp_id = access.permit(Permission::ConfigWrite)?;
        let connected = self.config.get_msp(msp_id).await?.is_some_and(|msp| msp.partner_tenant_id.is_some());
        if !connected {
            return Err(AdminError::Refused("no partner tenant is connected (PUT /v1/msp/partner-tenant)".into()));
        }
        let now = self.clock.now();
        if let Some(last) = self.store.refresh_state(msp_id).await?
            && now - last.at < chrono::Duration::minutes(REFRESH_AFTER_MINUTES)
        {
            return Err(AdminError::Refused(format!(
                "the partner tenant was read at {}; ask again {REFRESH_AFTER_MINUTES} minutes after that",
                last.at.to_rfc3339()
            )));
        }
        let job = crate::messages::PollJob::AdminRelationships { msp_id: msp_id.clone(), at: Some(now) };
        self.jobs.send_all(&[serde_json::to_string(&job).unwrap_or_else(|_| unreachable!("jobs always serialise"))]).await?;
        Ok(())
    }

    /// Every row, at `now`, and the caller's MSP.
    async fn rows(&self, access: &Access) -> Result<Vec<ReportRow>, AdminError> {
        let msp_id = access.permit(Permission::ConfigRead)?;
        if !access.sees(Category::Permissions) {
            return Err(AdminError::Forbidden("the admin-relationship report needs the Permissions alert category".into()));
        }
        let now = self.clock.now();
        let activities = self.store.activity_by_customer(msp_id).await?;
        let relationships = self.store.relationships(msp_id).await?;
        let none = Default::default();
        Ok(relationships.iter().map(|r| ReportRow::of(r, activities.get(&r.customer_tenant_id).unwrap_or(&none), now)).collect())
    }

    /// The rows passing the filters, in order (every page of them).
    async fn selected(&self, access: &Access, query: &ReportQuery) -> Result<(Vec<ReportRow>, ReportSummary), AdminError> {
        let (order, descending) = order(query.sort.as_deref())?;
        if let Some(customer) = &query.customer {
            crate::limits::chars("customer", customer, crate::limits::TENANT_NAME_CHARS)?;
        }
        let rows = self.rows(access).await?;
        let summary = ReportSummary::of(&rows);
        let customer = query.customer.as_deref().map(str::to_lowercase);
        let mut selected: Vec<ReportRow> = rows
            .into_iter()
            .filter(|row| query.bucket.is_none_or(|b| row.bucket == b))
            .filter(|row| query.recommendation.is_none_or(|r| row.recommendations.contains(&r)))
            .filter(|row| query.kind.is_none_or(|k| row.kind == k))
            .filter(|row| query.status.is_none_or(|s| row.status == s))
            .filter(|row| {
                customer.as_deref().is_none_or(|c| row.customer_tenant_id.as_str() == c || row.customer_name.to_lowercase().contains(c))
            })
            .collect();
        // Ties keep one order (by relationship id), so pages never overlap.
        selected.sort_by(|a, b| {
            let primary = if descending { order(b, a) } else { order(a, b) };
            primary.then_with(|| a.relationship_id.cmp(&b.relationship_id))
        });
        Ok((selected, summary))
    }

    /// A page of the report. The cursor is a position in the filtered, sorted rows: a page
    /// read after the partner tenant was read again may repeat or skip a row.
    ///
    /// # Errors
    /// Forbidden without config:read or the Permissions category; Invalid filters, sort, limit
    /// or cursor.
    pub async fn report(&self, access: &Access, query: &ReportQuery) -> Result<ReportPage, AdminError> {
        let limit = query.limit.unwrap_or(50);
        if !(1..=PAGE_MAX).contains(&limit) {
            return Err(invalid(format!("limit: 1 to {PAGE_MAX}")));
        }
        let start = match &query.cursor {
            None => 0,
            Some(cursor) => cursor
                .strip_prefix("r1.")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| invalid("cursor: not a cursor this report gave"))?,
        };
        let (rows, summary) = self.selected(access, query).await?;
        let end = start.saturating_add(limit).min(rows.len());
        let next_cursor = (end < rows.len()).then(|| format!("r1.{end}"));
        let page = rows.get(start.min(rows.len())..end).unwrap_or_default().to_vec();
        // The caller's permission was checked reading the rows.
        let last_read = self.store.refresh_state(access.msp_id()).await?;
        Ok(ReportPage { rows: page, next_cursor, summary, as_of: self.clock.now(), last_read })
    }

    /// The counts across every customer.
    ///
    /// # Errors
    /// Forbidden without config:read or the Permissions category.
    pub async fn summary(&self, access: &Access) -> Result<ReportSummary, AdminError> {
        Ok(ReportSummary::of(&self.rows(access).await?))
    }

    /// Every row passing the filters, in order, as CSV (RFC 4180; a cell that a spreadsheet
    /// would read as a formula starts with `'`).
    ///
    /// # Errors
    /// As [`Self::report`] (limit and cursor are ignored).
    pub async fn csv(&self, access: &Access, query: &ReportQuery) -> Result<String, AdminError> {
        let (rows, _) = self.selected(access, query).await?;
        let mut out = String::from(
            "customer,customer_tenant_id,relationship,relationship_id,type,status,roles,global_administrator,active_assignments,assignments,days_enabled,days_enabled_exact,established,established_last_7_days,ends,auto_extend,agents_last_day,sign_ins_last_day,last_partner_sign_in,days_inactive,bucket,recommendations\r\n",
        );
        let time = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
        for row in rows {
            let cells = [
                row.customer_name.clone(),
                row.customer_tenant_id.to_string(),
                row.relationship_name.clone(),
                row.relationship_id.clone(),
                serde_name(&row.kind),
                serde_name(&row.status),
                row.roles.join(";"),
                row.includes_global_administrator.to_string(),
                row.active_assignments.to_string(),
                row.assignments.to_string(),
                row.days_enabled_shown.clone().unwrap_or_default(),
                row.days_enabled.map(|d| d.to_string()).unwrap_or_default(),
                row.established_at.to_rfc3339(),
                row.established_last_7_days.to_string(),
                time(row.ends_at),
                row.auto_extend.to_string(),
                row.agents_last_day.to_string(),
                row.sign_ins_last_day.to_string(),
                time(row.last_partner_sign_in),
                row.days_inactive.to_string(),
                serde_name(&row.bucket),
                row.recommendations.iter().map(serde_name).collect::<Vec<_>>().join(";"),
            ];
            out.push_str(&cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(","));
            out.push_str("\r\n");
        }
        Ok(out)
    }
}

/// A value's serde name (its JSON string: `gdap`, `over_90_days` …).
fn serde_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// One CSV cell: quoted when it holds a comma, quote or line break; a leading `=`, `+`, `-`,
/// `@`, tab or carriage return is defused with `'` so a spreadsheet never runs it.
pub(crate) fn csv_cell(value: &str) -> String {
    let defused = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_owned() };
    if defused.contains([',', '"', '\n', '\r']) { format!("\"{}\"", defused.replace('"', "\"\"")) } else { defused }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::contract::sample_relationship;
    use crate::ids::{MspId, TenantId};
    use crate::memory::MemoryConfigStore;
    use crate::relationships::PartnerActivity;
    use chrono::{Duration, TimeZone};

    fn tenant(n: u32) -> TenantId {
        TenantId::parse(&format!("5e1f2c8a-7d41-4f0e-9a51-{n:012}")).unwrap()
    }

    async fn service() -> (RelationshipReportService, MspId) {
        let store = Arc::new(MemoryConfigStore::default());
        let now = Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
        let msp = MspId::parse("acme").unwrap();
        let mut relationships = Vec::new();
        for (n, name, inactive) in [(1, "Contoso", 10), (2, "=cmd|' /C calc'!A0", 45), (3, "Fabrikam, Inc.", 75), (4, "Adatum", 120)] {
            let mut r = sample_relationship(&format!("rel-{n}"), &tenant(n));
            r.customer_name = name.into();
            r.activated_at = Some(now - Duration::days(400));
            relationships.push(r);
            let seen = PartnerActivity { last_sign_in: Some(now - Duration::days(inactive)), agents_last_day: 0, sign_ins_last_day: 0 };
            store.put_activity(&msp, &tenant(n), &seen).await.unwrap();
        }
        store.replace_relationships(&msp, &relationships).await.unwrap();
        let service = RelationshipReportService {
            store: store.clone(),
            config: store,
            jobs: Arc::new(crate::memory::MemoryQueue::default()),
            clock: Arc::new(ManualClock::at(now)),
        };
        (service, msp)
    }

    fn names(page: &ReportPage) -> Vec<&str> {
        page.rows.iter().map(|r| r.customer_name.as_str()).collect()
    }

    #[tokio::test]
    async fn the_report_filters_sorts_and_pages_and_its_summary_counts_every_customer() {
        let (service, msp) = service().await;
        let owner = Access::operator(&msp);
        let by_inactivity = ReportQuery { sort: Some("-days_inactive".into()), limit: Some(3), ..ReportQuery::default() };
        let first = service.report(&owner, &by_inactivity).await.unwrap();
        assert_eq!(names(&first), vec!["Adatum", "Fabrikam, Inc.", "=cmd|' /C calc'!A0"]);
        let rest = service.report(&owner, &ReportQuery { cursor: first.next_cursor.clone(), ..by_inactivity }).await.unwrap();
        assert_eq!((names(&rest), rest.next_cursor.as_deref()), (vec!["Contoso"], None));
        assert_eq!(
            (first.summary.inactive_30_to_60_days, first.summary.inactive_60_to_90_days, first.summary.inactive_over_90_days),
            (1, 1, 1)
        );
        let remove = ReportQuery { recommendation: Some(Recommendation::Remove), ..ReportQuery::default() };
        assert_eq!(names(&service.report(&owner, &remove).await.unwrap()), vec!["Adatum", "Fabrikam, Inc."], "by customer name");
        let named = ReportQuery { customer: Some("FABRI".into()), ..ReportQuery::default() };
        assert_eq!(names(&service.report(&owner, &named).await.unwrap()), vec!["Fabrikam, Inc."]);
        let by_id = ReportQuery { customer: Some(tenant(4).to_string()), ..ReportQuery::default() };
        assert_eq!(names(&service.report(&owner, &by_id).await.unwrap()), vec!["Adatum"]);
        assert_eq!(first.last_read, None, "never read");
        let read = RelationshipRefreshState {
            at: first.as_of,
            relationships: 4,
            error: Some("throttled".into()),
            last_success: None,
            activity_error: None,
        };
        service.store.put_refresh(&msp, &read).await.unwrap();
        assert_eq!(service.report(&owner, &ReportQuery::default()).await.unwrap().last_read, Some(read), "how the last read went");
        for bad in [
            ReportQuery { sort: Some("name".into()), ..ReportQuery::default() },
            ReportQuery { limit: Some(0), ..ReportQuery::default() },
            ReportQuery { limit: Some(PAGE_MAX + 1), ..ReportQuery::default() },
            ReportQuery { cursor: Some("7".into()), ..ReportQuery::default() },
        ] {
            assert!(matches!(service.report(&owner, &bad).await, Err(AdminError::Invalid(_))), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn the_csv_export_quotes_and_defuses_cells_and_holds_every_filtered_row() {
        let (service, msp) = service().await;
        let csv = service.csv(&Access::operator(&msp), &ReportQuery::default()).await.unwrap();
        let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 5, "a header and four rows");
        assert!(lines[0].starts_with("customer,customer_tenant_id,relationship"));
        assert!(lines[1].starts_with("'=cmd|' /C calc'!A0,"), "a formula is defused: {}", lines[1]);
        assert!(lines.iter().any(|l| l.starts_with("\"Fabrikam, Inc.\",")), "a comma is quoted");
        assert!(lines.iter().any(|l| l.contains(",gdap,active,") && l.ends_with(",over_90_days,remove")), "{csv}");
    }

    #[tokio::test]
    async fn the_report_needs_config_read_and_the_permissions_category() {
        let (service, msp) = service().await;
        let now = Utc::now();
        let limited = crate::access::Principal {
            msp_id: msp.clone(),
            principal_id: crate::ids::PrincipalId::parse("p-1").unwrap(),
            name: "Ann".into(),
            email: Some("ann@acme.example".into()),
            role: crate::access::Role::Analyst,
            categories: Some([Category::ThreatManagement].into()),
            scopes: Default::default(),
            created_at: now,
            updated_at: now,
        };
        let analyst = Access::of(&limited);
        assert!(matches!(service.report(&analyst, &ReportQuery::default()).await, Err(AdminError::Forbidden(_))));
        let permissions = Access::of(&crate::access::Principal { categories: Some([Category::Permissions].into()), ..limited });
        assert_eq!(service.summary(&permissions).await.unwrap().relationships, 4);
        let other = Access::operator(&MspId::parse("other").unwrap());
        assert_eq!(service.summary(&other).await.unwrap().relationships, 0, "another MSP's report is its own");
    }

    #[tokio::test]
    async fn a_read_on_request_needs_a_connected_partner_tenant_and_five_minutes_since_the_last_read() {
        let store = Arc::new(MemoryConfigStore::default());
        let jobs = Arc::new(crate::memory::MemoryQueue::default());
        let now = Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
        let service = RelationshipReportService {
            store: store.clone(),
            config: store.clone(),
            jobs: jobs.clone(),
            clock: Arc::new(ManualClock::at(now)),
        };
        let msp = MspId::parse("acme").unwrap();
        let owner = Access::operator(&msp);
        let mut profile = crate::tenant::Msp::new(msp.clone(), "Acme".into(), now);
        crate::ports::ConfigStore::create_msp(store.as_ref(), &profile).await.unwrap();
        assert!(matches!(service.refresh(&owner).await, Err(AdminError::Refused(_))), "not connected");
        profile.partner_tenant_id = Some(tenant(99));
        crate::ports::ConfigStore::put_msp(store.as_ref(), &profile).await.unwrap();
        let last = RelationshipRefreshState {
            at: now - Duration::minutes(4),
            relationships: 0,
            error: None,
            last_success: None,
            activity_error: None,
        };
        store.put_refresh(&msp, &last).await.unwrap();
        assert!(matches!(service.refresh(&owner).await, Err(AdminError::Refused(_))), "read 4 minutes ago");
        store.put_refresh(&msp, &RelationshipRefreshState { at: now - Duration::minutes(5), ..last }).await.unwrap();
        service.refresh(&owner).await.unwrap();
        let sent: Vec<crate::messages::PollJob> = jobs.drain().iter().map(|b| serde_json::from_str(b).unwrap()).collect();
        assert_eq!(sent, vec![crate::messages::PollJob::AdminRelationships { msp_id: msp.clone(), at: Some(now) }]);
        let stranger = Access::operator(&MspId::parse("other").unwrap());
        assert!(matches!(service.refresh(&stranger).await, Err(AdminError::Refused(_))), "another MSP's partner tenant is not its own");
    }
}
