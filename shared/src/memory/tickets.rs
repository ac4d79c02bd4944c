//! An in-memory PSA ([`MemoryTicketSystem`]) with a technician's actions (close, delete, merge)
//! and failure injection, its provider (one PSA per destination id), and an in-memory
//! [`RequestBudget`]. For fast unit tests of the delivery core; each real connector proves the
//! same port against its simulator in the ticket-port contract suite.

use super::lock;
use crate::destination::Destination;
use crate::error::{SinkError, StoreError};
use crate::ids::{DestinationId, MspId};
use crate::ports::{BudgetGrant, Lookup, LookupItem, NewTicket, RequestBudget, SinkSetupError, TicketSystem, TicketSystemProvider};
use crate::ticket::{TicketNote, TicketRef, TicketState};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// A ticket held by [`MemoryTicketSystem`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryTicket {
    pub id: String,
    pub company: String,
    pub place: Option<String>,
    pub priority: Option<String>,
    pub reference: String,
    pub title: String,
    pub description: String,
    pub notes: Vec<String>,
    /// `None` while open; the closer otherwise.
    pub closed_by: Option<String>,
    pub closed_status: Option<String>,
    /// Deleted or merged away.
    pub gone: bool,
}

/// Which port operation a failure is injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryOperation {
    Find,
    Create,
    AddNote,
    HasNote,
    Close,
    States,
    Lookup,
    Check,
}

/// A failure armed for the next call of an operation.
#[derive(Debug)]
pub enum MemoryFailure {
    /// Fail before doing anything.
    Before(SinkError),
    /// Do the work, then fail as if the response was lost.
    AfterCommit(SinkError),
}

/// [`TicketSystem`] in memory.
#[derive(Debug, Default)]
pub struct MemoryTicketSystem {
    tickets: Mutex<Vec<MemoryTicket>>,
    failures: Mutex<Vec<(MemoryOperation, MemoryFailure)>>,
    calls: Mutex<Vec<MemoryOperation>>,
    problems: Mutex<Vec<String>>,
}

impl MemoryTicketSystem {
    /// Every ticket, gone ones included.
    pub fn tickets(&self) -> Vec<MemoryTicket> {
        lock(&self.tickets).clone()
    }
    /// Tickets that still exist.
    pub fn live_tickets(&self) -> Vec<MemoryTicket> {
        lock(&self.tickets).iter().filter(|t| !t.gone).cloned().collect()
    }
    /// Arms a failure for the next call of `operation`.
    pub fn fail_next(&self, operation: MemoryOperation, failure: MemoryFailure) {
        lock(&self.failures).push((operation, failure));
    }
    /// Makes the next create fail with `error` (before creating anything).
    pub fn fail_next_create(&self, error: SinkError) {
        self.fail_next(MemoryOperation::Create, MemoryFailure::Before(error));
    }
    /// Makes every `check` report these problems (none by default).
    pub fn report_problems(&self, problems: Vec<String>) {
        *lock(&self.problems) = problems;
    }
    /// How many calls of `operation` were made.
    pub fn calls(&self, operation: MemoryOperation) -> usize {
        lock(&self.calls).iter().filter(|o| **o == operation).count()
    }
    /// A technician closes the ticket in the PSA.
    pub fn close_by_technician(&self, id: &str, by: &str) {
        if let Some(t) = lock(&self.tickets).iter_mut().find(|t| t.id == id) {
            t.closed_by = Some(by.to_owned());
            t.closed_status = Some("Closed".into());
        }
    }
    /// A technician deletes the ticket (or merges it into another).
    pub fn delete(&self, id: &str) {
        if let Some(t) = lock(&self.tickets).iter_mut().find(|t| t.id == id) {
            t.gone = true;
        }
    }

    fn enter(&self, operation: MemoryOperation) -> Result<Option<SinkError>, SinkError> {
        lock(&self.calls).push(operation);
        let mut failures = lock(&self.failures);
        let Some(index) = failures.iter().position(|(op, _)| *op == operation) else { return Ok(None) };
        match failures.remove(index).1 {
            MemoryFailure::Before(error) => Err(error),
            MemoryFailure::AfterCommit(error) => Ok(Some(error)),
        }
    }

    fn with_ticket<T>(&self, ticket: &TicketRef, f: impl FnOnce(&mut MemoryTicket) -> T) -> Result<T, SinkError> {
        let mut tickets = lock(&self.tickets);
        let found =
            tickets.iter_mut().find(|t| t.id == ticket.id).ok_or_else(|| SinkError::Rejected(format!("ticket {ticket} not found")))?;
        if found.gone {
            return Err(SinkError::Gone(format!("ticket {ticket}")));
        }
        Ok(f(found))
    }
}

fn finish<T>(value: T, after: Option<SinkError>) -> Result<T, SinkError> {
    match after {
        Some(error) => Err(error),
        None => Ok(value),
    }
}

#[async_trait]
impl TicketSystem for MemoryTicketSystem {
    async fn find_ticket(&self, reference: &str) -> Result<Option<TicketRef>, SinkError> {
        let after = self.enter(MemoryOperation::Find)?;
        let found = lock(&self.tickets).iter().find(|t| t.reference == reference && !t.gone).map(|t| TicketRef::new(t.id.clone()));
        finish(found, after)
    }
    async fn create_ticket(&self, ticket: &NewTicket) -> Result<TicketRef, SinkError> {
        let after = self.enter(MemoryOperation::Create)?;
        let mut tickets = lock(&self.tickets);
        let id = (1001 + tickets.len()).to_string();
        tickets.push(MemoryTicket {
            id: id.clone(),
            company: ticket.company.clone(),
            place: ticket.place.clone(),
            priority: ticket.priority.clone(),
            reference: ticket.reference.clone(),
            title: ticket.content.title_within(255),
            description: ticket.content.text_within(8_000),
            notes: Vec::new(),
            closed_by: None,
            closed_status: None,
            gone: false,
        });
        drop(tickets);
        finish(TicketRef::new(id), after)
    }
    async fn add_note(&self, ticket: &TicketRef, note: &TicketNote) -> Result<(), SinkError> {
        let after = self.enter(MemoryOperation::AddNote)?;
        self.with_ticket(ticket, |t| t.notes.push(note.text.clone()))?;
        finish((), after)
    }
    async fn has_note(&self, ticket: &TicketRef, marker: &str) -> Result<bool, SinkError> {
        let after = self.enter(MemoryOperation::HasNote)?;
        let has = self.with_ticket(ticket, |t| t.notes.iter().any(|n| n.contains(marker)))?;
        finish(has, after)
    }
    async fn close_ticket(&self, ticket: &TicketRef, status: Option<&str>, _resolution: &str) -> Result<(), SinkError> {
        let after = self.enter(MemoryOperation::Close)?;
        self.with_ticket(ticket, |t| {
            if t.closed_by.is_none() {
                t.closed_by = Some("vigil".into());
                t.closed_status = Some(status.unwrap_or("Closed").to_owned());
            }
        })?;
        finish((), after)
    }
    async fn ticket_states(&self, tickets: &[TicketRef]) -> Result<Vec<(TicketRef, TicketState)>, SinkError> {
        let after = self.enter(MemoryOperation::States)?;
        let stored = lock(&self.tickets);
        let states = tickets
            .iter()
            .map(|wanted| {
                let state = match stored.iter().find(|t| t.id == wanted.id) {
                    None => TicketState::Gone,
                    Some(t) if t.gone => TicketState::Gone,
                    Some(t) => match &t.closed_by {
                        Some(by) => {
                            TicketState::Closed { status: t.closed_status.clone().unwrap_or_default(), by: Some(by.clone()), at: None }
                        }
                        None => TicketState::Open { status: "New".into() },
                    },
                };
                (wanted.clone(), state)
            })
            .collect();
        drop(stored);
        finish(states, after)
    }
    async fn lookup(&self, what: &Lookup) -> Result<Vec<LookupItem>, SinkError> {
        self.enter(MemoryOperation::Lookup)?;
        let item = |id: &str, name: &str| LookupItem { id: id.into(), name: name.into(), closes: None, email: None, default: false };
        Ok(match what {
            Lookup::Companies { .. } => vec![item("250", "Contoso")],
            Lookup::Places => vec![item("1", "Service Desk")],
            Lookup::Priorities => vec![item("8", "Priority 3 - Normal")],
            Lookup::Statuses { .. } => vec![LookupItem { closes: Some(true), ..item("99", "Closed") }],
            Lookup::Contacts { .. } | Lookup::Sites { .. } => Vec::new(),
            Lookup::Technicians => vec![item("5", "Alex Tech")],
        })
    }
    async fn check(&self, _destination: &Destination) -> Result<Vec<String>, SinkError> {
        let after = self.enter(MemoryOperation::Check)?;
        finish(lock(&self.problems).clone(), after)
    }
}

/// [`TicketSystemProvider`] handing out one in-memory PSA per destination id.
#[derive(Debug, Default, Clone)]
pub struct MemoryTicketSystemProvider {
    systems: Arc<Mutex<HashMap<DestinationId, Arc<MemoryTicketSystem>>>>,
    channels: Arc<Mutex<HashMap<DestinationId, Arc<super::MemoryChannel>>>>,
    not_configured: Arc<Mutex<HashMap<DestinationId, String>>>,
}

impl MemoryTicketSystemProvider {
    /// The PSA of `destination` (created empty on first use).
    pub fn system(&self, destination: &DestinationId) -> Arc<MemoryTicketSystem> {
        lock(&self.systems).entry(destination.clone()).or_default().clone()
    }
    /// The channel of `destination` (a chat-like one, created on first use, unless
    /// [`Self::put_channel`] gave another).
    pub fn channel(&self, destination: &DestinationId) -> Arc<super::MemoryChannel> {
        lock(&self.channels).entry(destination.clone()).or_default().clone()
    }
    /// Makes `channel` the channel of `destination`.
    pub fn put_channel(&self, destination: &DestinationId, channel: super::MemoryChannel) -> Arc<super::MemoryChannel> {
        let channel = Arc::new(channel);
        lock(&self.channels).insert(destination.clone(), channel.clone());
        channel
    }
    /// Makes building `destination`'s PSA fail as [`SinkSetupError::NotConfigured`] with `why`.
    pub fn refuse_setup(&self, destination: &DestinationId, why: &str) {
        lock(&self.not_configured).insert(destination.clone(), why.to_owned());
    }
}

#[async_trait]
impl TicketSystemProvider for MemoryTicketSystemProvider {
    async fn system_for(&self, destination: &Destination) -> Result<Arc<dyn TicketSystem>, SinkSetupError> {
        if let Some(why) = lock(&self.not_configured).get(&destination.id) {
            return Err(SinkSetupError::NotConfigured(why.clone()));
        }
        Ok(self.system(&destination.id))
    }
    async fn channel_for(&self, destination: &Destination) -> Result<Arc<dyn crate::ports::MessageChannel>, SinkSetupError> {
        if let Some(why) = lock(&self.not_configured).get(&destination.id) {
            return Err(SinkSetupError::NotConfigured(why.clone()));
        }
        Ok(self.channel(&destination.id))
    }
}

/// When each granted request of one (MSP, destination) was granted, oldest first.
type GrantLog = HashMap<(MspId, DestinationId), VecDeque<DateTime<Utc>>>;

/// [`RequestBudget`] in memory: a log of granted requests per destination.
#[derive(Debug, Default)]
pub struct MemoryRequestBudget {
    granted: Mutex<GrantLog>,
}

#[async_trait]
impl RequestBudget for MemoryRequestBudget {
    async fn take(
        &self,
        msp_id: &MspId,
        destination: &DestinationId,
        requests: u32,
        per_hour: u32,
        now: DateTime<Utc>,
    ) -> Result<BudgetGrant, StoreError> {
        let mut granted = lock(&self.granted);
        let log = granted.entry((msp_id.clone(), destination.clone())).or_default();
        while log.front().is_some_and(|at| *at <= now - Duration::hours(1)) {
            log.pop_front();
        }
        if log.len() + requests as usize > per_hour as usize {
            let oldest = log.front().copied().unwrap_or(now);
            let wait = (oldest + Duration::hours(1) - now).to_std().unwrap_or_default().max(std::time::Duration::from_secs(1));
            return Ok(BudgetGrant::Exhausted { retry_after: wait });
        }
        log.extend(std::iter::repeat_n(now, requests as usize));
        Ok(BudgetGrant::Granted)
    }
}
