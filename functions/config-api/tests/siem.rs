//! The SIEM feed (`GET /v1/siem/alerts`) and the time-ordered alert list through the router on
//! the in-memory stores: changes come in order at once, the cursor carries a poll on (a
//! caught-up poll reads the last minute again), and cursors that are malformed, another MSP's or another route's are refused
//! with 400 problem+json.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::http::StatusCode;
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use support::{Api, api, assert_problem};
use vigil::alert::AlertHits;
use vigil::ids::{MspId, RecordId, TenantId};

async fn raise(api: &Api, msp: &str, tenant_hour: i64) -> String {
    let msp_id = MspId::parse(msp).unwrap();
    let tenant = TenantId::parse(support::TENANT).unwrap();
    let alert = vigil::contract::sample_alert_for(&msp_id, &tenant, Utc::now() - Duration::hours(tenant_hour));
    let hits = AlertHits::of_records(alert, vec![(RecordId::parse("r1").unwrap(), Utc::now())]);
    let stored = api.state.admin.alerts.record_hits(&hits, Utc::now()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    stored.id.to_string()
}

fn ids(body: &Value) -> Vec<String> {
    body["alerts"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn the_feed_returns_changes_in_order_straight_away_and_its_cursor_carries_on() {
    let api = api().await;
    let (first, second) = (raise(&api, "acme", 3).await, raise(&api, "acme", 2).await);
    raise(&api, "other", 1).await;

    let (status, _, page) = api.acme("GET", "/v1/siem/alerts?limit=1", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&page), vec![first.clone()]);
    assert_eq!(page["has_more"], true);
    assert!(page["alerts"][0]["changed_at"].is_string() && page["alerts"][0]["tenant_id"] == support::TENANT);
    let next = page["next_cursor"].as_str().unwrap().to_owned();
    let page = api.acme("GET", &format!("/v1/siem/alerts?since={next}"), None).await.2;
    assert_eq!(ids(&page), vec![second.clone()], "another MSP's alerts never show");
    assert_eq!(page["has_more"], false);

    // Caught up: the next poll reads the last minute again (the overlap), so recent changes
    // come again with the same version.
    let caught_up = page["next_cursor"].as_str().unwrap().to_owned();
    let overlap = api.acme("GET", &format!("/v1/siem/alerts?since={caught_up}"), None).await.2;
    assert_eq!(ids(&overlap), vec![first.clone(), second.clone()]);
    assert_eq!(overlap["alerts"][0]["version"], 1);

    // A triage is a change: the first alert comes after the second now, as triaged.
    let patched = api.acme("PATCH", &format!("/v1/alerts/{first}"), Some(json!({"status": "InProgress"}))).await;
    assert_eq!(patched.0, StatusCode::OK);
    let after_triage = api.acme("GET", &format!("/v1/siem/alerts?since={}", overlap["next_cursor"].as_str().unwrap()), None).await.2;
    assert_eq!(ids(&after_triage), vec![second, first]);
    assert_eq!(after_triage["alerts"][1]["status"], "InProgress");
    assert_eq!(after_triage["alerts"][1]["version"], 2);
}

#[tokio::test]
async fn a_time_window_poller_reads_the_changes_stored_in_its_window_and_pages_with_the_cursor() {
    let api = api().await;
    let before = chrono::Utc::now() - Duration::seconds(1);
    let (first, second, third) = (raise(&api, "acme", 3).await, raise(&api, "acme", 2).await, raise(&api, "acme", 1).await);
    let after = chrono::Utc::now() + Duration::seconds(1);
    let window = |from: chrono::DateTime<Utc>, to: chrono::DateTime<Utc>| {
        format!(
            "from={}&to={}",
            from.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            to.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )
    };
    let page = api.acme("GET", &format!("/v1/siem/alerts?{}&limit=2", window(before, after)), None).await.2;
    assert_eq!((ids(&page), page["has_more"].clone()), (vec![first.clone(), second.clone()], json!(true)));
    let next = page["next_cursor"].as_str().unwrap();
    let rest = api.acme("GET", &format!("/v1/siem/alerts?{}&limit=2&since={next}", window(before, after)), None).await.2;
    assert_eq!((ids(&rest), rest["has_more"].clone()), (vec![third], json!(false)));
    assert!(ids(&api.acme("GET", &format!("/v1/siem/alerts?{}", window(before - Duration::hours(1), before)), None).await.2).is_empty());
    assert_problem(&api.acme("GET", "/v1/siem/alerts?from=yesterday", None).await, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bad_feed_cursors_and_limits_are_400_problems() {
    let api = api().await;
    let acme_cursor = api.acme("GET", "/v1/siem/alerts", None).await.2["next_cursor"].as_str().unwrap().to_owned();
    let other_cursor =
        api.call("GET", "/v1/siem/alerts", Some(&api.other_token.clone()), None).await.2["next_cursor"].as_str().unwrap().to_owned();
    for query in [
        "since=not-a-cursor".to_owned(),
        format!("since={acme_cursor}00"),
        format!("since={}", &acme_cursor[2..]),
        format!("since={other_cursor}"),
        "limit=0".into(),
        "limit=501".into(),
        "limit=lots".into(),
        "cursor=x".into(),
    ] {
        let response = api.acme("GET", &format!("/v1/siem/alerts?{query}"), None).await;
        assert_problem(&response, StatusCode::BAD_REQUEST);
    }
    let refused = api.acme("GET", &format!("/v1/siem/alerts?since={other_cursor}"), None).await;
    assert!(refused.2["detail"].as_str().unwrap().contains("another"), "{:?}", refused.2);
    assert_problem(&api.call("GET", "/v1/siem/alerts", None, None).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_alert_list_pages_newest_change_first_and_refuses_cursors_it_did_not_make() {
    let api = api().await;
    let oldest = raise(&api, "acme", 3).await;
    let middle = raise(&api, "acme", 2).await;
    let newest = raise(&api, "acme", 1).await;
    let page = api.acme("GET", "/v1/alerts?limit=2", None).await.2;
    assert_eq!(ids(&page), vec![newest, middle]);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let rest = api.acme("GET", &format!("/v1/alerts?limit=2&cursor={cursor}"), None).await.2;
    assert_eq!(ids(&rest), vec![oldest]);
    assert_eq!(rest["next_cursor"], Value::Null);

    let feed_cursor = api.acme("GET", "/v1/siem/alerts", None).await.2["next_cursor"].as_str().unwrap().to_owned();
    let other_cursor = api.call("GET", "/v1/alerts?limit=1", Some(&api.other_token.clone()), None).await.2["next_cursor"].clone();
    assert_eq!(other_cursor, Value::Null, "the other MSP has no alerts");
    for cursor in ["zz".to_owned(), feed_cursor, cursor.replace('3', "4"), oldest_id_as_old_cursor(&rest)] {
        assert_problem(&api.acme("GET", &format!("/v1/alerts?cursor={cursor}"), None).await, StatusCode::BAD_REQUEST);
    }
    let not_mine = api.call("GET", &format!("/v1/alerts?cursor={cursor}"), Some(&api.other_token.clone()), None).await;
    assert_problem(&not_mine, StatusCode::BAD_REQUEST);
}

/// The cursor the list used to hand out (an alert id) is refused now, not misread.
fn oldest_id_as_old_cursor(page: &Value) -> String {
    page["alerts"][0]["id"].as_str().unwrap().to_owned()
}

/// Checks `value` against the subset of JSON Schema the alert schema uses (`$ref` to `$defs`,
/// `type`, `enum`, `required`, `properties`, `additionalProperties`, `items`, `minimum`).
fn conforms(root: &Value, schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.strip_prefix("#/$defs/").ok_or(format!("{path}: unsupported $ref {reference}"))?;
        return conforms(root, &root["$defs"][name], value, path);
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        return Err(format!("{path}: {value} is not one of {options:?}"));
    }
    if let Some(kind) = schema.get("type") {
        let kinds: Vec<&str> =
            kind.as_array().map_or_else(|| vec![kind.as_str().unwrap()], |k| k.iter().map(|k| k.as_str().unwrap()).collect());
        let actual = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        if !kinds.contains(&actual) {
            return Err(format!("{path}: {actual}, the schema says {kinds:?}"));
        }
    }
    if let (Some(minimum), Some(number)) = (schema.get("minimum").and_then(Value::as_i64), value.as_i64())
        && number < minimum
    {
        return Err(format!("{path}: {number} < {minimum}"));
    }
    if let Value::Object(fields) = value {
        for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            if !fields.contains_key(required.as_str().unwrap()) {
                return Err(format!("{path}: {required} is required"));
            }
        }
        for (name, field) in fields {
            let at = format!("{path}.{name}");
            match (schema.get("properties").and_then(|p| p.get(name)), schema.get("additionalProperties")) {
                (Some(property), _) => conforms(root, property, field, &at)?,
                (None, Some(Value::Bool(false))) => return Err(format!("{at}: not in the schema")),
                (None, Some(extra)) if extra.is_object() => conforms(root, extra, field, &at)?,
                (None, _) => {}
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            conforms(root, item_schema, item, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn feed_entries_conform_to_the_published_alert_schema() {
    let schema_file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/schemas/siem-alert.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(schema_file).unwrap()).unwrap();
    let api = api().await;
    let id = raise(&api, "acme", 1).await;
    let triage =
        json!({"status": "Resolved", "assignee": "dana@msp.example", "classification": "TruePositive", "comment": "mailbox cleaned"});
    assert_eq!(api.acme("PATCH", &format!("/v1/alerts/{id}"), Some(triage)).await.0, StatusCode::OK);
    raise(&api, "acme", 2).await;
    let feed = api.acme("GET", "/v1/siem/alerts", None).await.2;
    let entries = feed["alerts"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for entry in entries {
        conforms(&schema, &schema, entry, "$").unwrap();
    }
    let listed = api.acme("GET", "/v1/alerts", None).await.2;
    for alert in listed["alerts"].as_array().unwrap() {
        conforms(&schema, &schema, alert, "$").unwrap();
    }
    // The checker does check: a field the schema does not describe is caught.
    let mut extra = entries[0].clone();
    extra["surprise"] = json!(1);
    assert!(conforms(&schema, &schema, &extra, "$").is_err());
}
