//! Registering routes: every path is served with and without its trailing slash, as the
//! original app's clients use both. This is the one place that decides it.

use axum::routing::MethodRouter;
use axum::Router;

/// [`Router::route`] for `path` and `path/` at once.
pub trait RouteBoth<S> {
    /// Serves `handler` at `path` and at `path/`.
    fn route_both(self, path: &str, handler: MethodRouter<S>) -> Self;
}

impl<S: Clone + Send + Sync + 'static> RouteBoth<S> for Router<S> {
    fn route_both(self, path: &str, handler: MethodRouter<S>) -> Self {
        let path = path.trim_end_matches('/');
        self.route(path, handler.clone())
            .route(&format!("{path}/"), handler)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn both_spellings_reach_the_handler() {
        let app: Router = Router::new().route_both("/things/", get(|| async { "ok" }));
        for path in ["/things", "/things/"] {
            let resp = app
                .clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
        }
    }
}
