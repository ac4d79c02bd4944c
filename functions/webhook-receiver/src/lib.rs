//! webhook-receiver: the endpoint Microsoft (and later PSA vendors) call back. In this first
//! slice it answers a health route; notifications arrive in a later capability. Unknown routes
//! answer problem+json, never a silent 200.

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// The router, callable in tests without a network.
pub fn app() -> Router {
    Router::new()
        .route("/webhooks/health", get(|| async { axum::Json(serde_json::json!({"status": "ok", "service": "webhook-receiver"})) }))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "application/problem+json")],
                axum::Json(serde_json::json!({"type": "https://vigil.dev/problems/not-found", "title": "Not found", "status": 404, "detail": "no such webhook route"})),
            )
                .into_response()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    #[tokio::test]
    async fn health_answers_ok_and_unknown_routes_answer_problem_json() {
        let ok = app().oneshot(Request::get("/webhooks/health").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        let missing = app().oneshot(Request::post("/webhooks/o365").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert_eq!(missing.headers()[header::CONTENT_TYPE], "application/problem+json");
    }
}
