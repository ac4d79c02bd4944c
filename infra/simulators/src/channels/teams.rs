//! Teams Workflows: a flow's trigger URL carries `api-version`, `sp`, `sv` and `sig` (the
//! credential); a wrong or missing `sig` answers `401`, a deleted flow `404`. The body must be
//! the `{"type": "message", "attachments": [...]}` envelope the Workflows templates loop over,
//! each attachment an Adaptive Card (`application/vnd.microsoft.card.adaptive`) valid against
//! the Adaptive Card 1.5 schema (`infra/schemas/adaptive-card-1.5.schema.json`, Microsoft's
//! file) with the Teams extension `msteams` (`{"width": "Full"}`) allowed on the card; a body
//! over 28 KB answers `413 Request Entity too large`. Accepted posts answer `202` (the flow
//! runs later).

use super::{ChannelRequest, Received, Shared, Verdict, text};
use crate::json_schema::JsonSchema;
use axum::http::StatusCode;
use serde_json::Value;
use std::sync::OnceLock;

/// The body size above which Workflows refuses a post.
pub const BODY_BYTES_MAX: usize = 28 * 1024;

const SCHEMA: &str = include_str!("../../../schemas/adaptive-card-1.5.schema.json");

fn schema() -> &'static JsonSchema {
    static PARSED: OnceLock<JsonSchema> = OnceLock::new();
    PARSED.get_or_init(|| JsonSchema::parse(SCHEMA).unwrap_or_else(|e| panic!("the embedded Adaptive Card schema is JSON: {e}")))
}

/// Problems of an Adaptive Card as Teams would see them (empty: it renders).
#[must_use]
pub fn card_problems(card: &Value) -> Vec<String> {
    let mut card = card.clone();
    let mut problems = Vec::new();
    if let Some(object) = card.as_object_mut()
        && let Some(teams) = object.remove("msteams")
    {
        let width_ok =
            teams.as_object().is_some_and(|t| t.iter().all(|(k, v)| k == "width" && matches!(v.as_str(), Some("Full" | "Default"))));
        if !width_ok {
            problems.push("/msteams: only {\"width\": \"Full\"} is supported".to_owned());
        }
    }
    problems.extend(schema().validate(&card).iter().map(ToString::to_string));
    problems
}

pub(super) fn create_flow(shared: &Shared) -> String {
    let id = shared.token();
    let sig = shared.token();
    let path = format!("/powerautomate/automations/direct/workflows/{id}/triggers/manual/paths/invoke");
    shared.add_endpoint(path.clone(), vec![sig.clone()]);
    shared.url(&format!("{path}?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={sig}"))
}

fn error(status: StatusCode, code: &str, message: &str) -> Verdict {
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    let mut response = text(status, &body);
    response.headers_mut().insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"));
    Verdict::Refuse(response)
}

pub(super) fn handle(shared: &Shared, request: &ChannelRequest) -> Verdict {
    let path = request.uri.path().to_owned();
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(request.uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let expected = {
        let endpoints = shared.endpoints();
        match endpoints.get(&path) {
            None => return error(StatusCode::NOT_FOUND, "WorkflowNotFound", "The workflow could not be found."),
            Some(endpoint) if endpoint.revoked => {
                return error(StatusCode::NOT_FOUND, "WorkflowNotFound", "The workflow was deleted or disabled.");
            }
            Some(endpoint) => endpoint.secrets.first().cloned().unwrap_or_default(),
        }
    };
    if param("sig").as_deref() != Some(expected.as_str())
        || param("api-version").is_none()
        || param("sv").is_none()
        || param("sp").is_none()
    {
        return error(StatusCode::UNAUTHORIZED, "DirectApiAuthorizationRequired", "The request must be authenticated (sig).");
    }
    if request.body.len() > BODY_BYTES_MAX {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge", "Request Entity too large");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        return error(StatusCode::BAD_REQUEST, "InvalidRequestContent", "The request content is not valid JSON.");
    };
    let Some(attachments) = body.get("attachments").and_then(Value::as_array).filter(|a| !a.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "InvalidRequestContent", "attachments: an array of cards is required");
    };
    let mut problems = Vec::new();
    for (i, attachment) in attachments.iter().enumerate() {
        if attachment.get("contentType").and_then(Value::as_str) != Some("application/vnd.microsoft.card.adaptive") {
            problems.push(format!("/attachments/{i}/contentType: must be application/vnd.microsoft.card.adaptive"));
            continue;
        }
        match attachment.get("content") {
            Some(card) => problems.extend(card_problems(card).into_iter().map(|p| format!("/attachments/{i}/content{p}"))),
            None => problems.push(format!("/attachments/{i}/content: required")),
        }
    }
    if !problems.is_empty() {
        return error(StatusCode::BAD_REQUEST, "InvalidRequestContent", &problems.join("; "));
    }
    let received = Received { headers: request.headers.clone(), body, raw: request.body.to_vec() };
    Verdict::Take { endpoint: path, received, duplicate: false, response: text(StatusCode::ACCEPTED, "") }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_card_with_the_teams_width_validates_and_a_wrong_one_says_where() {
        let card = json!({"type": "AdaptiveCard", "version": "1.4", "msteams": {"width": "Full"},
            "body": [{"type": "TextBlock", "text": "hi", "wrap": true}, {"type": "FactSet", "facts": [{"title": "a", "value": "b"}]}],
            "actions": [{"type": "Action.OpenUrl", "title": "Open", "url": "https://vigil.example/x"}]});
        assert_eq!(card_problems(&card), Vec::<String>::new());
        let bad = json!({"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "hi", "wrap": "yes"}]});
        let problems = card_problems(&bad);
        assert!(problems.iter().any(|p| p.starts_with("/body/0/wrap")), "{problems:?}");
    }
}
