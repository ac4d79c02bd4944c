//! The simulator kit: what every vendor simulator shares, independent of the vendor's wire
//! format.
//!
//! * [`server`]: start an axum router on `127.0.0.1:0`; clones of the returned [`SimServer`]
//!   share the server, which stops gracefully when the last clone is dropped or on
//!   [`SimServer::shutdown`].
//! * [`faults`]: fault injection. A vendor names its operations with a type implementing
//!   [`Operation`]; failures ([`FailureMode`]) are armed per operation for a number of
//!   requests and consumed in the order they were armed.
//! * [`log`]: the request log (method, path, timestamp, operation) and the simulator's clock
//!   ([`SimClock`]), which tests can move forward to show time-based behaviour (rolling windows)
//!   without waiting.
//! * [`control`]: the shared control routes every simulator serves without authentication:
//!   `POST /_sim/fail`, `POST /_sim/reset`, `GET /_sim/requests`.
//!
//! The kit knows nothing about tickets or authentication: a vendor module builds its own router
//! around a [`Kit`] and asks it, per request, which failure applies and what to log.

pub mod control;
pub mod faults;
pub mod log;
pub mod server;

pub use control::{FailRequest, parse_fail_request};
pub use faults::{FailureKind, FailureMode, FaultPlan, Operation};
pub use log::{LoggedRequest, RequestLog, SimClock};
pub use server::SimServer;

/// The shared per-simulator machinery, generic over the vendor's operation names and the
/// failure kind it injects (the kit's [`FailureMode`] unless the vendor's differ).
#[derive(Debug)]
pub struct Kit<O: Operation, M: FailureKind = FailureMode> {
    /// The simulator's notion of "now".
    pub clock: SimClock,
    /// Armed failures.
    pub faults: FaultPlan<O, M>,
    /// Every request received (control routes excluded).
    pub log: RequestLog,
}

impl<O: Operation, M: FailureKind> Default for Kit<O, M> {
    fn default() -> Self {
        Kit { clock: SimClock::default(), faults: FaultPlan::default(), log: RequestLog::default() }
    }
}

impl<O: Operation, M: FailureKind> Kit<O, M> {
    /// A kit with a real-time clock, no armed failures and an empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets armed failures and the request log. The clock keeps its offset: a test that
    /// moved time forward does not see it jump back.
    pub fn reset(&self) {
        self.faults.clear();
        self.log.clear();
    }
}
