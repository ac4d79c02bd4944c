//! The contract every [`TicketSystem`] (PSA connector) must honour, run against each
//! connector with its simulator (and against the in-memory PSA): create → find after a lost
//! response → note, idempotent by marker → close → state read in a batch → a technician's close
//! → gone → throttled.
//!
//! A [`PsaHarness`] gives the suite a connector and the simulator's hands: what a technician
//! does in the PSA and the failures a real PSA has.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use crate::alert::{Severity, TriageChange};
use crate::contract::sample_alert;
use crate::error::SinkError;
use crate::ports::{NewTicket, TicketSystem};
use crate::render::render_ticket;
use crate::ticket::{TicketNote, TicketRef, TicketState};
use async_trait::async_trait;
use chrono::Utc;
use std::sync::Arc;

/// A connector and its simulator, for [`ticket_system_contract`].
#[async_trait]
pub trait PsaHarness: Send + Sync {
    /// The connector under test.
    fn system(&self) -> Arc<dyn TicketSystem>;
    /// A company that exists in the PSA, as a destination's company link names it.
    fn company(&self) -> String;
    /// A board or queue that exists (`None`: the PSA's default).
    fn place(&self) -> Option<String>;
    /// The next ticket create commits, then its response is lost (a 5xx after commit).
    async fn lose_next_create_response(&self);
    /// The next request is throttled with a `Retry-After`.
    async fn throttle_next(&self);
    /// A technician closes (completes) the ticket as `by`.
    async fn close_as_technician(&self, ticket: &TicketRef, by: &str);
    /// A technician deletes (or merges away) the ticket.
    async fn delete(&self, ticket: &TicketRef);
    /// How many tickets the PSA holds.
    async fn ticket_count(&self) -> usize;
    /// The texts of the ticket's notes, as the PSA stores them.
    async fn notes(&self, ticket: &TicketRef) -> Vec<String>;
}

fn new_ticket(harness: &dyn PsaHarness, reference: &str) -> NewTicket {
    let mut alert = sample_alert(Utc::now());
    alert.severity = Severity::High;
    alert.policy_name = format!("Contract {reference} {}", "with a long policy name ".repeat(12));
    alert.triage.history.push(TriageChange { author: "vigil".into(), at: Utc::now(), field: "status".into(), from: None, to: None });
    NewTicket {
        content: render_ticket(&alert, Some("https://vigil.example"), None),
        reference: reference.to_owned(),
        company: harness.company(),
        place: harness.place(),
        priority: None,
    }
}

fn unique_reference() -> String {
    format!("vigil:{}", crate::contract::unique_suffix().replace('-', "")).chars().take(50).collect()
}

/// What every PSA connector must do.
pub async fn ticket_system_contract(harness: &dyn PsaHarness) {
    let psa = harness.system();

    // Create, then find it by the reference it carries; a reference never used finds nothing.
    let reference = unique_reference();
    let first = psa
        .create_ticket(&new_ticket(harness, &reference))
        .await
        .expect("a ticket is created (its title and text cut to the PSA's limits)");
    assert_eq!(psa.find_ticket(&reference).await.unwrap(), Some(first.clone()), "found by its reference");
    assert_eq!(psa.find_ticket(&unique_reference()).await.unwrap(), None);

    // A create whose response is lost: the retry finds the ticket instead of creating another.
    let before = harness.ticket_count().await;
    let lost = unique_reference();
    harness.lose_next_create_response().await;
    let error = psa.create_ticket(&new_ticket(harness, &lost)).await.expect_err("the response was lost");
    assert!(matches!(error, SinkError::Unavailable(_)), "a lost response is transient: {error:?}");
    let recovered = psa.find_ticket(&lost).await.unwrap().expect("the committed ticket is found by its reference");
    assert_eq!(harness.ticket_count().await, before + 1, "exactly one ticket exists");

    // Notes: added once, found by marker.
    let note = TicketNote { text: "Vigil: matched again.\n[vigil:contract:hits=2]".into(), marker: "[vigil:contract:hits=2]".into() };
    assert!(!psa.has_note(&first, &note.marker).await.unwrap());
    psa.add_note(&first, &note).await.unwrap();
    assert!(psa.has_note(&first, &note.marker).await.unwrap(), "the note is found by its marker");
    assert!(!psa.has_note(&first, "[vigil:contract:hits=3]").await.unwrap());
    assert_eq!(harness.notes(&first).await.iter().filter(|n| n.contains(&note.marker)).count(), 1);

    // States in one batch: both open.
    let states = psa.ticket_states(&[first.clone(), recovered.clone()]).await.unwrap();
    assert_eq!(states.len(), 2);
    assert!(states.iter().all(|(_, s)| matches!(s, TicketState::Open { .. })), "{states:?}");

    // Vigil closes one; closing it again is harmless.
    psa.close_ticket(&first, None, "Resolved in Vigil.").await.unwrap();
    psa.close_ticket(&first, None, "Resolved in Vigil.").await.expect("closing a closed ticket succeeds");
    let states = psa.ticket_states(std::slice::from_ref(&first)).await.unwrap();
    assert!(matches!(states[0].1, TicketState::Closed { .. }), "{states:?}");

    // A technician closes the other: the state says so, and who.
    harness.close_as_technician(&recovered, "jsmith").await;
    let states = psa.ticket_states(std::slice::from_ref(&recovered)).await.unwrap();
    match &states[0].1 {
        TicketState::Closed { by, .. } => {
            assert!(by.as_deref().is_some_and(|b| b.contains("jsmith") || b.contains("Smith")), "closer {by:?}")
        }
        other => panic!("a technician's close reads back as closed, not {other:?}"),
    }

    // A ticket deleted in the PSA is gone: its state says so, and a note is refused as gone.
    let doomed = psa.create_ticket(&new_ticket(harness, &unique_reference())).await.unwrap();
    harness.delete(&doomed).await;
    let states = psa.ticket_states(&[doomed.clone(), first.clone()]).await.unwrap();
    let doomed_state = states.iter().find(|(t, _)| t == &doomed).map(|(_, s)| s.clone());
    assert_eq!(doomed_state, Some(TicketState::Gone));
    let refused = psa.add_note(&doomed, &note).await.expect_err("no note on a gone ticket");
    assert!(matches!(refused, SinkError::Gone(_)), "{refused:?}");
    assert!(matches!(psa.close_ticket(&doomed, None, "x").await, Err(SinkError::Gone(_))));

    // Throttled: transient, with the PSA's delay.
    harness.throttle_next().await;
    match psa.find_ticket(&reference).await {
        Err(SinkError::Throttled { retry_after }) => assert!(retry_after.is_some(), "the Retry-After is kept"),
        other => panic!("a throttled request is SinkError::Throttled, not {other:?}"),
    }
    assert_eq!(psa.find_ticket(&reference).await.unwrap(), Some(first), "and the next request goes through");
}

/// The in-memory PSA as a [`PsaHarness`] (the suite's own check).
pub struct MemoryHarness {
    pub psa: Arc<crate::memory::MemoryTicketSystem>,
}

#[async_trait]
impl PsaHarness for MemoryHarness {
    fn system(&self) -> Arc<dyn TicketSystem> {
        self.psa.clone()
    }
    fn company(&self) -> String {
        "250".into()
    }
    fn place(&self) -> Option<String> {
        None
    }
    async fn lose_next_create_response(&self) {
        use crate::memory::{MemoryFailure, MemoryOperation};
        self.psa.fail_next(MemoryOperation::Create, MemoryFailure::AfterCommit(SinkError::Unavailable("503 after commit".into())));
    }
    async fn throttle_next(&self) {
        use crate::memory::{MemoryFailure, MemoryOperation};
        self.psa.fail_next(
            MemoryOperation::Find,
            MemoryFailure::Before(SinkError::Throttled { retry_after: Some(std::time::Duration::from_secs(1)) }),
        );
    }
    async fn close_as_technician(&self, ticket: &TicketRef, by: &str) {
        self.psa.close_by_technician(&ticket.id, by);
    }
    async fn delete(&self, ticket: &TicketRef) {
        self.psa.delete(&ticket.id);
    }
    async fn ticket_count(&self) -> usize {
        self.psa.tickets().len()
    }
    async fn notes(&self, ticket: &TicketRef) -> Vec<String> {
        self.psa.tickets().into_iter().find(|t| t.id == ticket.id).map(|t| t.notes).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_in_memory_psa_honours_the_ticket_system_contract() {
        ticket_system_contract(&MemoryHarness { psa: Arc::default() }).await;
    }
}
