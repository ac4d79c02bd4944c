//! The web console as the config API serves it: its page and assets without a token, each with
//! the strict Content-Security-Policy and the other security headers, revalidated by ETag, the
//! page free of inline script and style and of any other origin, and an unknown asset a 404
//! problem.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use config_api::app;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn get(api: &support::Api, path: &str, if_none_match: Option<&str>) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::builder().method("GET").uri(path);
    if let Some(tag) = if_none_match {
        request = request.header(header::IF_NONE_MATCH, tag);
    }
    let response = app(api.state.clone()).oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.into_body().collect().await.unwrap().to_bytes().to_vec())
}

fn header_of<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or_default()
}

fn assert_secured(headers: &HeaderMap) {
    let csp = header_of(headers, "content-security-policy");
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(directive), "CSP {csp:?} lacks {directive:?}");
    }
    assert!(!csp.contains("unsafe"), "no unsafe-inline or unsafe-eval: {csp}");
    assert_eq!(header_of(headers, "x-content-type-options"), "nosniff");
    assert_eq!(header_of(headers, "x-frame-options"), "DENY");
    assert_eq!(header_of(headers, "referrer-policy"), "no-referrer");
}

#[tokio::test]
async fn the_console_page_is_served_without_a_token_under_a_strict_policy() {
    let api = support::api().await;
    for path in ["/console", "/console/"] {
        let (status, headers, body) = get(&api, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(header_of(&headers, "content-type"), "text/html; charset=utf-8");
        assert_eq!(header_of(&headers, "cache-control"), "no-cache");
        assert_secured(&headers);
        let html = String::from_utf8(body).unwrap();
        assert!(html.contains(r#"<script defer src="/console/app.js"></script>"#), "{html}");
        assert!(html.contains(r#"<link rel="stylesheet" href="/console/app.css">"#), "{html}");
    }
}

#[tokio::test]
async fn the_page_has_no_inline_script_or_style_and_names_no_other_origin() {
    let api = support::api().await;
    let html = String::from_utf8(get(&api, "/console", None).await.2).unwrap();
    assert_eq!(html.matches("<script").count(), 1, "one script, the bundle: {html}");
    assert!(!html.contains("<style"), "{html}");
    assert!(!html.contains(" style="), "{html}");
    assert!(!html.contains(" on"), "no inline event handlers: {html}");
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"), "{html}");
    for asset in ["/console/app.js", "/console/app.css"] {
        let body = String::from_utf8(get(&api, asset, None).await.2).unwrap();
        assert!(
            !body.contains("https://fonts.") && !body.contains("cdn.jsdelivr") && !body.contains("unpkg.com"),
            "{asset} loads from elsewhere"
        );
    }
}

#[tokio::test]
async fn each_asset_has_its_type_and_is_revalidated_by_etag() {
    let api = support::api().await;
    for (path, content_type) in [
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/app.css", "text/css; charset=utf-8"),
        ("/console/favicon.svg", "image/svg+xml"),
    ] {
        let (status, headers, body) = get(&api, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!body.is_empty(), "{path}");
        assert_eq!(header_of(&headers, "content-type"), content_type, "{path}");
        assert_secured(&headers);
        let etag = header_of(&headers, "etag").to_owned();
        assert!(etag.starts_with('"') && etag.len() == 34, "{path}: {etag}");
        let (again, again_headers, again_body) = get(&api, path, Some(&etag)).await;
        assert_eq!(again, StatusCode::NOT_MODIFIED, "{path}");
        assert!(again_body.is_empty(), "{path}");
        assert_eq!(header_of(&again_headers, "etag"), etag);
        let (stale, _, stale_body) = get(&api, path, Some("\"0000\"")).await;
        assert_eq!(stale, StatusCode::OK, "another tag gets the content: {path}");
        assert_eq!(stale_body, body);
    }
}

#[tokio::test]
async fn an_unknown_asset_is_a_404_problem_under_the_same_policy() {
    let api = support::api().await;
    for path in ["/console/nope.js", "/console/index.html", "/console/..%2Fopenapi.json"] {
        let (status, headers, _) = get(&api, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(header_of(&headers, "content-type"), "application/problem+json", "{path}");
        assert_secured(&headers);
    }
}
