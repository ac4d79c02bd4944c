//! Failure injection for the Microsoft 365 simulator: the public operation and failure names
//! ([`M365Operation`], [`M365Failure`]), the internal request classification ([`Op`]) and the
//! error responses an injected failure produces on the token endpoint and the Management API.

use std::fmt;
use std::str::FromStr;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::kit::Operation;

use super::ZERO_GUID;
use super::wire::{aad_error, af_error};

/// Which simulated operation a [`M365SimHandle::fail_next`] injection applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum M365Operation {
    /// Token endpoint (v1 and v2).
    Token,
    /// `GET subscriptions/content`.
    ListContent,
    /// `GET audit/{contentId}`.
    FetchBlob,
    /// `POST subscriptions/start`.
    StartSubscription,
    /// `GET /graph/v1.0/security/alerts_v2` (Microsoft Graph). `Throttle` answers 429 and
    /// `ThrottleForbidden` 503, both with `Retry-After: 1`; `ThrottleFractional` and
    /// `ThrottleWithoutRetryAfter` answer 429 with `Retry-After: 0.249` and none; `ServerError`
    /// answers 500.
    GraphAlerts,
    /// `GET /graph/v1.0/tenantRelationships/delegatedAdminRelationships` and its
    /// `accessAssignments` (the partner tenant's GDAP relationships); failures as for
    /// [`Self::GraphAlerts`].
    PartnerRelationships,
    /// `GET /graph/beta/auditLogs/signIns` (Entra ID sign-in logs); failures as for
    /// [`Self::GraphAlerts`].
    SignIns,
    /// `GET /graph/v1.0/users` (the directory listed for the mailbox count); failures as for
    /// [`Self::GraphAlerts`].
    Users,
    /// `GET /graph/v1.0/subscribedSkus` and `GET /graph/v1.0/directory/subscriptions` (a
    /// tenant's licences); failures as for [`Self::GraphAlerts`].
    Licences,
    /// The Graph calls of direct onboarding with a delegated token (`servicePrincipals`,
    /// `appRoleAssignments`, `appRoleAssignedTo`); failures as for [`Self::GraphAlerts`].
    Directory,
    /// Any request to the token endpoint, the Management API or Graph (including list/stop
    /// subscriptions and notifications, which have no operation of their own).
    Any,
}

/// Failure to inject with [`M365SimHandle::fail_next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum M365Failure {
    /// HTTP 429, `Retry-After: 1`, error code `AF429` (token endpoint: 429 `temporarily_unavailable`
    /// AADSTS90055).
    Throttle,
    /// HTTP 403 with `AF429` and no `Retry-After` (the form shown on Microsoft's troubleshooting
    /// page). The token endpoint never answers 403, so there it behaves like [`Self::Throttle`].
    ThrottleForbidden,
    /// HTTP 500 `AF50000` (token endpoint: 500 `server_error` AADSTS50000).
    ServerError,
    /// Like [`Self::Throttle`] with a fractional `Retry-After: 0.249` (Graph has been seen sending
    /// decimal seconds).
    ThrottleFractional,
    /// Like [`Self::Throttle`] without any `Retry-After` (several Graph services, and the
    /// Management API as observed live, send none).
    ThrottleWithoutRetryAfter,
}

/// Error returned when parsing an operation/failure name fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseNameError(pub String);

impl fmt::Display for ParseNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown name: {}", self.0)
    }
}

impl std::error::Error for ParseNameError {}

pub(super) fn normalise_name(s: &str) -> String {
    s.chars().filter(|c| !matches!(c, '_' | '-' | ' ')).flat_map(char::to_lowercase).collect()
}

impl FromStr for M365Operation {
    type Err = ParseNameError;

    /// Accepts `token`, `list_content`, `ListContent`, `fetch-blob`, ... (case, `_` and `-`
    /// insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match normalise_name(s).as_str() {
            "token" => Ok(Self::Token),
            "listcontent" => Ok(Self::ListContent),
            "fetchblob" => Ok(Self::FetchBlob),
            "startsubscription" => Ok(Self::StartSubscription),
            "graphalerts" => Ok(Self::GraphAlerts),
            "partnerrelationships" => Ok(Self::PartnerRelationships),
            "signins" => Ok(Self::SignIns),
            "users" => Ok(Self::Users),
            "licences" => Ok(Self::Licences),
            "directory" => Ok(Self::Directory),
            "any" => Ok(Self::Any),
            _ => Err(ParseNameError(s.to_owned())),
        }
    }
}

impl FromStr for M365Failure {
    type Err = ParseNameError;

    /// Accepts `throttle`, `throttle_forbidden`, `ServerError`, ... (case, `_` and `-`
    /// insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match normalise_name(s).as_str() {
            "throttle" => Ok(Self::Throttle),
            "throttleforbidden" => Ok(Self::ThrottleForbidden),
            "servererror" => Ok(Self::ServerError),
            "throttlefractional" => Ok(Self::ThrottleFractional),
            "throttlewithoutretryafter" => Ok(Self::ThrottleWithoutRetryAfter),
            _ => Err(ParseNameError(s.to_owned())),
        }
    }
}

impl Operation for M365Operation {
    fn from_name(name: &str) -> Option<Self> {
        name.parse().ok()
    }

    fn name(self) -> &'static str {
        match self {
            M365Operation::Token => "token",
            M365Operation::ListContent => "list_content",
            M365Operation::FetchBlob => "fetch_blob",
            M365Operation::StartSubscription => "start_subscription",
            M365Operation::GraphAlerts => "graph_alerts",
            M365Operation::PartnerRelationships => "partner_relationships",
            M365Operation::SignIns => "sign_ins",
            M365Operation::Users => "users",
            M365Operation::Licences => "licences",
            M365Operation::Directory => "directory",
            M365Operation::Any => "any",
        }
    }

    fn is_any(self) -> bool {
        self == M365Operation::Any
    }
}

/// Internal classification of a request for failure injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Token,
    ListContent,
    FetchBlob,
    StartSubscription,
    GraphAlerts,
    PartnerRelationships,
    SignIns,
    Users,
    Licences,
    Directory,
    Other,
}

impl Op {
    /// The operation a request of this kind looks up in the fault plan. A request without an
    /// operation of its own (list/stop subscriptions, notifications) looks up `Any`, so only
    /// failures armed for `Any` apply to it, as before the kit.
    pub(super) fn plan_key(self) -> M365Operation {
        match self {
            Op::Token => M365Operation::Token,
            Op::ListContent => M365Operation::ListContent,
            Op::FetchBlob => M365Operation::FetchBlob,
            Op::StartSubscription => M365Operation::StartSubscription,
            Op::GraphAlerts => M365Operation::GraphAlerts,
            Op::PartnerRelationships => M365Operation::PartnerRelationships,
            Op::SignIns => M365Operation::SignIns,
            Op::Users => M365Operation::Users,
            Op::Licences => M365Operation::Licences,
            Op::Directory => M365Operation::Directory,
            Op::Other => M365Operation::Any,
        }
    }

    /// The operation name in the request log (`other` for requests without their own).
    pub(super) fn label(self) -> &'static str {
        match self {
            Op::Other => "other",
            op => op.plan_key().name(),
        }
    }

    /// `Method=` value used in AF429 messages.
    pub(super) fn method_name(self) -> &'static str {
        match self {
            Op::Token => "Token",
            Op::ListContent => "GetContents",
            Op::FetchBlob => "GetBlob",
            Op::StartSubscription => "StartSubscription",
            Op::GraphAlerts => "ListAlerts",
            Op::PartnerRelationships => "ListDelegatedAdminRelationships",
            Op::SignIns => "ListSignIns",
            Op::Users => "ListUsers",
            Op::Licences => "ListLicences",
            Op::Directory => "ServicePrincipals",
            Op::Other => "Subscriptions",
        }
    }
}

/// The `Retry-After` a throttling failure carries: `1`, `0.249` or none.
pub(crate) fn throttle_retry_after(failure: M365Failure, mut resp: Response) -> Response {
    let value = match failure {
        M365Failure::ThrottleFractional => "0.249",
        M365Failure::ThrottleWithoutRetryAfter => return resp,
        _ => "1",
    };
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(value));
    resp
}

pub(super) fn token_failure(failure: M365Failure) -> Response {
    match failure {
        M365Failure::Throttle
        | M365Failure::ThrottleForbidden
        | M365Failure::ThrottleFractional
        | M365Failure::ThrottleWithoutRetryAfter => throttle_retry_after(
            failure,
            aad_error(
                StatusCode::TOO_MANY_REQUESTS,
                "temporarily_unavailable",
                90055,
                "The request has been throttled. Tenant throttling threshold exceeded; retry later.",
            ),
        ),
        M365Failure::ServerError => aad_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            50000,
            "There was an error issuing a token or an issue with our sign-in service.",
        ),
    }
}

pub(super) fn management_failure(failure: M365Failure, op: Op, publisher: Option<&str>) -> Response {
    let publisher = publisher.filter(|p| !p.is_empty()).unwrap_or(ZERO_GUID);
    let throttled = format!("Too many requests. Method={}, PublisherId={publisher}", op.method_name());
    match failure {
        M365Failure::Throttle | M365Failure::ThrottleFractional | M365Failure::ThrottleWithoutRetryAfter => {
            throttle_retry_after(failure, af_error(StatusCode::TOO_MANY_REQUESTS, "AF429", &throttled))
        }
        // Microsoft's troubleshooting page shows 403 + AF429; whether Retry-After is sent is
        // unconfirmed, so this variant omits it (clients must back off on their own).
        M365Failure::ThrottleForbidden => af_error(StatusCode::FORBIDDEN, "AF429", &throttled),
        M365Failure::ServerError => {
            af_error(StatusCode::INTERNAL_SERVER_ERROR, "AF50000", "An internal error occurred. Retry the request.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{M365Failure, M365Operation, Op};
    use crate::kit::FaultPlan;

    #[test]
    fn requests_without_an_operation_only_see_failures_armed_for_any() {
        let plan = FaultPlan::<M365Operation, M365Failure>::default();
        plan.arm(M365Operation::ListContent, M365Failure::Throttle, 1);
        assert_eq!(plan.consume(Op::Other.plan_key()), None);
        plan.arm(M365Operation::Any, M365Failure::ServerError, 1);
        assert_eq!(plan.consume(Op::Other.plan_key()), Some(M365Failure::ServerError));
        assert_eq!(plan.consume(Op::ListContent.plan_key()), Some(M365Failure::Throttle));
        assert_eq!(Op::Other.label(), "other");
        assert_eq!(Op::FetchBlob.label(), "fetch_blob");
    }

    #[test]
    fn names_parse_leniently() {
        assert_eq!("list_content".parse::<M365Operation>(), Ok(M365Operation::ListContent));
        assert_eq!("ThrottleForbidden".parse::<M365Failure>(), Ok(M365Failure::ThrottleForbidden));
        assert!("nope".parse::<M365Failure>().is_err());
    }
}
