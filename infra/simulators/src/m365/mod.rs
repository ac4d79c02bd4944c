//! Microsoft 365 simulator: the Microsoft identity platform token endpoint (OAuth2 client
//! credentials, v1 and v2) and the Office 365 Management Activity API, multi-tenant, in memory.
//!
//! One HTTP server on `127.0.0.1:<random port>` plays both roles:
//!
//! * `{base}/login/{tenant}/oauth2/v2.0/token` and `{base}/login/{tenant}/oauth2/token`
//!   (the `login.microsoftonline.com` role),
//! * `{base}/manage/api/v1.0/{tenant}/activity/feed/...` (the `manage.office.com` role; `/api/v1/`
//!   is accepted too because Microsoft's own `NextPageUri` example uses it),
//! * `{base}/graph/v1.0/security/alerts_v2` (the `graph.microsoft.com` role: Microsoft Graph
//!   security alerts, modelled in `graph.rs`),
//! * `{base}/_sim/...` unauthenticated JSON control endpoints so a shell script or demo can drive it.
//!
//! Wire behaviour follows `/work/shared/reference/microsoft-apis.md` sections 1, 2 and 4. Where the
//! real service is undocumented (HTTP status per AF code, `Retry-After`, `Z` suffix on window
//! times) the simulator picks the documented-ish option and says so in a comment; it is
//! deliberately *stricter* than the real service where that keeps clients honest.
//!
//! Observed live and reproduced by default: a content-list window of 24 hours or more, or one
//! starting more than 7 days (+1 h) back, is refused with 400 `AF20055`; content is listed for 7
//! days but a blob's `contentUri` serves for ~20 days (its `contentExpiration`); the start
//! response spells `Audit.SharePoint` as `Audit.Sharepoint`; the notification history says
//! `Succeeded`/`Failed`. Switches: [`M365SimHandle::set_disabled_after_start`] (AF20023 for the
//! next N listings after a start) and the `ThrottleFractional` / `ThrottleWithoutRetryAfter`
//! failures (`Retry-After: 0.249` / none).
//!
//! Everything is synchronous behind one `std::sync::Mutex`; no lock is ever held across an
//! `.await`. The server lifecycle, the fault plan (queueing, `Any`, consumption) and the request
//! log come from the shared [`kit`](crate::kit); the failure kinds ([`M365Failure`]) stay here
//! because they are Microsoft's throttling shapes (403 `AF429`, fractional or missing
//! `Retry-After`), not the kit's generic [`FailureMode`](crate::kit::FailureMode).
//!
//! The modules: `identity.rs` (token endpoint), `activity.rs` (Management Activity API
//! listing, notifications and blob fetches), `subscriptions.rs` (start/stop/list),
//! `faults.rs` (operation and failure names, the failure responses), `state.rs` (tenants,
//! blobs, tokens), `wire.rs` (parameters, formats, error shapes), `routes.rs` (HTTP wiring,
//! Graph alerts), `licences.rs` (`subscribedSkus`, `directory/subscriptions`, the lifecycle) and
//! `control.rs` (`/_sim`).
//!
//! Webhooks (section 3: the validation handshake during `subscriptions/start`, notifications for
//! new blobs, retries, disabling) are modelled in [`crate::webhooks`]; the outbound calls run
//! outside the lock.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::kit::SimServer;
use crate::webhooks::{self, Notification, WebhookDelivery};

use routes::router;
use state::{BlobBody, Inner, tenant_key};
use subscriptions::subscription_json;
use wire::Params;

mod activity;
mod consent;
mod control;
mod delegated;
mod faults;
pub mod fixtures;
mod identity;
pub mod licences;
mod routes;
mod state;
mod subscriptions;
mod tenant_load;
mod users;
mod wire;

pub use consent::{ALL_PERMISSIONS, ConsentDecision};
pub(crate) use faults::throttle_retry_after;
pub use faults::{M365Failure, M365Operation, ParseNameError};
pub use tenant_load::{LoadReport, TenantLoad};

/// The five content types the Management Activity API knows.
pub const CONTENT_TYPES: [&str; 5] = ["Audit.AzureActiveDirectory", "Audit.Exchange", "Audit.SharePoint", "Audit.General", "DLP.All"];

/// App id of the "Office 365 Management APIs" resource principal (valid as v1 `resource`).
const MANAGEMENT_APP_ID: &str = "c5393580-f805-4401-95e8-94b7a6ef2fc2";
/// Lifetime reported in `expires_in` (real tokens live 60-90 min; clients must use the field).
const TOKEN_LIFETIME_SECS: i64 = 3599;
/// Default content-list page size.
const DEFAULT_PAGE_SIZE: usize = 100;
/// Content is listed, and window starts are accepted, for this many days.
const RETENTION_DAYS: i64 = 7;
/// A blob's `contentUri` keeps serving for this many days (observed live: `contentExpiration`
/// is ~20 days after `contentCreated`, although listing reaches back only [`RETENTION_DAYS`]).
const BLOB_FETCH_DAYS: i64 = 20;
/// Grace on the 7-day start-time rule (Elastic observed ~7 days + ~1 hour).
const START_GRACE_MINUTES: i64 = 60;
/// `PublisherId` shown in throttling messages when no `PublisherIdentifier` was sent.
const ZERO_GUID: &str = "00000000-0000-0000-0000-000000000000";

/// Entry point: `M365Sim::start().await` spawns the server on the current tokio runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct M365Sim;

impl M365Sim {
    /// Binds `127.0.0.1:0`, spawns the server and returns a handle to drive and inspect it.
    pub async fn start() -> std::io::Result<M365SimHandle> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner::new(format!("http://127.0.0.1:{}", addr.port())));
        let app = router(Arc::clone(&inner));
        let server = SimServer::serve("m365", listener, app)?;
        Ok(M365SimHandle { inner, server })
    }
}

/// One request received on the login or manage role (control requests are not logged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimRequest {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Raw request path as received (percent-encoding preserved), e.g.
    /// `/manage/api/v1.0/{tenant}/activity/feed/subscriptions/content`.
    pub path: String,
    /// Raw query string without `?` (empty when none).
    pub query: String,
}

impl SimRequest {
    /// First value of query parameter `name` (name matched case-insensitively, value decoded).
    pub fn query_param(&self, name: &str) -> Option<String> {
        Params::parse(self.query.as_bytes()).get_ci(name).map(str::to_owned)
    }

    /// Whether the request carried a non-empty `PublisherIdentifier` (any case).
    pub fn has_publisher_identifier(&self) -> bool {
        self.query_param("PublisherIdentifier").is_some_and(|v| !v.is_empty())
    }
}

/// Handle to a running simulator. Cheap to clone; all clones drive the same server.
#[derive(Clone)]
pub struct M365SimHandle {
    inner: Arc<Inner>,
    server: SimServer,
}

impl fmt::Debug for M365SimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("M365SimHandle").field("base_url", &self.inner.base_url).finish_non_exhaustive()
    }
}

impl M365SimHandle {
    /// `http://127.0.0.1:PORT` – serves both the login and the manage role.
    pub fn base_url(&self) -> String {
        self.inner.base_url.clone()
    }

    /// `{base_url}/login`; token endpoints are `{login_base}/{tenant}/oauth2/v2.0/token` and
    /// `{login_base}/{tenant}/oauth2/token`.
    pub fn login_base(&self) -> String {
        self.inner.login_base()
    }

    /// `{base_url}/manage`; API root for `{management_base}/api/v1.0/{tenant}/activity/feed/...`.
    /// `{management_base}/.default` is an accepted v2 scope (as is any `https://.../.default`).
    pub fn management_base(&self) -> String {
        self.inner.management_base()
    }

    /// Registers `tenant_id` with the (multi-tenant) app `client_id`/`client_secret` admin-consented
    /// with `ActivityFeed.Read`. Re-adding a tenant replaces its credentials and restores consent
    /// and the role; subscriptions and blobs are kept.
    pub fn add_tenant(&self, tenant_id: &str, client_id: &str, client_secret: &str) {
        self.inner.add_tenant(tenant_id, client_id, client_secret);
    }

    /// Removes the tenant (token requests → AADSTS90002; API calls with an old token → AF20011).
    pub fn remove_tenant(&self, tenant_id: &str) {
        self.inner.lock().tenants.remove(&tenant_key(tenant_id));
    }

    /// Registers a multi-tenant app for admin consent: its secret, the redirect URIs Entra
    /// accepts for it, and the application permissions it asks for (`None`: [`ALL_PERMISSIONS`]).
    pub fn register_app(&self, client_id: &str, client_secret: &str, redirect_uris: Vec<String>, permissions: Option<Vec<String>>) {
        self.inner.register_app(client_id, client_secret, redirect_uris, permissions);
    }

    /// What the tenant's administrator does on the consent page (default: grants everything).
    pub fn set_consent_decision(&self, tenant_id: &str, decision: ConsentDecision) {
        self.inner.set_consent_decision(tenant_id, decision);
    }

    /// The administrator who signs in on a `common` / `organizations` consent link.
    pub fn set_consent_admin(&self, tenant_id: &str) {
        self.inner.set_consent_admin(tenant_id);
    }

    /// A partner technician of `partner_tenant_id` signs in to the app `client_id` (device code
    /// or auth code): their first refresh token, redeemable for any customer their GDAP
    /// relationships reach (see `delegated.rs`).
    #[must_use]
    pub fn issue_refresh_token(&self, partner_tenant_id: &str, user: &str, client_id: &str) -> String {
        self.inner.issue_refresh_token(partner_tenant_id, user, client_id)
    }

    /// Revokes every refresh token of the partner's technicians (AADSTS50173 from now on).
    pub fn revoke_refresh_tokens(&self, partner_tenant_id: &str) {
        self.inner.lock().delegated.revoke(partner_tenant_id);
    }

    /// Moves every refresh token's expiry `days` earlier (90 days: AADSTS700082).
    pub fn age_refresh_tokens(&self, days: i64) {
        self.inner.lock().delegated.age_refresh_tokens(days);
    }

    /// How many refresh-token redemptions were answered with a token.
    #[must_use]
    pub fn refresh_token_redemptions(&self) -> u64 {
        self.inner.lock().delegated.redemptions
    }

    /// The app roles (values, sorted) granted to `app_id`'s service principal in `tenant_id`
    /// through `appRoleAssignedTo`.
    #[must_use]
    pub fn app_roles_granted(&self, tenant_id: &str, app_id: &str) -> Vec<String> {
        self.inner.lock().delegated.granted(tenant_id, app_id)
    }

    /// How many admin consents were completed (granted or declined).
    #[must_use]
    pub fn consents_completed(&self) -> u64 {
        self.inner.lock().consent.completed
    }

    /// Consent removed: token requests now fail 400 `unauthorized_client` AADSTS700016.
    /// Already-issued tokens stay valid until they expire (they are self-contained JWTs).
    pub fn revoke_consent(&self, tenant_id: &str) {
        self.inner.set_consent(tenant_id, false);
    }

    /// Undoes [`Self::revoke_consent`].
    pub fn restore_consent(&self, tenant_id: &str) {
        self.inner.set_consent(tenant_id, true);
    }

    /// Consent without the `ActivityFeed.Read` app role (`granted = false`): token requests still
    /// succeed, but the token has no `roles` claim and every API call fails with AF10001.
    pub fn set_activity_feed_role(&self, tenant_id: &str, granted: bool) {
        if let Some(t) = self.inner.lock().tenants.get_mut(&tenant_key(tenant_id)) {
            t.activity_feed_role = granted;
        }
    }

    /// `{base_url}/graph`, the Microsoft Graph root: `{graph_base}/v1.0/security/alerts_v2`.
    /// `{graph_base}/.default` is an accepted v2 scope; its tokens are refused by the Management API.
    pub fn graph_base(&self) -> String {
        self.inner.graph_base()
    }

    /// Stores a Graph security alert (`alerts_v2` JSON) of the tenant; the tenant does not need to
    /// exist yet. A missing `lastUpdateDateTime` (or `id`, `tenantId`, `createdDateTime`,
    /// `@odata.type`) is filled in, with now for the times. An alert with the `id` of a stored one
    /// replaces it: an update.
    pub fn add_graph_alert(&self, tenant_id: &str, alert: Value) {
        self.inner.lock().graph.add_alert(tenant_id, alert, Utc::now());
    }

    /// Whether `SecurityAlert.Read.All` is consented in the tenant (default: yes). Decided when a
    /// Graph token is issued, like the token's `roles` claim: without it Graph answers 403
    /// `Forbidden`; tokens issued earlier keep what they had.
    pub fn set_graph_role(&self, tenant_id: &str, granted: bool) {
        self.inner.lock().graph.set_role(tenant_id, granted);
    }

    /// Adds a GDAP relationship (`delegatedAdminRelationship` JSON, as Graph lists it) to the
    /// partner tenant `partner_tenant_id`; one with the `id` of a stored one replaces it.
    pub fn add_partner_relationship(&self, partner_tenant_id: &str, relationship: Value) {
        self.inner.lock().partner.add_relationship(partner_tenant_id, relationship);
    }

    /// Adds an access assignment (`delegatedAdminAccessAssignment` JSON) to a relationship.
    pub fn add_access_assignment(&self, relationship_id: &str, assignment: Value) {
        self.inner.lock().partner.add_assignment(relationship_id, assignment);
    }

    /// Whether `DelegatedAdminRelationship.Read.All` is consented in the partner tenant
    /// (default: no). Decided when a Graph token is issued, like the token's `roles` claim.
    pub fn set_partner_role(&self, partner_tenant_id: &str, granted: bool) {
        self.inner.lock().partner.set_role(partner_tenant_id, granted);
    }

    /// Whether `DelegatedAdminRelationship.ReadWrite.All` is consented in the partner tenant
    /// (default: no; it includes the read role). Decided when a Graph token is issued.
    pub fn set_partner_write_role(&self, partner_tenant_id: &str, granted: bool) {
        self.inner.lock().partner.set_write_role(partner_tenant_id, granted);
    }

    /// Moves a relationship's times `days` into the past, as if established that much earlier;
    /// `false`: no such relationship.
    pub fn age_partner_relationship(&self, relationship_id: &str, days: i64) -> bool {
        self.inner.lock().partner.age(relationship_id, days)
    }

    /// A partner relationship's status now (`None`: unknown).
    #[must_use]
    pub fn partner_relationship_status(&self, relationship_id: &str) -> Option<String> {
        self.inner.lock().partner.status(relationship_id)
    }

    /// Adds a sign-in (`signIn` JSON as Graph beta lists it) to the tenant's sign-in log.
    pub fn add_sign_in(&self, tenant_id: &str, sign_in: Value) {
        self.inner.lock().sign_ins.add(tenant_id, sign_in);
    }

    /// Whether `AuditLog.Read.All` is consented in the tenant (default: no). Decided when a
    /// Graph token is issued.
    pub fn set_sign_in_role(&self, tenant_id: &str, granted: bool) {
        self.inner.lock().sign_ins.set_role(tenant_id, granted);
    }

    /// Whether the tenant has Entra ID P1/P2 (default: yes); without it Graph refuses sign-in
    /// logs.
    pub fn set_premium_licence(&self, tenant_id: &str, licensed: bool) {
        self.inner.lock().sign_ins.set_licensed(tenant_id, licensed);
    }

    /// Adds a directory user (`user` JSON as Graph lists it, with an `id`) to the tenant,
    /// replacing one with the same id.
    pub fn add_user(&self, tenant_id: &str, user: Value) {
        self.inner.lock().users.add(tenant_id, user);
    }

    /// Adds `count` licensed mailboxes (enabled members holding an enabled
    /// `EXCHANGE_S_STANDARD`) to the tenant; their user ids.
    pub fn add_licensed_mailboxes(&self, tenant_id: &str, count: usize) -> Vec<String> {
        self.inner.lock().users.add_licensed_mailboxes(tenant_id, count, Utc::now())
    }

    /// Removes a directory user; whether it was there.
    pub fn remove_user(&self, tenant_id: &str, user_id: &str) -> bool {
        self.inner.lock().users.remove(tenant_id, user_id)
    }

    /// Whether `User.Read.All` is consented in the tenant (default: yes). Decided when a Graph
    /// token is issued.
    pub fn set_users_role(&self, tenant_id: &str, granted: bool) {
        self.inner.lock().users.set_role(tenant_id, granted);
    }

    /// Adds (or replaces) one of the tenant's licence subscriptions (`directory/subscriptions`;
    /// its product shows in `subscribedSkus`). Every tenant starts with an active E5 one.
    ///
    /// # Panics
    /// When the status is not one Graph knows (a test's mistake).
    pub fn add_licence_subscription(&self, tenant_id: &str, subscription: licences::SimSubscription) {
        let added = self.inner.lock().licences.add(tenant_id, subscription, Utc::now());
        if let Err(error) = added {
            panic!("add_licence_subscription: {error}");
        }
    }

    /// Removes every licence subscription of the tenant, the default E5 one included.
    pub fn clear_licences(&self, tenant_id: &str) {
        self.inner.lock().licences.clear(tenant_id);
    }

    /// Removes one licence subscription; whether it was there.
    pub fn remove_licence_subscription(&self, tenant_id: &str, id: &str) -> bool {
        self.inner.lock().licences.remove(tenant_id, id, Utc::now())
    }

    /// Moves a licence subscription one step through its lifecycle (Enabled → Warning →
    /// Suspended → LockedOut → Deleted, or renewed); its status now, `None`: no such one.
    pub fn move_licence_subscription(&self, id: &str, step: licences::LifecycleStep) -> Option<String> {
        self.inner.lock().licences.step(id, step, Utc::now())
    }

    /// A licence subscription's status now (`None`: unknown).
    #[must_use]
    pub fn licence_subscription_status(&self, id: &str) -> Option<String> {
        self.inner.lock().licences.status(id)
    }

    /// Sets how many licences of a product (`sku_id`) are assigned in the tenant.
    pub fn set_consumed_units(&self, tenant_id: &str, sku_id: &str, units: i64) {
        self.inner.lock().licences.set_consumed(tenant_id, sku_id, units, Utc::now());
    }

    /// Whether `Organization.Read.All` is consented in the tenant (default: yes). Decided when a
    /// Graph token is issued.
    pub fn set_licences_role(&self, tenant_id: &str, granted: bool) {
        self.inner.lock().licences.set_role(tenant_id, granted);
    }

    /// Makes every token issued so far expired (API calls with them → 401).
    pub fn expire_tokens(&self) {
        let past = Utc::now() - TimeDelta::seconds(1);
        for t in self.inner.lock().tokens.values_mut() {
            t.expires = past;
        }
    }

    /// Makes one new content blob holding `records` (`contentCreated` = now, ms precision) and
    /// returns its `contentId`. The tenant does not need to exist yet.
    pub fn add_records(&self, tenant_id: &str, content_type: &str, records: Vec<Value>) -> String {
        self.inner.add_blob(tenant_id, content_type, Utc::now(), BlobBody::Records(records))
    }

    /// Like [`Self::add_records`] with an explicit `contentCreated` (e.g. 8 days ago to get an
    /// expired blob, or inside a specific window).
    pub fn add_records_at(&self, tenant_id: &str, content_type: &str, content_created: DateTime<Utc>, records: Vec<Value>) -> String {
        self.inner.add_blob(tenant_id, content_type, content_created, BlobBody::Records(records))
    }

    /// A blob whose body is served verbatim (e.g. invalid JSON). Returns its `contentId`.
    pub fn add_raw_blob(&self, tenant_id: &str, content_type: &str, body: &str) -> String {
        self.inner.add_blob(tenant_id, content_type, Utc::now(), BlobBody::Raw(body.to_owned()))
    }

    /// Content-list page size (default 100; `0` is treated as 1). More results → `NextPageUri`.
    /// Also caps Graph alert pages (`$top`); more results → `@odata.nextLink`.
    pub fn set_page_size(&self, n: usize) {
        self.inner.lock().page_size = n.max(1);
    }

    /// After every successful `subscriptions/start` from now on, the subscription's next
    /// `list_calls` content listings answer AF20023 (disabled), as the live service was seen to do
    /// for a while after a start; later listings succeed. Default 0 (enabled at once).
    pub fn set_disabled_after_start(&self, list_calls: u32) {
        self.inner.lock().disabled_after_start = list_calls;
    }

    /// The next `times` requests matching `op` fail with `failure` (FIFO across injections).
    pub fn fail_next(&self, op: M365Operation, failure: M365Failure, times: u32) {
        self.inner.fail_next(op, failure, times);
    }

    /// Keeps the tenant's subscription to `content_type` disabled, as a tenant admin who turned
    /// it off (`held`: it lists as disabled, content listings answer AF20023 and starts answer
    /// AF20023), or lets it be started again. `false` when the tenant is unknown.
    pub fn hold_subscription_disabled(&self, tenant_id: &str, content_type: &str, held: bool) -> bool {
        self.inner.hold_subscription_disabled(tenant_id, content_type, held)
    }

    /// Disables the webhook on the tenant's subscription to `content_type`, as Microsoft does
    /// after failed notifications; `false` when it has none.
    pub fn disable_webhook(&self, tenant_id: &str, content_type: &str) -> bool {
        self.inner.disable_webhook(tenant_id, content_type)
    }

    /// Enabled subscriptions (content types) of the tenant, sorted.
    pub fn subscriptions(&self, tenant_id: &str) -> Vec<String> {
        self.inner.subscriptions(tenant_id)
    }

    /// Every login/manage request received so far, oldest first.
    pub fn request_log(&self) -> Vec<SimRequest> {
        self.inner.request_log()
    }

    /// Management API requests that arrived without a (non-empty) `PublisherIdentifier` query
    /// parameter. The real API still answers them (from a shared throttling pool); so does the sim.
    pub fn missing_publisher_identifier_count(&self) -> u64 {
        self.inner.lock().missing_publisher
    }

    /// Number of successful (200) content blob fetches.
    pub fn blob_fetch_count(&self) -> u64 {
        self.inner.lock().blob_fetches
    }

    /// Every webhook notification POST so far (each retry is one entry), oldest first.
    /// Notifications are sent in the background: poll until the expected entries are there.
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        self.inner.lock().webhook_deliveries.clone()
    }

    /// POSTs a notification with `items` now, once, to the webhook registered on the tenant's
    /// `content_type` subscription (whatever its status), with `Webhook-AuthID: auth_id` (no
    /// header for `None`): to simulate duplicated, replayed or forged notifications. Recorded in
    /// [`Self::webhook_deliveries`] with `manual: true`; never counts towards disabling the
    /// webhook. Without a registered webhook an entry with an error and no address is recorded.
    pub fn send_notification_now(&self, tenant_id: &str, content_type: &str, items: Vec<Value>, auth_id: Option<&str>) {
        let address = self
            .inner
            .lock()
            .tenants
            .get(&tenant_key(tenant_id))
            .and_then(|t| t.subscriptions.get(content_type))
            .and_then(|s| s.webhook.as_ref().map(|w| w.target().address));
        let notification = Notification {
            tenant_id: tenant_id.to_owned(),
            content_type: content_type.to_owned(),
            address: address.clone().unwrap_or_default(),
            items,
            manual: true,
        };
        match address {
            Some(address) => {
                let target = webhooks::Target { address, auth_id: auth_id.map(str::to_owned) };
                self.inner.send_notification(notification, target, None);
            }
            None => {
                let (entries, _) = notification.deliveries(vec![webhooks::Attempt::failed("no webhook registered")]);
                self.inner.lock().webhook_deliveries.extend(entries);
            }
        }
    }

    /// The notification item Microsoft would send for an existing blob (for
    /// [`Self::send_notification_now`]), or `None` when the tenant has no such blob.
    pub fn notification_item(&self, tenant_id: &str, content_id: &str) -> Option<Value> {
        let st = self.inner.lock();
        let tkey = tenant_key(tenant_id);
        let blob = st.blobs.get(&tkey)?.iter().find(|b| b.content_id == content_id)?;
        let uri = format!("{}/api/v1.0/{tenant_id}/activity/feed/audit/{}", self.inner.management_base(), blob.content_id);
        Some(webhooks::notification_item(&blob.content_type, &blob.content_id, &uri, blob.created))
    }

    /// The tenant's subscription to `content_type` as `subscriptions/list` shows it (with its
    /// `webhook`), or `None` when it was never started.
    pub fn subscription(&self, tenant_id: &str, content_type: &str) -> Option<Value> {
        let st = self.inner.lock();
        let sub = st.tenants.get(&tenant_key(tenant_id))?.subscriptions.get(content_type)?;
        Some(subscription_json(content_type, sub))
    }

    /// Makes one tenant slow or gives it a per-minute quota answered `429` + `Retry-After`
    /// once spent (see [`TenantLoad`]).
    pub fn set_tenant_load(&self, tenant_id: &str, load: TenantLoad) {
        self.inner.load.set(tenant_id, load);
    }

    /// Requests per tenant, quota refusals and the peak of requests in flight since the last
    /// call (or the start); counting starts again from zero.
    pub fn take_load_report(&self) -> LoadReport {
        self.inner.load.take_report()
    }

    /// Delays every token, Management Activity API and Graph response by `latency` (default
    /// zero), like a real round trip to Microsoft. Control endpoints answer at once.
    pub fn set_latency(&self, latency: std::time::Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.inner.latency_micros.store(micros, Ordering::Relaxed);
    }

    /// Stops the server (graceful, at most ~2 s, then aborted). Other clones become inert.
    pub async fn shutdown(self) {
        self.server.shutdown_within(std::time::Duration::from_secs(2)).await;
    }
}
