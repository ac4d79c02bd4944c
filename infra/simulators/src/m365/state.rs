//! The Microsoft 365 simulator's state: tenants (credentials, consent, subscriptions), content
//! blobs, issued tokens, listing cursors, and the background webhook notifications that adding
//! a blob triggers.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::{Method, Uri};
use chrono::{DateTime, Utc};
use serde_json::Value;
use url::Url;

use crate::kit::Kit;
use crate::webhooks::{self, Notification, Webhook, WebhookDelivery, WebhookStatus};

use super::faults::{M365Failure, M365Operation, Op};
use super::wire::truncate_ms;
use super::{DEFAULT_PAGE_SIZE, MANAGEMENT_APP_ID, SimRequest};

pub(super) struct Inner {
    pub(super) base_url: String,
    pub(super) state: Mutex<SimState>,
    /// Delay before answering token, Management API and Graph requests, in microseconds.
    pub(super) latency_micros: AtomicU64,
    /// The kit's fault plan (with Microsoft 365's own failure kinds), request log and clock.
    pub(super) kit: Kit<M365Operation, M365Failure>,
    /// Per-tenant latency and quotas, request counts and the in-flight gauge.
    pub(super) load: super::tenant_load::LoadState,
}

pub(super) struct SimState {
    /// Keyed by lower-cased tenant id.
    pub(super) tenants: HashMap<String, Tenant>,
    /// Keyed by lower-cased tenant id; independent of tenant registration.
    pub(super) blobs: HashMap<String, Vec<Blob>>,
    pub(super) tokens: HashMap<String, IssuedToken>,
    pub(super) pages: HashMap<String, PageCursor>,
    pub(super) page_size: usize,
    pub(super) blob_fetches: u64,
    pub(super) missing_publisher: u64,
    pub(super) seq: u64,
    /// Microsoft Graph security alerts (see `graph.rs`).
    pub(super) graph: crate::graph::GraphState,
    /// GDAP relationships of partner tenants.
    pub(super) partner: crate::partner::PartnerState,
    /// Entra ID sign-in logs per tenant.
    pub(super) sign_ins: crate::sign_ins::SignInState,
    /// Directory users per tenant (the mailbox count).
    pub(super) users: super::users::UserState,
    /// Licences per tenant (`subscribedSkus`, `directory/subscriptions`).
    pub(super) licences: super::licences::LicenceState,
    /// Webhook notification POSTs, oldest first.
    pub(super) webhook_deliveries: Vec<WebhookDelivery>,
    /// Content listings answered AF20023 after each successful start (default 0).
    pub(super) disabled_after_start: u32,
    /// Multi-tenant apps, administrators' consent decisions (see `consent.rs`).
    pub(super) consent: super::consent::ConsentState,
    /// Technicians' refresh tokens and customer tenants' principals and grants (see
    /// `delegated.rs`).
    pub(super) delegated: super::delegated::DelegatedState,
}

pub(super) struct Tenant {
    pub(super) client_id: String,
    pub(super) client_secret: String,
    pub(super) consented: bool,
    pub(super) activity_feed_role: bool,
    pub(super) subscriptions: BTreeMap<String, Subscription>,
}

pub(super) struct Subscription {
    pub(super) enabled: bool,
    pub(super) webhook: Option<Webhook>,
    /// Content listings still answered AF20023 after the last successful start (see
    /// [`M365SimHandle::set_disabled_after_start`]).
    pub(super) disabled_lists_left: u32,
    /// A tenant admin keeps the subscription disabled: starts answer AF20023 until released
    /// (see [`M365SimHandle::hold_subscription_disabled`]).
    pub(super) held_disabled: bool,
}

pub(super) struct Blob {
    pub(super) seq: u64,
    pub(super) content_id: String,
    pub(super) content_type: String,
    pub(super) created: DateTime<Utc>,
    pub(super) body: BlobBody,
}

pub(super) enum BlobBody {
    Records(Vec<Value>),
    Raw(String),
}

pub(super) struct IssuedToken {
    pub(super) tenant: String,
    pub(super) audience: String,
    pub(super) expires: DateTime<Utc>,
    pub(super) has_role: bool,
    /// The Graph token carries `DelegatedAdminRelationship.Read.All`.
    pub(super) partner_role: bool,
    /// The Graph token carries `DelegatedAdminRelationship.ReadWrite.All`.
    pub(super) partner_write: bool,
    /// The Graph token carries `AuditLog.Read.All`.
    pub(super) sign_in_role: bool,
    /// The Graph token carries `User.Read.All`.
    pub(super) users_role: bool,
    /// The Graph token carries `Organization.Read.All`.
    pub(super) licences_role: bool,
}

pub(super) struct PageCursor {
    pub(super) tenant: String,
    pub(super) content_type: String,
    pub(super) start: DateTime<Utc>,
    pub(super) end: DateTime<Utc>,
    pub(super) start_text: String,
    pub(super) end_text: String,
    /// `(contentCreated, seq)` of the last blob already returned.
    pub(super) after: (DateTime<Utc>, u64),
}

pub(super) fn tenant_key(tenant: &str) -> String {
    tenant.to_ascii_lowercase()
}

impl Inner {
    /// The request log as [`SimRequest`]s, oldest first.
    pub(super) fn request_log(&self) -> Vec<SimRequest> {
        let entries = self.kit.log.requests();
        entries.into_iter().map(|r| SimRequest { method: r.method, path: r.path, query: r.query }).collect()
    }

    /// Logs a login, manage or Graph request (with its query string) in the kit's request log.
    pub(super) fn log(&self, method: &Method, uri: &Uri, op: Op) {
        let log = &self.kit.log;
        log.record_with_query(method.as_str(), uri.path(), uri.query().unwrap_or_default(), self.kit.clock.now(), op.label());
    }

    /// Consumes the first armed failure that applies to a request of kind `op`.
    pub(super) fn take_failure(&self, op: Op) -> Option<M365Failure> {
        self.kit.faults.consume(op.plan_key())
    }

    pub(super) fn new(base_url: String) -> Self {
        Self {
            base_url,
            latency_micros: AtomicU64::new(0),
            kit: Kit::new(),
            load: super::tenant_load::LoadState::default(),
            state: Mutex::new(SimState {
                tenants: HashMap::new(),
                blobs: HashMap::new(),
                tokens: HashMap::new(),
                pages: HashMap::new(),
                page_size: DEFAULT_PAGE_SIZE,
                blob_fetches: 0,
                missing_publisher: 0,
                seq: 0,
                graph: crate::graph::GraphState::default(),
                partner: crate::partner::PartnerState::default(),
                sign_ins: crate::sign_ins::SignInState::default(),
                users: super::users::UserState::default(),
                licences: super::licences::LicenceState::default(),
                webhook_deliveries: Vec::new(),
                disabled_after_start: 0,
                consent: super::consent::ConsentState::default(),
                delegated: super::delegated::DelegatedState::default(),
            }),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits the simulated network/service latency. Called before any lock is taken.
    pub(super) async fn delay(&self) {
        let micros = self.latency_micros.load(Ordering::Relaxed);
        if micros > 0 {
            tokio::time::sleep(std::time::Duration::from_micros(micros)).await;
        }
    }

    pub(super) fn login_base(&self) -> String {
        format!("{}/login", self.base_url)
    }

    pub(super) fn management_base(&self) -> String {
        format!("{}/manage", self.base_url)
    }

    pub(super) fn port(&self) -> Option<u16> {
        Url::parse(&self.base_url).ok()?.port()
    }

    pub(super) fn add_tenant(&self, tenant_id: &str, client_id: &str, client_secret: &str) {
        let mut st = self.lock();
        let entry = st.tenants.entry(tenant_key(tenant_id)).or_insert_with(|| Tenant {
            client_id: String::new(),
            client_secret: String::new(),
            consented: true,
            activity_feed_role: true,
            subscriptions: BTreeMap::new(),
        });
        entry.client_id = client_id.to_owned();
        entry.client_secret = client_secret.to_owned();
        entry.consented = true;
        entry.activity_feed_role = true;
    }

    pub(super) fn set_consent(&self, tenant_id: &str, granted: bool) {
        if let Some(t) = self.lock().tenants.get_mut(&tenant_key(tenant_id)) {
            t.consented = granted;
        }
    }

    pub(super) fn fail_next(&self, op: M365Operation, failure: M365Failure, times: u32) {
        self.kit.faults.arm(op, failure, times);
    }

    /// Keeps (or releases) a tenant's subscription disabled; `false` when the tenant is unknown.
    pub(super) fn hold_subscription_disabled(&self, tenant_id: &str, content_type: &str, held: bool) -> bool {
        let mut st = self.lock();
        let Some(tenant) = st.tenants.get_mut(&tenant_key(tenant_id)) else { return false };
        let sub = tenant.subscriptions.entry(content_type.to_owned()).or_insert(Subscription {
            enabled: false,
            webhook: None,
            disabled_lists_left: 0,
            held_disabled: false,
        });
        sub.held_disabled = held;
        if held {
            sub.enabled = false;
        }
        true
    }

    /// Disables the webhook on a tenant's subscription, as Microsoft does after failed
    /// notifications; `false` when there is none.
    pub(super) fn disable_webhook(&self, tenant_id: &str, content_type: &str) -> bool {
        let mut st = self.lock();
        let hook =
            st.tenants.get_mut(&tenant_key(tenant_id)).and_then(|t| t.subscriptions.get_mut(content_type)).and_then(|s| s.webhook.as_mut());
        match hook {
            Some(hook) => {
                hook.disable();
                true
            }
            None => false,
        }
    }

    pub(super) fn subscriptions(&self, tenant_id: &str) -> Vec<String> {
        self.lock()
            .tenants
            .get(&tenant_key(tenant_id))
            .map(|t| t.subscriptions.iter().filter(|(_, s)| s.enabled).map(|(ct, _)| ct.clone()).collect())
            .unwrap_or_default()
    }

    /// Adds a blob and, if the subscription has an enabled webhook, notifies it in the background.
    pub(super) fn add_blob(self: &Arc<Self>, tenant_id: &str, content_type: &str, created: DateTime<Utc>, body: BlobBody) -> String {
        let created = truncate_ms(created);
        let mut st = self.lock();
        st.seq += 1;
        let seq = st.seq;
        let stamp = created.format("%Y%m%d%H%M%S%3f").to_string();
        let content_id = format!("{stamp}${stamp}${}${seq:06}", content_type.to_ascii_lowercase().replace('.', "_"));
        st.blobs.entry(tenant_key(tenant_id)).or_default().push(Blob {
            seq,
            content_id: content_id.clone(),
            content_type: content_type.to_owned(),
            created,
            body,
        });
        let hook = st.tenants.get(&tenant_key(tenant_id)).and_then(|t| {
            let sub = t.subscriptions.get(content_type).filter(|s| s.enabled)?;
            let hook = sub.webhook.as_ref().filter(|w| w.status(Utc::now()) == WebhookStatus::Enabled)?;
            Some((hook.id, hook.target()))
        });
        drop(st);
        if let Some((hook_id, target)) = hook {
            let uri = format!("{}/api/v1.0/{tenant_id}/activity/feed/audit/{content_id}", self.management_base());
            let item = webhooks::notification_item(content_type, &content_id, &uri, created);
            let notification = Notification {
                tenant_id: tenant_id.to_owned(),
                content_type: content_type.to_owned(),
                address: target.address.clone(),
                items: vec![item],
                manual: false,
            };
            self.send_notification(notification, target, Some(hook_id));
        }
        content_id
    }

    /// Sends `notification` in the background and records the outcome; `hook_id` (a service
    /// notification) gets retries and counts towards disabling that webhook registration.
    pub(super) fn send_notification(self: &Arc<Self>, notification: Notification, target: webhooks::Target, hook_id: Option<u64>) {
        let sim = Arc::clone(self);
        let tries = if hook_id.is_some() { webhooks::ATTEMPTS_PER_NOTIFICATION } else { 1 };
        let items = notification.items.clone();
        webhooks::spawn_notification(target, items, tries, move |attempts| {
            let (entries, delivered) = notification.deliveries(attempts);
            let mut st = sim.lock();
            st.webhook_deliveries.extend(entries);
            let hook = st
                .tenants
                .get_mut(&tenant_key(&notification.tenant_id))
                .and_then(|t| t.subscriptions.get_mut(&notification.content_type))
                .and_then(|s| s.webhook.as_mut())
                .filter(|w| hook_id == Some(w.id));
            if let Some(hook) = hook {
                hook.record_notification(delivered);
            }
        });
    }

    /// Whether a token audience designates the Management Activity API.
    pub(super) fn is_management_audience(&self, audience: &str) -> bool {
        let aud = audience.trim_end_matches('/');
        if aud.eq_ignore_ascii_case(MANAGEMENT_APP_ID) {
            return true;
        }
        let Ok(url) = Url::parse(aud) else {
            return false;
        };
        match url.scheme() {
            // manage.office.com, manage-gcc.office.com, manage.office365.us,
            // manage.protection.apps.mil, manage.office365.cn
            "https" => url.host_str().is_some_and(|h| h.starts_with("manage")),
            // The simulator itself, under any host name that reaches its port.
            "http" => url.port().is_some() && url.port() == self.port() && url.path() == "/manage",
            _ => false,
        }
    }

    /// Whether `resource` is acceptable at the token endpoint: any `https://` resource (the sim
    /// issues the token; a non-management audience is then rejected by the API with 401, like the
    /// real service), the sim's own manage or graph root, or the Management APIs app id.
    pub(super) fn is_acceptable_resource(&self, resource: &str) -> bool {
        if resource.is_empty() {
            return false;
        }
        if self.is_management_audience(resource) || crate::graph::is_graph_audience(resource, self.port()) {
            return true;
        }
        Url::parse(resource).ok().is_some_and(|u| u.scheme() == "https" && u.host_str().is_some())
    }
}
