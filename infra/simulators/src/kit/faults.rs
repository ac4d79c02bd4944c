//! Fault injection shared by the simulators: a vendor names its operations ([`Operation`]),
//! tests arm failures ([`FailureMode`]) for the next `times` requests of an operation, and the
//! vendor's request path asks [`FaultPlan::peek`] / [`FaultPlan::consume`] which one applies.
//!
//! Rules are consumed in the order they were armed; a rule armed for the vendor's "any"
//! operation applies to every operation.
//!
//! The plan is generic over the failure kind too ([`FailureKind`], [`FailureMode`] by
//! default): a vendor whose failures are not the kit's (Microsoft 365's throttling variants,
//! ConnectWise's fixed `Retry-After: 1` throttle) keeps its own kind and still shares the
//! queueing, matching and consumption rules.

use std::fmt;
use std::sync::Mutex;

/// A vendor's operation names (`create_ticket`, `any`, …).
pub trait Operation: Copy + Eq + fmt::Debug + Send + Sync + 'static {
    /// Parses the snake_case name used by `POST /_sim/fail`.
    fn from_name(name: &str) -> Option<Self>;
    /// The snake_case name, as logged and as accepted by [`from_name`](Self::from_name).
    fn name(self) -> &'static str;
    /// Whether this is the wildcard that matches every operation.
    fn is_any(self) -> bool;
}

/// What a [`FaultPlan`] can hold as the failure to inject: the kit's [`FailureMode`] or a
/// vendor's own kind.
pub trait FailureKind: Copy + fmt::Debug + Send + Sync + 'static {}

impl<T: Copy + fmt::Debug + Send + Sync + 'static> FailureKind for T {}

/// How an injected failure behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureMode {
    /// Answer this status without doing anything.
    Status(u16),
    /// Do the work (the ticket or note is stored), then answer this status: a crash after
    /// commit. Only triggers when the work itself succeeds; a request that fails validation
    /// gets its real error and leaves the failure armed.
    AfterCommit(u16),
    /// Answer `429 Too Many Requests` with `Retry-After: {retry_after}` without doing anything.
    Throttle {
        /// Seconds sent in `Retry-After`.
        retry_after: u32,
    },
    /// Do the work, then hold the response for this many seconds: the caller is killed after
    /// the work exists but before it learns the result. Like `AfterCommit`, only triggers when
    /// the work succeeds.
    HangAfterCommit(u16),
    /// Wait this many milliseconds, then handle the request normally.
    Latency(u64),
}

impl FailureMode {
    /// Whether the work is done before the failure shows (the failure waits for success).
    pub fn is_after_commit(self) -> bool {
        matches!(self, FailureMode::AfterCommit(_) | FailureMode::HangAfterCommit(_))
    }
}

#[derive(Debug, Clone)]
struct FailRule<O, M> {
    op: O,
    mode: M,
    remaining: u32,
}

/// The armed failures of one simulator.
#[derive(Debug)]
pub struct FaultPlan<O: Operation, M: FailureKind = FailureMode> {
    rules: Mutex<Vec<FailRule<O, M>>>,
}

impl<O: Operation, M: FailureKind> Default for FaultPlan<O, M> {
    fn default() -> Self {
        FaultPlan { rules: Mutex::new(Vec::new()) }
    }
}

impl<O: Operation, M: FailureKind> FaultPlan<O, M> {
    fn rules(&self) -> std::sync::MutexGuard<'_, Vec<FailRule<O, M>>> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Arms `mode` for the next `times` requests of `op` (nothing when `times` is 0).
    pub fn arm(&self, op: O, mode: M, times: u32) {
        if times > 0 {
            self.rules().push(FailRule { op, mode, remaining: times });
        }
    }

    /// The first armed failure that applies to `op`, without consuming it.
    pub fn peek(&self, op: O) -> Option<M> {
        self.rules().iter().find(|r| r.remaining > 0 && (r.op == op || r.op.is_any())).map(|r| r.mode)
    }

    /// Consumes one use of the first armed failure that applies to `op` and returns it.
    pub fn consume(&self, op: O) -> Option<M> {
        let mut rules = self.rules();
        let index = rules.iter().position(|r| r.remaining > 0 && (r.op == op || r.op.is_any()))?;
        let mode = rules[index].mode;
        rules[index].remaining -= 1;
        if rules[index].remaining == 0 {
            rules.remove(index);
        }
        Some(mode)
    }

    /// Number of armed rules (each may cover several requests).
    pub fn armed(&self) -> usize {
        self.rules().len()
    }

    /// Disarms everything.
    pub fn clear(&self) {
        self.rules().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Op {
        Create,
        Read,
        Any,
    }

    impl Operation for Op {
        fn from_name(name: &str) -> Option<Self> {
            [Op::Create, Op::Read, Op::Any].into_iter().find(|o| o.name() == name)
        }
        fn name(self) -> &'static str {
            match self {
                Op::Create => "create",
                Op::Read => "read",
                Op::Any => "any",
            }
        }
        fn is_any(self) -> bool {
            self == Op::Any
        }
    }

    #[test]
    fn failures_are_consumed_in_the_order_they_were_armed_and_any_matches_every_operation() {
        let plan = FaultPlan::<Op>::default();
        plan.arm(Op::Create, FailureMode::Status(503), 2);
        plan.arm(Op::Any, FailureMode::Throttle { retry_after: 3 }, 1);
        plan.arm(Op::Read, FailureMode::Latency(10), 0);
        assert_eq!(plan.armed(), 2, "times 0 arms nothing");
        assert_eq!(plan.peek(Op::Read), Some(FailureMode::Throttle { retry_after: 3 }));
        assert_eq!(plan.consume(Op::Create), Some(FailureMode::Status(503)));
        assert_eq!(plan.consume(Op::Create), Some(FailureMode::Status(503)));
        assert_eq!(plan.consume(Op::Create), Some(FailureMode::Throttle { retry_after: 3 }));
        assert_eq!(plan.consume(Op::Read), None);
        assert_eq!(plan.armed(), 0);
    }

    #[test]
    fn a_vendor_failure_kind_queues_like_the_kits() {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Vendor {
            Throttle,
            Broken,
        }
        let plan = FaultPlan::<Op, Vendor>::default();
        plan.arm(Op::Read, Vendor::Throttle, 1);
        plan.arm(Op::Any, Vendor::Broken, 1);
        assert_eq!(plan.consume(Op::Create), Some(Vendor::Broken), "the Any rule applies; the Read rule does not");
        assert_eq!(plan.consume(Op::Read), Some(Vendor::Throttle));
        assert_eq!(plan.consume(Op::Read), None);
    }

    #[test]
    fn peeking_leaves_an_after_commit_failure_armed() {
        let plan = FaultPlan::<Op>::default();
        plan.arm(Op::Create, FailureMode::AfterCommit(500), 1);
        assert!(plan.peek(Op::Create).is_some_and(FailureMode::is_after_commit));
        assert!(plan.peek(Op::Create).is_some());
        plan.clear();
        assert_eq!(plan.peek(Op::Create), None);
    }

    #[test]
    fn fail_requests_parse_every_mode_with_defaults() {
        use serde_json::json;
        let parse = |v: serde_json::Value| super::super::parse_fail_request::<Op>(&v);
        let r = parse(json!({"operation": "create"})).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.operation, r.mode, r.times), (Op::Create, FailureMode::Status(500), 1));
        let modes = [
            (json!({"operation": "read", "mode": "after_commit", "status": 502}), FailureMode::AfterCommit(502)),
            (json!({"operation": "read", "mode": "throttle", "retry_after": 9}), FailureMode::Throttle { retry_after: 9 }),
            (json!({"operation": "read", "mode": "hang_after_commit", "seconds": 4}), FailureMode::HangAfterCommit(4)),
            (json!({"operation": "read", "mode": "latency", "ms": 20}), FailureMode::Latency(20)),
        ];
        for (body, mode) in modes {
            assert_eq!(parse(body).map(|r| r.mode), Ok(mode));
        }
        assert!(parse(json!({"operation": "delete"})).is_err());
        assert!(parse(json!({"operation": "read", "mode": "explode"})).is_err());
        assert!(parse(json!({"operation": "read", "status": 99})).is_err());
    }
}
