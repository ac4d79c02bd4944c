//! The web console for MSP staff (`/console`): its built assets (`console/dist/`, built by
//! esbuild from `console/src/` and committed) are compiled into this binary and served from the
//! same origin as the API, so a deployment carries everything the page needs and the page loads
//! nothing from anywhere else.
//!
//! Every answer carries a strict Content-Security-Policy (no inline script or style, no other
//! origin, no framing), `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` and
//! `Cache-Control: no-cache` with a strong `ETag` of the content, so a browser revalidates
//! (answered `304` when unchanged) and never runs an old script against a new API. The console
//! needs no token to load: it signs in with an API token that it sends only to `/v1/...`.
//!
//! Routes: `GET /console` and `GET /console/` (the page), `GET /console/{asset}` for
//! `app.js`, `app.css` and `favicon.svg`; any other name is a 404 problem.

use crate::AppState;
use crate::problem::Problem;
use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// The console's Content-Security-Policy: only this origin, no inline code, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// One built file of the console.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: [Asset; 4] = [
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/console/dist/index.html")),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/console/dist/app.js")),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/console/dist/app.css")),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/console/dist/favicon.svg")),
    },
];

/// Each asset's strong ETag (the first 16 bytes of its SHA-256, quoted), computed once.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let digest = Sha256::digest(asset.body);
            let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
            format!("\"{hex}\"")
        })
        .collect()
});

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/console", get(index)).route("/console/", get(index)).route("/console/{asset}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    serve(0, &headers)
}

async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    // `index.html` is reachable as `/console/` only: one address per page.
    match ASSETS.iter().position(|a| a.name == name && name != "index.html") {
        Some(i) => serve(i, &headers),
        None => secured(Problem::not_found("no such console asset").into_response()),
    }
}

fn serve(i: usize, request: &HeaderMap) -> Response {
    let asset = &ASSETS[i];
    let etag = &ETAGS[i];
    let unchanged = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if unchanged { StatusCode::NOT_MODIFIED.into_response() } else { asset.body.into_response() };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secured(response)
}

/// Adds the security headers every console answer carries.
fn secured(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
