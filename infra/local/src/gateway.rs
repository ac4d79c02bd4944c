//! Plays API Gateway's HTTP API: routes each request by the path prefixes the template's
//! `HttpApi` events declare to the function's real axum router. Unmatched paths get the
//! gateway's own 404, as on AWS.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;

/// A route: requests whose path starts with `prefix` go to `router`.
#[derive(Clone)]
pub struct Route {
    pub prefix: String,
    pub router: Router,
}

/// Converts a template path such as `/v1/{proxy+}` to its prefix `/v1/` (the path up to its
/// first parameter). A route declared beside a function's proxy route only to give it its own
/// throttling (`/v1/destinations/{destination_id}/test`) reaches the same function.
#[must_use]
pub fn route_prefix(template_path: &str) -> String {
    template_path.split('{').next().unwrap_or(template_path).to_owned()
}

/// The gateway router.
pub fn gateway(routes: Vec<Route>) -> Router {
    Router::new().fallback(move |request: Request<Body>| {
        let routes = routes.clone();
        async move {
            let path = request.uri().path().to_owned();
            match routes.into_iter().find(|r| path.starts_with(&r.prefix)) {
                Some(route) => route.router.oneshot(request).await.unwrap_or_else(|never| match never {}),
                None => not_found(),
            }
        }
    })
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({"message": "Not Found"}))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_paths_become_prefixes() {
        assert_eq!(route_prefix("/v1/{proxy+}"), "/v1/");
        assert_eq!(route_prefix("/webhooks/{proxy+}"), "/webhooks/");
        assert_eq!(route_prefix("/v1/destinations/{destination_id}/test"), "/v1/destinations/");
    }
}
