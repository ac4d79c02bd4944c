//! Use cases. Each service depends only on ports, is built once per container (cold start)
//! and is called by a thin handler once per message or request.

pub mod access;
pub mod admin;
pub mod alert_feed;
pub mod destinations;
pub mod dispatch;
pub mod evaluate;
pub mod poll;
pub mod relationships;
pub mod replay;
pub mod shadow;
pub mod tuning;
