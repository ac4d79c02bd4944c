//! A queue that behaves like the SQS queues the bench's functions share: messages become
//! visible after their delay, a received message is in flight until it is deleted or made
//! visible again after a delay (a failed one after its `Retry-After`, else the bench's
//! visibility timeout), and batches are taken by "instances" ([`worker`]) up to a concurrency
//! limit (an event source's `MaximumConcurrency`).

use super::counting::Meter;
use async_trait::async_trait;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use vigil::error::QueueError;
use vigil::ports::MessageQueue;

/// One message.
#[derive(Debug, Clone)]
pub struct Message {
    pub body: String,
    /// How many times it has been received (this receive included).
    pub receives: u32,
}

#[derive(Default)]
struct State {
    ready: VecDeque<Message>,
    delayed: Vec<(Instant, Message)>,
    in_flight: usize,
}

/// The queue.
#[derive(Default)]
pub struct BenchQueue {
    state: Mutex<State>,
}

impl BenchQueue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Up to `max` visible messages, now in flight.
    pub fn receive(&self, max: usize) -> Vec<Message> {
        let now = Instant::now();
        let mut state = self.lock();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut state.delayed).into_iter().partition(|(at, _)| *at <= now);
        state.delayed = later;
        state.ready.extend(due.into_iter().map(|(_, m)| m));
        let take = max.min(state.ready.len());
        let batch: Vec<Message> = state
            .ready
            .drain(..take)
            .map(|mut m| {
                m.receives += 1;
                m
            })
            .collect();
        state.in_flight += batch.len();
        batch
    }

    /// A received message was handled: deleted.
    pub fn delete(&self) {
        let mut state = self.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
    }

    /// A received message failed: visible again after `delay`.
    pub fn retry(&self, message: Message, delay: Duration) {
        let mut state = self.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        state.delayed.push((Instant::now() + delay, message));
    }

    /// Nothing visible, delayed or in flight.
    pub fn is_idle(&self) -> bool {
        let state = self.lock();
        state.ready.is_empty() && state.delayed.is_empty() && state.in_flight == 0
    }

    fn push(&self, bodies: &[String], delay: Duration) {
        let mut state = self.lock();
        for body in bodies {
            let message = Message { body: body.clone(), receives: 0 };
            if delay.is_zero() {
                state.ready.push_back(message);
            } else {
                state.delayed.push((Instant::now() + delay, message));
            }
        }
    }
}

#[async_trait]
impl MessageQueue for BenchQueue {
    async fn send_all(&self, bodies: &[String]) -> Result<(), QueueError> {
        self.push(bodies, Duration::ZERO);
        Ok(())
    }
    async fn send_delayed(&self, bodies: &[String], delay: Duration) -> Result<(), QueueError> {
        self.push(bodies, delay);
        Ok(())
    }
}

/// What a handler says of each message of a batch, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Done,
    /// Visible again after this long.
    Retry(Duration),
    /// Failed for good (would be dead-lettered).
    Dead,
}

/// One "Lambda instance": takes batches of up to `batch` messages from `queue`, hands them to
/// `handle` and applies its verdicts, counting invocations and their duration on `meter` (plus
/// the receive, delete and visibility requests) until `stop` is set.
pub async fn worker<F, Fut>(
    queue: Arc<BenchQueue>,
    batch: usize,
    meter: Arc<Meter>,
    stop: Arc<AtomicBool>,
    dead: Arc<Mutex<Vec<String>>>,
    handle: F,
) where
    F: Fn(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Vec<Verdict>>,
{
    while !stop.load(Ordering::SeqCst) {
        let messages = queue.receive(batch);
        if messages.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let started = Instant::now();
        let verdicts = handle(messages.iter().map(|m| m.body.clone()).collect()).await;
        meter.invocation(started.elapsed());
        // One receive, one delete batch; a visibility change per retried message.
        meter.sqs(2);
        for (message, verdict) in messages.into_iter().zip(verdicts.into_iter().chain(std::iter::repeat(Verdict::Done))) {
            match verdict {
                Verdict::Done => queue.delete(),
                Verdict::Retry(delay) => {
                    meter.sqs(1);
                    queue.retry(message, delay);
                }
                Verdict::Dead => {
                    dead.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(message.body.clone());
                    queue.delete();
                }
            }
        }
    }
}
