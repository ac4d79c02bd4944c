//! The scale bench's parts (`scale-bench`, package `vigil-local`): counting decorators over the
//! ports ([`counting`]), simulated SQS queues and function instances ([`queue`]), the 2,000-tenant
//! tick through poller, evaluator and dispatcher ([`pipeline`]), two MSPs on one dispatcher with
//! one storming ([`storm`]), and each function's memory during one invocation ([`memory`]).

pub mod counting;
pub mod memory;
pub mod pipeline;
pub mod queue;
pub mod storm;
