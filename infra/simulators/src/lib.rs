//! Faithful local simulators of the third-party services Vigil talks to, for tests and the local
//! stack: Microsoft 365 (identity platform token endpoint and Office 365 Management Activity API),
//! ConnectWise Manage, Autotask PSA, HaloPSA, Tigerpaw, and the channels Vigil posts to (Teams
//! Workflows, Slack incoming webhooks, a Standard Webhooks receiver). Each simulator is an
//! in-process HTTP server bound to `127.0.0.1`. What the simulators share (server lifecycle, fault injection, request log, clock,
//! control routes) lives in [`kit`].

pub mod autotask;
pub mod channels;
pub mod connectwise;
pub(crate) mod graph;
pub mod halopsa;
pub mod json_schema;
pub mod kit;
pub mod m365;
pub mod openapi_validate;

pub(crate) mod partner;
pub(crate) mod sign_ins;
pub mod tigerpaw;
pub mod webhooks;
