//! Slack incoming webhooks: `POST /services/{team}/{bot}/{secret}`; an unknown or removed
//! webhook answers `404 no_service`. The body needs `text` or `blocks` (`400 no_text`); blocks
//! are checked against Block Kit's rules (`infra/schemas`' summary of Slack's docs: at most 50
//! blocks; header `plain_text` ≤ 150; section `text` 1–3,000 or ≤ 10 `fields` of ≤ 2,000;
//! context ≤ 10 elements; actions ≤ 25 elements, buttons with `plain_text` ≤ 75, `url` ≤
//! 3,000, `action_id` ≤ 255; `divider`; text objects `plain_text` or `mrkdwn`), a violation
//! answering `400 invalid_blocks`, and all block text together over 12,000 characters
//! `400 msg_blocks_too_long`. A `text` over 40,000 characters is truncated and still posted.
//! Success answers `200 ok` (text/plain).

use super::{ChannelRequest, Received, Shared, Verdict, text};
use axum::http::StatusCode;
use serde_json::Value;

/// Slack truncates `text` above this many characters.
pub const TEXT_CHARS_MAX: usize = 40_000;
/// The combined block text above which Slack refuses a message (observed, undocumented).
pub const BLOCK_TEXT_CHARS_MAX: usize = 12_000;

pub(super) fn create_webhook(shared: &Shared) -> String {
    let path = format!("/services/T0SIM{:04}/B0SIM{:04}/{}", shared.next_id(), shared.next_id(), &shared.token()[..24]);
    shared.add_endpoint(path.clone(), Vec::new());
    shared.url(&path)
}

fn chars(value: &Value) -> usize {
    value.as_str().map_or(0, |s| s.chars().count())
}

/// Checks a text object; adds its length to `total`.
fn text_object(value: &Value, at: &str, max: usize, plain_only: bool, total: &mut usize) -> Result<(), String> {
    let kind = value.get("type").and_then(Value::as_str).unwrap_or_default();
    if !(kind == "plain_text" || (!plain_only && kind == "mrkdwn")) {
        return Err(format!("{at}/type: must be {}", if plain_only { "plain_text" } else { "plain_text or mrkdwn" }));
    }
    let n = chars(value.get("text").unwrap_or(&Value::Null));
    if !(1..=max).contains(&n) {
        return Err(format!("{at}/text: must be 1 to {max} characters (has {n})"));
    }
    *total += n;
    Ok(())
}

/// Checks `blocks` against Block Kit's rules; `Err(code)` as Slack would answer.
///
/// # Errors
/// `invalid_blocks: where` or `msg_blocks_too_long`.
pub fn block_problems(blocks: &[Value]) -> Result<(), String> {
    if blocks.len() > 50 {
        return Err("invalid_blocks: at most 50 blocks".into());
    }
    let mut total = 0;
    for (i, block) in blocks.iter().enumerate() {
        let at = format!("/blocks/{i}");
        let check = |result: Result<(), String>| result.map_err(|why| format!("invalid_blocks: {why}"));
        if chars(block.get("block_id").unwrap_or(&Value::Null)) > 255 {
            return Err(format!("invalid_blocks: {at}/block_id: at most 255 characters"));
        }
        match block.get("type").and_then(Value::as_str) {
            Some("header") => check(text_object(block.get("text").unwrap_or(&Value::Null), &format!("{at}/text"), 150, true, &mut total))?,
            Some("section") => {
                let text = block.get("text");
                let fields = block.get("fields").and_then(Value::as_array);
                if text.is_none() && fields.is_none() {
                    return Err(format!("invalid_blocks: {at}: a section needs text or fields"));
                }
                if let Some(text) = text {
                    check(text_object(text, &format!("{at}/text"), 3_000, false, &mut total))?;
                }
                if let Some(fields) = fields {
                    if fields.len() > 10 {
                        return Err(format!("invalid_blocks: {at}/fields: at most 10"));
                    }
                    for (j, field) in fields.iter().enumerate() {
                        check(text_object(field, &format!("{at}/fields/{j}"), 2_000, false, &mut total))?;
                    }
                }
            }
            Some("context") => {
                let elements = block.get("elements").and_then(Value::as_array).ok_or(format!("invalid_blocks: {at}/elements: required"))?;
                if elements.is_empty() || elements.len() > 10 {
                    return Err(format!("invalid_blocks: {at}/elements: 1 to 10"));
                }
                for (j, element) in elements.iter().enumerate() {
                    check(text_object(element, &format!("{at}/elements/{j}"), 3_000, false, &mut total))?;
                }
            }
            Some("actions") => {
                let elements = block.get("elements").and_then(Value::as_array).ok_or(format!("invalid_blocks: {at}/elements: required"))?;
                if elements.is_empty() || elements.len() > 25 {
                    return Err(format!("invalid_blocks: {at}/elements: 1 to 25"));
                }
                for (j, button) in elements.iter().enumerate() {
                    let at = format!("{at}/elements/{j}");
                    if button.get("type").and_then(Value::as_str) != Some("button") {
                        return Err(format!("invalid_blocks: {at}/type: only buttons are simulated"));
                    }
                    check(text_object(button.get("text").unwrap_or(&Value::Null), &format!("{at}/text"), 75, true, &mut total))?;
                    if chars(button.get("url").unwrap_or(&Value::Null)) > 3_000
                        || chars(button.get("action_id").unwrap_or(&Value::Null)) > 255
                    {
                        return Err(format!("invalid_blocks: {at}: url at most 3000, action_id at most 255 characters"));
                    }
                }
            }
            Some("divider") => {}
            other => return Err(format!("invalid_blocks: {at}/type: {other:?} is not a block this simulator knows")),
        }
    }
    if total > BLOCK_TEXT_CHARS_MAX {
        return Err("msg_blocks_too_long".into());
    }
    Ok(())
}

pub(super) fn handle(shared: &Shared, request: &ChannelRequest) -> Verdict {
    let path = request.uri.path().to_owned();
    {
        let endpoints = shared.endpoints();
        match endpoints.get(&path) {
            Some(endpoint) if !endpoint.revoked => {}
            _ => return Verdict::Refuse(text(StatusCode::NOT_FOUND, "no_service")),
        }
    }
    let Ok(mut body) = serde_json::from_slice::<Value>(&request.body) else {
        return Verdict::Refuse(text(StatusCode::BAD_REQUEST, "invalid_payload"));
    };
    let has_text = body.get("text").and_then(Value::as_str).is_some_and(|t| !t.trim().is_empty());
    let blocks = body.get("blocks").and_then(Value::as_array).cloned();
    if !has_text && blocks.as_ref().is_none_or(Vec::is_empty) {
        return Verdict::Refuse(text(StatusCode::BAD_REQUEST, "no_text"));
    }
    if let Some(blocks) = &blocks
        && let Err(code) = block_problems(blocks)
    {
        return Verdict::Refuse(text(StatusCode::BAD_REQUEST, &code));
    }
    if let Some(long) = body.get("text").and_then(Value::as_str).filter(|t| t.chars().count() > TEXT_CHARS_MAX) {
        body["text"] = Value::String(long.chars().take(TEXT_CHARS_MAX).collect());
    }
    let received = Received { headers: request.headers.clone(), body, raw: request.body.to_vec() };
    Verdict::Take { endpoint: path, received, duplicate: false, response: text(StatusCode::OK, "ok") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn block_kit_limits_are_enforced_with_slacks_codes() {
        let header = |n: usize| json!({"type": "header", "text": {"type": "plain_text", "text": "h".repeat(n)}});
        assert_eq!(block_problems(&[header(150)]), Ok(()));
        assert!(block_problems(&[header(151)]).unwrap_err().starts_with("invalid_blocks: /blocks/0/text/text"));
        let section = json!({"type": "section", "text": {"type": "mrkdwn", "text": "s".repeat(3_000)}});
        assert_eq!(block_problems(&vec![section.clone(); 5]).unwrap_err(), "msg_blocks_too_long");
        assert!(block_problems(&vec![json!({"type": "divider"}); 51]).is_err());
        let mrkdwn_header = json!({"type": "header", "text": {"type": "mrkdwn", "text": "x"}});
        assert!(block_problems(&[mrkdwn_header]).is_err());
    }
}
