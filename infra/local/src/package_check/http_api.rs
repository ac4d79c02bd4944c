//! Plays API Gateway's HTTP API in front of function *processes*: each request becomes the
//! payload-format 2.0 event the HTTP API sends (`version`, `routeKey`, `rawPath`,
//! `rawQueryString`, `headers`, `requestContext.http`, `pathParameters`, `body`,
//! `isBase64Encoded`), is routed by the template's `HttpApi` events (most specific path first),
//! invoked through the function's Runtime API, and its answer (`statusCode`, `headers`, `cookies`,
//! `body`, `isBase64Encoded`) becomes the HTTP response. A path no route matches gets the
//! gateway's own 404, as on AWS.

use super::runtime_api::FunctionProcess;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use tokio::sync::Mutex;

/// One template route (`Path`, `Method`) served by a function process.
#[derive(Clone)]
pub struct HttpRoute {
    /// The template's path, e.g. `/v1/{proxy+}`.
    pub path: String,
    /// `ANY`, `GET`, …
    pub method: String,
    pub function: Arc<Mutex<FunctionProcess>>,
}

/// Path parameters when `path` matches the template route `pattern` (`{name}` one segment,
/// `{name+}` the rest), else `None`.
#[must_use]
pub fn match_route(pattern: &str, path: &str) -> Option<Map<String, Value>> {
    let mut params = Map::new();
    let mut rest = path.trim_start_matches('/').split('/').peekable();
    for part in pattern.trim_start_matches('/').split('/') {
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix("+}")) {
            let remainder: Vec<&str> = rest.by_ref().collect();
            if remainder.is_empty() || remainder.iter().all(|s| s.is_empty()) {
                return None;
            }
            params.insert(name.to_owned(), Value::String(remainder.join("/")));
            return Some(params);
        }
        let segment = rest.next()?;
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if segment.is_empty() {
                return None;
            }
            params.insert(name.to_owned(), Value::String(segment.to_owned()));
        } else if part != segment {
            return None;
        }
    }
    rest.next().is_none().then_some(params)
}

/// How specific a route is: literal segments first, then parameters, greedy last.
fn specificity(route: &HttpRoute) -> (usize, usize) {
    let parts: Vec<&str> = route.path.split('/').collect();
    let literal = parts.iter().filter(|p| !p.starts_with('{')).count();
    let greedy = usize::from(route.path.contains("+}"));
    (usize::MAX - greedy, literal + usize::from(route.method != "ANY"))
}

/// The payload-format 2.0 event for one request.
#[must_use]
pub fn http_event(
    route: &HttpRoute,
    params: Map<String, Value>,
    method: &str,
    path: &str,
    query: &str,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Value {
    let mut header_map = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == "cookie" {
            cookies.extend(value.split("; ").map(str::to_owned));
            continue;
        }
        // API Gateway joins repeated headers with commas.
        match header_map.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                header_map.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    let (body, encoded) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body), true),
    };
    let route_key = format!("{} {}", route.method, route.path);
    let user_agent = headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let now = chrono::Utc::now();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": header_map,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "packagecheck",
            "domainName": "packagecheck.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "packagecheck",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": user_agent},
            "requestId": format!("pc-{}", now.timestamp_nanos_opt().unwrap_or_default()),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis()
        },
        "isBase64Encoded": encoded
    });
    if !params.is_empty() {
        event["pathParameters"] = Value::Object(params);
    }
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !query.is_empty() {
        let mut parameters = Map::new();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            parameters.insert(k.into_owned(), Value::String(v.into_owned()));
        }
        event["queryStringParameters"] = Value::Object(parameters);
    }
    if !body.is_empty() {
        event["body"] = Value::String(body);
    }
    event
}

/// The HTTP response for a function's payload-format 2.0 answer.
fn http_response(answer: &[u8]) -> Response {
    let Ok(answer) = serde_json::from_slice::<Value>(answer) else {
        return (StatusCode::BAD_GATEWAY, "the function's answer is not JSON").into_response();
    };
    // A bare value (no statusCode) is a 200 with that JSON, as the HTTP API does.
    let Some(status) = answer.get("statusCode").and_then(Value::as_u64) else {
        return (StatusCode::OK, [("content-type", "application/json")], answer.to_string()).into_response();
    };
    let mut response = Response::builder().status(u16::try_from(status).unwrap_or(502));
    if let Some(headers) = answer.get("headers").and_then(Value::as_object) {
        for (name, value) in headers {
            if let (Ok(name), Some(Ok(value))) = (HeaderName::try_from(name.as_str()), value.as_str().map(HeaderValue::from_str)) {
                response = response.header(name, value);
            }
        }
    }
    for cookie in answer.get("cookies").and_then(Value::as_array).into_iter().flatten() {
        if let Some(Ok(value)) = cookie.as_str().map(HeaderValue::from_str) {
            response = response.header("set-cookie", value);
        }
    }
    let text = answer.get("body").and_then(Value::as_str).unwrap_or_default();
    let body = if answer.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        base64::engine::general_purpose::STANDARD.decode(text).unwrap_or_default()
    } else {
        text.as_bytes().to_vec()
    };
    response.body(Body::from(body)).unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

/// The gateway router over `routes`.
pub fn gateway(mut routes: Vec<HttpRoute>) -> Router {
    routes.sort_by_key(|r| std::cmp::Reverse(specificity(r)));
    let routes = Arc::new(routes);
    Router::new().fallback(move |request: Request<Body>| {
        let routes = routes.clone();
        async move {
            let (parts, body) = request.into_parts();
            let path = parts.uri.path().to_owned();
            let query = parts.uri.query().unwrap_or_default().to_owned();
            let method = parts.method.as_str().to_owned();
            let Some((route, params)) = routes
                .iter()
                .filter(|r| r.method == "ANY" || r.method.eq_ignore_ascii_case(&method))
                .find_map(|r| match_route(&r.path, &path).map(|p| (r, p)))
            else {
                return (StatusCode::NOT_FOUND, [("content-type", "application/json")], r#"{"message":"Not Found"}"#).into_response();
            };
            let Ok(body) = axum::body::to_bytes(body, 10 * 1024 * 1024).await else {
                return (StatusCode::PAYLOAD_TOO_LARGE, r#"{"message":"Request Entity Too Large"}"#).into_response();
            };
            let event = http_event(route, params, &method, &path, &query, &parts.headers, &body);
            let answer = route.function.lock().await.invoke(&event).await;
            match answer {
                Ok(answer) => http_response(&answer),
                Err(error) => {
                    // The check's own output: the caller sees only the 500, as API Gateway's would.
                    eprintln!("package-check: gateway: {error}");
                    (StatusCode::INTERNAL_SERVER_ERROR, [("content-type", "application/json")], r#"{"message":"Internal Server Error"}"#)
                        .into_response()
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::match_route;

    #[test]
    fn a_greedy_route_takes_the_rest_of_the_path() {
        let params = match_route("/v1/{proxy+}", "/v1/tenants/abc/streams").expect("matches");
        assert_eq!(params["proxy"], "tenants/abc/streams");
        assert!(match_route("/v1/{proxy+}", "/v1/").is_none());
        assert!(match_route("/v1/{proxy+}", "/webhooks/x").is_none());
    }

    #[test]
    fn a_parameter_takes_exactly_one_segment() {
        let params = match_route("/v1/destinations/{destination_id}/test", "/v1/destinations/cw/test").expect("matches");
        assert_eq!(params["destination_id"], "cw");
        assert!(match_route("/v1/destinations/{destination_id}/test", "/v1/destinations/cw/test/more").is_none());
        assert!(match_route("/v1/destinations/{destination_id}/test", "/v1/destinations//test").is_none());
    }
}
