//! Self-monitoring in the dispatcher: a destination that refuses Vigil's credentials
//! ([`crate::selfmon::Condition::DestinationCredentials`]).
//!
//! A delivery (ticket create, note, close, find, state read, or a channel post) that the
//! destination answers 401/403 ([`SinkError::Unauthorized`]) opens the destination's episode,
//! unless one is open, and announces it with one event of Vigil's own; every later refusal finds
//! the episode open and sends nothing, so a broken PSA raises one alert however many tickets
//! fail. The next delivery that reaches the destination closes the episode and announces the
//! clear, which resolves the alert (closing its tickets where they could be filed).
//!
//! **Exactly once.** The episode is stored before its event is sent and marked raised after,
//! both conditional on the episode's start (its first refusal), which the events carry: a
//! retry after a crash at any point sends the very same event (the evaluator counts a record
//! once), and an episode a success closed before it was marked raised gets its clear at once.
//! A delivery refused while its event cannot be sent fails transiently, so it is retried until
//! the event is out; a clear that cannot be recorded is logged and tried again at the next
//! successful delivery (the delivery itself is done).
//!
//! **Where the alert goes.** It is about the MSP, not a customer: its events carry
//! [`crate::selfmon::MSP_ITSELF`] as tenant, named after the MSP. Like every self-monitoring
//! alert it goes to the MSP's own company where a destination names one and to every
//! destination whose routing takes it — so to the MSP's other destinations (e-mail, chat, a
//! second PSA) when the refusing one is broken; its delivery to the refusing destination fails
//! like the others (without raising again). When that destination is the MSP's only one, the
//! alert is still listed in `GET /v1/alerts` (policy `builtin.selfmon-destination-credentials`)
//! and the console overview.

use super::{DispatchError, DispatchOutcome, DispatchService, TicketsMessage};
use crate::error::SinkError;
use crate::ids::{AuditStream, ContentType, DestinationId, MspId};
use crate::messages::{AlertChangedMessage, AuditEventsMessage, SELF_MONITORING_EVENTS, TicketChangedMessage};
use crate::ports::{CredentialsEpisodeStore, MessageQueue};
use crate::selfmon::{CREDENTIALS_ERROR_CHARS, Condition, CredentialsEpisode, MSP_ITSELF, Subject, Transition, event, msp_itself};
use serde_json::json;
use std::sync::Arc;
use tracing::{info, warn};

/// How long a clear waits in the events queue behind the raise it ends.
pub const CLEAR_DELAY: std::time::Duration = std::time::Duration::from_secs(15);

/// What the dispatcher needs to watch its destinations' credentials.
pub struct CredentialsWatch {
    /// The open episodes.
    pub episodes: Arc<dyn CredentialsEpisodeStore>,
    /// The evaluator's queue, where the events go.
    pub events: Arc<dyn MessageQueue>,
}

impl DispatchOutcome {
    /// Whether the outcome came from an answer of the destination (so its credentials work).
    #[must_use]
    pub fn reached_destination(&self) -> bool {
        match self {
            Self::TicketCreated(_)
            | Self::TicketRecovered(_)
            | Self::TicketReplaced { .. }
            | Self::NoteAdded(_)
            | Self::TicketClosed(_)
            | Self::TicketGone(_)
            | Self::MessagePosted(_) => true,
            Self::StatesRead(report) => report.checked > 0 && report.failed_destinations == 0,
            _ => false,
        }
    }
}

/// The MSP and destination a tickets-queue message is about, if one.
fn addressed(body: &str) -> Option<(MspId, DestinationId)> {
    match serde_json::from_str::<TicketsMessage>(body).ok()? {
        TicketsMessage::Alert(AlertChangedMessage { msp_id, destination: Some(destination), .. })
        | TicketsMessage::Ticket(TicketChangedMessage { msp_id, destination, .. }) => Some((msp_id, destination)),
        _ => None,
    }
}

impl DispatchService {
    /// Looks at what handling `body` came to: a refusal of Vigil's credentials opens (and
    /// announces) the destination's episode, an answer closes it. Returns `result`, or the
    /// transient failure to announce a refusal (so the message is retried until it is out).
    pub(super) async fn watch_credentials(
        &self,
        body: &str,
        result: Result<DispatchOutcome, DispatchError>,
    ) -> Result<DispatchOutcome, DispatchError> {
        let Some(watch) = &self.credentials else { return result };
        let refused = match &result {
            Err(DispatchError::Sink(SinkError::Unauthorized(answer))) => Some(answer.clone()),
            Ok(outcome) if outcome.reached_destination() => None,
            _ => return result,
        };
        let Some((msp_id, destination)) = addressed(body) else { return result };
        match refused {
            Some(answer) => {
                self.credentials_refused(watch, &msp_id, &destination, &answer).await?;
                result
            }
            None => {
                if let Err(error) = self.credentials_accepted(watch, &msp_id, &destination).await {
                    warn!(message = "Could not record that a destination accepts Vigil's credentials again; tried at its next delivery.", %destination, %error);
                }
                result
            }
        }
    }

    async fn credentials_refused(
        &self,
        watch: &CredentialsWatch,
        msp_id: &MspId,
        destination: &DestinationId,
        answer: &str,
    ) -> Result<(), DispatchError> {
        let first = CredentialsEpisode {
            destination: destination.clone(),
            since: self.clock.now(),
            raised: false,
            error: answer.chars().take(CREDENTIALS_ERROR_CHARS).collect(),
        };
        let open = watch.episodes.open_credentials_episode(msp_id, &first).await?;
        if open.raised {
            return Ok(());
        }
        self.announce(watch, msp_id, &open, Transition::Raised { since: open.since }).await?;
        if !watch.episodes.mark_credentials_raised(msp_id, destination, open.since).await? {
            // A success closed the episode between its opening and this mark: its clear was
            // never sent (it was not raised yet), so it is sent now.
            self.announce(watch, msp_id, &open, Transition::Cleared { since: open.since }).await?;
        }
        Ok(())
    }

    async fn credentials_accepted(
        &self,
        watch: &CredentialsWatch,
        msp_id: &MspId,
        destination: &DestinationId,
    ) -> Result<(), DispatchError> {
        let Some(open) = watch.episodes.credentials_episode(msp_id, destination).await? else { return Ok(()) };
        if open.raised {
            self.announce(watch, msp_id, &open, Transition::Cleared { since: open.since }).await?;
        }
        watch.episodes.close_credentials_episode(msp_id, destination, open.since).await?;
        Ok(())
    }

    /// Sends the event of one transition of the episode to the evaluator.
    async fn announce(
        &self,
        watch: &CredentialsWatch,
        msp_id: &MspId,
        episode: &CredentialsEpisode,
        transition: Transition,
    ) -> Result<(), DispatchError> {
        let msp_name = self.config.get_msp(msp_id).await?.map_or_else(|| msp_id.to_string(), |msp| msp.name);
        let stored = self.destinations.get_destination(msp_id, &episode.destination).await?;
        let name = stored.as_ref().map_or_else(|| episode.destination.to_string(), |d| d.name.clone());
        let kind = stored.as_ref().map(|d| d.kind().as_str());
        let message = if transition.raised() {
            format!(
                "{name} refused Vigil's credentials ({}): no ticket, note or close reaches it, and those deliveries go to the dead-letter queue. Set the destination's credentials again (PUT /v1/destinations/{}) and redrive the dead-letter queue.",
                episode.error, episode.destination
            )
        } else {
            format!("{name} accepts Vigil's credentials again.")
        };
        let subject = Subject {
            tenant_id: MSP_ITSELF,
            tenant_name: &msp_name,
            condition: Condition::DestinationCredentials,
            key: episode.destination.as_str(),
        };
        let details = json!({ "DestinationName": name, "DestinationKind": kind, "Error": episode.error });
        let record = event(&subject, transition, &message, details, self.clock.now());
        let body = AuditEventsMessage {
            msp_id: msp_id.clone(),
            tenant_id: msp_itself(),
            stream: AuditStream::Content(ContentType::General),
            content_id: SELF_MONITORING_EVENTS.to_owned(),
            records: vec![record],
        };
        let body = serde_json::to_string(&body).map_err(|e| DispatchError::MalformedMessage(e.to_string()))?;
        if transition.raised() {
            watch.events.send_all(&[body]).await?;
        } else {
            // The events queue keeps no order: the clear waits a little, so that a raise sent
            // moments before is evaluated first (a clear evaluated before its raise would leave
            // the alert open).
            watch.events.send_delayed(&[body], CLEAR_DELAY).await?;
        }
        if transition.raised() {
            warn!(message = "A destination refuses Vigil's credentials; raised.", destination = %episode.destination, since = %episode.since);
        } else {
            info!(message = "A destination accepts Vigil's credentials again; cleared.", destination = %episode.destination, since = %episode.since);
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "credentials_tests.rs"]
mod tests;
