//! Evaluating audit records: an events message (records of one blob of one tenant) is run
//! through the tenant's policies; hits are grouped by alert and added to each alert exactly
//! once per record; every touched alert is announced on the tickets queue.
//!
//! Re-announcing an alert that did not change is deliberate: if a previous attempt stored the
//! hits and crashed before announcing, the retry must still announce. The dispatcher is
//! idempotent, so extra announcements cost a read, never a ticket.

use crate::alert::{Alert, AlertHits};
use crate::audit::{AuditRecord, RecordError};
use crate::clock::Clock;
use crate::error::{Classified, ErrorClass, QueueError, StoreError};
use crate::ids::AlertId;
use crate::ids::AuditStream;
use crate::messages::{AlertChangedMessage, AuditEventsMessage};
use crate::policy::{PolicyEngine, TenantScope, graph_alert_hit};
use crate::ports::{AlertStore, ConfigStore, MessageQueue};
use std::collections::BTreeMap;
use std::sync::Arc;
use tracing::info;

/// Why an events message could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error("events message is malformed: {0}")]
    MalformedMessage(String),
    #[error("events message holds an unusable record: {0}")]
    MalformedRecord(#[from] RecordError),
    #[error("tenant {tenant_id} of MSP {msp_id} is not registered")]
    UnknownTenant { msp_id: String, tenant_id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl Classified for EvaluateError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::MalformedMessage(_) | Self::MalformedRecord(_) => ErrorClass::Invalid,
            Self::UnknownTenant { .. } => ErrorClass::Permanent,
            Self::Store(e) => e.class(),
            Self::Queue(e) => e.class(),
        }
    }
}

/// What one message produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvaluationReport {
    pub records: usize,
    pub hits: usize,
    pub alerts: Vec<AlertId>,
}

/// The evaluation use case.
pub struct EvaluateService {
    pub config: Arc<dyn ConfigStore>,
    pub alerts: Arc<dyn AlertStore>,
    /// Where changed alerts are announced for ticketing.
    pub tickets: Arc<dyn MessageQueue>,
    pub engine: PolicyEngine,
    pub clock: Arc<dyn Clock>,
}

impl EvaluateService {
    /// Evaluates one events-queue message body.
    ///
    /// # Errors
    /// Invalid for a malformed message, permanent for an unknown tenant, transient when a
    /// store or queue fails (the whole message is then retried; repeating it is harmless).
    pub async fn handle(&self, body: &str) -> Result<EvaluationReport, EvaluateError> {
        let message: AuditEventsMessage = serde_json::from_str(body).map_err(|e| EvaluateError::MalformedMessage(e.to_string()))?;
        let tenant = self
            .config
            .get_tenant(&message.msp_id, &message.tenant_id)
            .await?
            .ok_or_else(|| EvaluateError::UnknownTenant { msp_id: message.msp_id.to_string(), tenant_id: message.tenant_id.to_string() })?;
        let scope = TenantScope { msp_id: &tenant.msp_id, tenant_id: &tenant.tenant_id, tenant_name: &tenant.name };
        let now = self.clock.now();
        let mut grouped: BTreeMap<AlertId, AlertHits> = BTreeMap::new();
        let mut resolutions: Vec<(AlertId, chrono::DateTime<chrono::Utc>)> = Vec::new();
        let mut report = EvaluationReport { records: message.records.len(), ..EvaluationReport::default() };
        let graph = message.stream == AuditStream::GraphAlerts;
        for value in message.records {
            let hits = if graph {
                graph_alert_hit(&scope, &value, now).into_iter().collect()
            } else {
                let record = AuditRecord::from_value(value)?;
                self.engine.evaluate(&scope, &record, now)
            };
            for hit in hits {
                if hit.resolves {
                    resolutions.push((hit.alert.id.clone(), hit.event_time));
                    continue;
                }
                report.hits += 1;
                grouped
                    .entry(hit.alert.id.clone())
                    .or_insert_with(|| AlertHits { alert: hit.alert.clone(), records: Vec::new() })
                    .records
                    .push((hit.record_id, hit.event_time));
            }
        }
        let mut changed: Vec<Alert> = Vec::with_capacity(grouped.len());
        for hits in grouped.values() {
            changed.push(self.alerts.record_hits(hits, now).await?);
        }
        for (alert_id, _) in &resolutions {
            if let Some(alert) = self.alerts.resolve_alert(&tenant.msp_id, alert_id, now).await? {
                info!(message = "Alert resolved: its condition cleared.", alert_id = %alert.id);
                changed.push(alert);
            }
        }
        let announcements: Vec<String> = changed
            .iter()
            .map(|alert| {
                serde_json::to_string(&AlertChangedMessage { msp_id: alert.msp_id.clone(), alert_id: alert.id.clone() })
                    .unwrap_or_else(|_| unreachable!("messages always serialise"))
            })
            .collect();
        self.tickets.send_all(&announcements).await?;
        for alert in &changed {
            info!(message = "Alert updated.", alert_id = %alert.id, policy_id = %alert.policy_id, hit_count = alert.hit_count);
        }
        report.alerts = changed.into_iter().map(|a| a.id).collect();
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::ids::{MspId, TenantId};
    use crate::memory::*;
    use serde_json::{Value, json};

    async fn service() -> (EvaluateService, Arc<MemoryAlertStore>, Arc<MemoryQueue>) {
        let config = Arc::new(MemoryConfigStore::default());
        config
            .create_tenant(&crate::contract::sample_tenant(
                &MspId::parse("acme").unwrap(),
                &TenantId::parse("5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11").unwrap(),
            ))
            .await
            .unwrap();
        let alerts = Arc::new(MemoryAlertStore::default());
        let tickets = Arc::new(MemoryQueue::default());
        let service = EvaluateService {
            config,
            alerts: alerts.clone(),
            tickets: tickets.clone(),
            engine: PolicyEngine::with_builtins(),
            clock: Arc::new(SystemClock),
        };
        (service, alerts, tickets)
    }

    fn forwarding(id: &str, minute: u32) -> Value {
        json!({"Id": id, "RecordType": 1, "CreationTime": format!("2026-01-05T09:{minute:02}:00"), "Operation": "New-InboxRule",
               "UserId": "alice@contoso.com", "Workload": "Exchange", "ResultStatus": "True",
               "Parameters": [{"Name": "ForwardTo", "Value": "x@evil.example"}]})
    }

    fn message(records: Vec<Value>) -> String {
        json!({"msp_id": "acme", "tenant_id": "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11", "stream": "Audit.Exchange", "content_id": "c1", "records": records}).to_string()
    }

    #[tokio::test]
    async fn matches_in_one_window_become_one_alert_with_their_hit_count() {
        let (service, alerts, tickets) = service().await;
        let report = service.handle(&message(vec![forwarding("a", 31), forwarding("b", 40), forwarding("c", 44)])).await.unwrap();
        assert_eq!((report.hits, report.alerts.len()), (3, 1));
        let alert = alerts.get_alert(&MspId::parse("acme").unwrap(), &report.alerts[0]).await.unwrap().unwrap();
        assert_eq!(alert.hit_count, 3);
        assert_eq!(tickets.drain().len(), 1);
    }

    #[tokio::test]
    async fn a_redelivered_message_counts_nothing_twice_but_announces_again() {
        let (service, alerts, tickets) = service().await;
        let body = message(vec![forwarding("a", 31), forwarding("b", 32)]);
        let first = service.handle(&body).await.unwrap();
        service.handle(&body).await.unwrap();
        let alert = alerts.get_alert(&MspId::parse("acme").unwrap(), &first.alerts[0]).await.unwrap().unwrap();
        assert_eq!(alert.hit_count, 2);
        assert_eq!(tickets.drain().len(), 2);
    }

    #[tokio::test]
    async fn records_that_match_nothing_raise_nothing() {
        let (service, _, tickets) = service().await;
        let mut harmless = forwarding("a", 31);
        harmless["Parameters"] = json!([{"Name": "MoveToFolder", "Value": "Archive"}]);
        let report = service.handle(&message(vec![harmless])).await.unwrap();
        assert_eq!(report.hits, 0);
        assert!(tickets.drain().is_empty());
    }

    fn connection(operation: &str, id: &str) -> Value {
        json!({"Id": id, "RecordType": 0, "CreationTime": "2026-01-05T09:31:00", "Operation": operation, "UserId": "Vigil", "Workload": "Vigil",
               "OrganizationId": "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11", "OrganizationName": "Contoso", "Stream": "Audit.Exchange",
               "ObservedAt": "2026-01-05T09:31:07+00:00", "ErrorMessage": "access to the tenant was refused: AADSTS700016: unauthorized_client"})
    }

    #[tokio::test]
    async fn a_connection_problem_becomes_an_alert_that_the_restore_event_resolves() {
        let (service, alerts, tickets) = service().await;
        let raised = service.handle(&message(vec![connection("Vigil.ConnectionProblem", "c-1")])).await.unwrap();
        let acme = MspId::parse("acme").unwrap();
        let alert = alerts.get_alert(&acme, &raised.alerts[0]).await.unwrap().unwrap();
        assert_eq!(alert.policy_name, "Tenant connection problem");
        assert!(alert.facts.iter().any(|f| f.value.contains("AADSTS700016")));
        assert!(alert.facts.iter().any(|f| f.name == "Time (UTC)" && f.value == "2026-01-05 09:31:07"));
        service.handle(&message(vec![connection("Vigil.ConnectionRestored", "c-2")])).await.unwrap();
        let alert = alerts.get_alert(&acme, &raised.alerts[0]).await.unwrap().unwrap();
        assert_eq!(alert.status, crate::alert::AlertStatus::Resolved);
        assert_eq!(alert.hit_count, 1, "the restore event is not a hit");
        assert_eq!(tickets.drain().len(), 2, "raising and resolving are both announced");
    }

    #[tokio::test]
    async fn microsoft_records_cannot_pose_as_vigil_connection_events() {
        let (service, _, _) = service().await;
        let mut forged = connection("Vigil.ConnectionProblem", "c-1");
        forged["RecordType"] = json!(1);
        assert_eq!(service.handle(&message(vec![forged])).await.unwrap().hits, 0);
    }

    #[tokio::test]
    async fn graph_alert_updates_join_one_alert_with_microsofts_title_and_severity() {
        let (service, alerts, _) = service().await;
        let alert = |updated: &str| {
            json!({"id": "da637551227677560813_-961444813", "title": "Suspicious email forwarding activity", "severity": "high",
            "createdDateTime": "2026-01-05T09:30:10Z", "lastUpdateDateTime": updated, "status": "new", "serviceSource": "microsoftDefenderForOffice365"})
        };
        let body = |updated: &str| message(vec![alert(updated)]).replace("\"stream\":\"Audit.Exchange\"", "\"stream\":\"Graph.AlertsV2\"");
        let first = service.handle(&body("2026-01-05T09:30:10Z")).await.unwrap();
        service.handle(&body("2026-01-05T09:50:00Z")).await.unwrap();
        service.handle(&body("2026-01-05T09:50:00Z")).await.unwrap();
        let stored = alerts.get_alert(&MspId::parse("acme").unwrap(), &first.alerts[0]).await.unwrap().unwrap();
        assert_eq!((stored.hit_count, stored.severity), (2, crate::alert::Severity::High));
        assert_eq!(stored.title, "Suspicious email forwarding activity");
    }

    #[tokio::test]
    async fn malformed_messages_are_invalid_and_unknown_tenants_permanent() {
        let (service, _, _) = service().await;
        assert_eq!(service.handle("not json").await.unwrap_err().class(), ErrorClass::Invalid);
        let unknown = message(vec![]).replace("5e1f2c8a", "6e1f2c8a");
        assert_eq!(service.handle(&unknown).await.unwrap_err().class(), ErrorClass::Permanent);
    }
}
