//! Confirmed removals of admin relationships ([`crate::relationships::removal`]), carried out
//! one job per relationship: the terminate request is made once (a request an interrupted
//! attempt made is found in Graph's list of requests before asking again), then the
//! relationship is followed, the job putting itself back on the queue with a delay while Graph
//! is still terminating it. Once it is terminated its findings clear, which resolves their
//! alerts and closes their tickets, and the customer's contact is told by e-mail when the MSP
//! asked for it (once). A removal left unfinished (its job lost or never queued) is
//! queued again by the tick.

use super::{PollError, PollReport, PollService, to_json};
use crate::error::{Classified, ErrorClass};
use crate::ids::MspId;
use crate::messages::PollJob;
use crate::relationships::RelationshipStatus;
use crate::relationships::findings::Transition;
use crate::relationships::removal::{Removal, RemovalNotification, RemovalNotificationStatus, RemovalStatus, RequestStatus, removal_mail};
use chrono::{DateTime, Duration, Utc};
use tracing::{info, warn};

/// A removal unfinished this long after it was confirmed is queued again by the tick.
pub const RESUME_REMOVALS_AFTER_MINUTES: i64 = 15;
/// How long a removal job waits, by default, before looking again at a relationship Graph is
/// terminating ([`super::PollSettings::removal_follow_up`]).
pub const FOLLOW_UP_DELAY: std::time::Duration = std::time::Duration::from_secs(30);

impl PollService {
    /// Jobs for the MSP's removals unfinished [`RESUME_REMOVALS_AFTER_MINUTES`] after their
    /// confirmation.
    pub(super) async fn removals_to_resume(&self, msp_id: &MspId, now: DateTime<Utc>) -> Result<Vec<PollJob>, PollError> {
        Ok(self
            .relationships
            .removals(msp_id)
            .await?
            .into_iter()
            .filter(|r| !r.finished() && now - r.requested_at >= Duration::minutes(RESUME_REMOVALS_AFTER_MINUTES))
            .map(|r| PollJob::RemoveRelationship { msp_id: msp_id.clone(), relationship_id: r.relationship_id })
            .collect())
    }

    /// Carries a confirmed removal one step further: the terminate request (once), then the
    /// relationship's status until it is terminated.
    ///
    /// # Errors
    /// Transient Graph, store and queue failures, for the queue to retry (every step is safe to
    /// repeat).
    pub async fn remove_relationship(&self, msp_id: &MspId, relationship_id: &str) -> Result<PollReport, PollError> {
        let Some(mut removal) = self.relationships.removal(msp_id, relationship_id).await? else { return Ok(PollReport::default()) };
        if removal.finished() {
            return Ok(PollReport::default());
        }
        let partner = self.config.get_msp(msp_id).await?.and_then(|msp| msp.partner_tenant_id);
        let credentials = match &partner {
            Some(_) => self.partner_credentials(msp_id).await?,
            None => None,
        };
        let (Some(partner), Some(credentials)) = (partner, credentials) else {
            return self.fail_removal(removal, "the partner tenant is not connected, or its credentials are gone".into()).await;
        };
        let source = &self.relationship_source;
        if removal.request_id.is_none() {
            let made = source.requests(&partner, &credentials, relationship_id).await?;
            let earlier = made.into_iter().find(|r| r.action.eq_ignore_ascii_case("terminate") && r.status != RequestStatus::Failed);
            let request = match earlier {
                Some(request) => request,
                None => match source.request_termination(&partner, &credentials, relationship_id).await {
                    Ok(request) => request,
                    Err(error) if error.class() == ErrorClass::Transient => return Err(error.into()),
                    Err(error) => return self.fail_removal(removal, error.to_string()).await,
                },
            };
            info!(message = "Graph accepted the termination of an admin relationship.", msp_id = %msp_id, relationship_id, request_id = %request.id);
            removal.request_id = Some(request.id);
            removal.status = RemovalStatus::Terminating;
            self.relationships.put_removal(&removal).await?;
        }
        let status = source.relationship_status(&partner, &credentials, relationship_id).await?;
        if matches!(status, Some(RelationshipStatus::Terminated) | None) {
            return self.finish_removal(removal).await;
        }
        if !matches!(status, Some(RelationshipStatus::TerminationRequested | RelationshipStatus::Terminating)) {
            let requests = source.requests(&partner, &credentials, relationship_id).await?;
            let failed = requests.iter().any(|r| Some(&r.id) == removal.request_id.as_ref() && r.status == RequestStatus::Failed);
            if failed {
                return self.fail_removal(removal, format!("Graph's terminate request failed; the relationship is still {status:?}")).await;
            }
        }
        let job = PollJob::RemoveRelationship { msp_id: msp_id.clone(), relationship_id: relationship_id.to_owned() };
        self.jobs.send_delayed(&[to_json(&job)], self.settings.removal_follow_up).await?;
        Ok(PollReport::default())
    }

    async fn fail_removal(&self, mut removal: Removal, error: String) -> Result<PollReport, PollError> {
        warn!(message = "An admin-relationship removal failed.", msp_id = %removal.msp_id, relationship_id = %removal.relationship_id, %error);
        removal.status = RemovalStatus::Failed;
        removal.error = Some(error);
        removal.completed_at = Some(self.clock.now());
        self.relationships.put_removal(&removal).await?;
        Ok(PollReport::default())
    }

    /// The relationship is terminated: its findings clear (their alerts resolve), the stored
    /// relationship says so, and the removal is done. Each step is safe to repeat.
    async fn finish_removal(&self, mut removal: Removal) -> Result<PollReport, PollError> {
        let msp_id = removal.msp_id.clone();
        let now = self.clock.now();
        let stored = self.relationships.relationships(&msp_id).await?.into_iter().find(|r| r.id == removal.relationship_id);
        if let Some(mut relationship) = stored {
            relationship.status = RelationshipStatus::Terminated;
            let raised = self.relationships.findings(&msp_id).await?.remove(&relationship.id).unwrap_or_default();
            let cleared: Vec<Transition<'_>> =
                raised.iter().map(|r| Transition { relationship: &relationship, kind: r.kind, since: r.since, raised: false }).collect();
            let activities = self.relationships.activity_by_customer(&msp_id).await?;
            self.send_findings(&msp_id, &cleared, &activities, now).await?;
            self.relationships.put_findings(&msp_id, &relationship.id, &[]).await?;
            self.relationships.put_relationship(&msp_id, &relationship).await?;
        }
        removal.completed_at = Some(now);
        self.notify_customer(&mut removal).await?;
        removal.status = RemovalStatus::Terminated;
        self.relationships.put_removal(&removal).await?;
        info!(message = "Admin relationship removed.", msp_id = %msp_id, relationship_id = %removal.relationship_id, requested_by = %removal.requested_by);
        Ok(PollReport::default())
    }

    /// Tells the customer's contact, once: the intent is recorded before sending and the
    /// outcome after. An attempt found interrupted between the two is not repeated (it may have
    /// gone out); a transient failure (nothing sent) is retried with the job.
    async fn notify_customer(&self, removal: &mut Removal) -> Result<(), PollError> {
        let Some(to) = removal.notify.clone() else { return Ok(()) };
        let now = self.clock.now();
        let decided = |status, message_id, error| Some(RemovalNotification { status, at: now, message_id, error });
        match removal.notification.as_ref().map(|n| n.status) {
            Some(RemovalNotificationStatus::Sent | RemovalNotificationStatus::Failed | RemovalNotificationStatus::Unknown) => return Ok(()),
            Some(RemovalNotificationStatus::Sending) => {
                warn!(message = "A removal notification was interrupted while sending; it is not sent again.", relationship_id = %removal.relationship_id);
                removal.notification = decided(RemovalNotificationStatus::Unknown, None, None);
                self.relationships.put_removal(removal).await?;
                return Ok(());
            }
            None => {}
        }
        removal.notification = decided(RemovalNotificationStatus::Sending, None, None);
        self.relationships.put_removal(removal).await?;
        let msp_name = self.config.get_msp(&removal.msp_id).await?.map_or_else(|| removal.msp_id.to_string(), |msp| msp.name);
        match self.mail.send(&removal_mail(removal, &msp_name, &to)).await {
            Ok(message_id) => removal.notification = decided(RemovalNotificationStatus::Sent, Some(message_id), None),
            Err(error) if error.class() == ErrorClass::Transient => {
                removal.notification = None;
                self.relationships.put_removal(removal).await?;
                return Err(PollError::Mail(error));
            }
            Err(error) => {
                warn!(message = "The removal notification was refused.", relationship_id = %removal.relationship_id, %error);
                removal.notification = decided(RemovalNotificationStatus::Failed, None, Some(error.to_string()));
            }
        }
        self.relationships.put_removal(removal).await?;
        Ok(())
    }
}
