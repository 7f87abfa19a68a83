//! An area served by an axum service: `router(&UI)` answers `GET`/`HEAD
//! /ui/<area>/manifest.json` and `/ui/<area>/<hash>/<path>`; merge it into the service's
//! routes. The files are public (no caller check): they hold no data, only the code that asks
//! the API for it.

use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::{Area, Reply};

/// The routes of `area`, for any router state.
pub fn router<S>(area: &'static Area) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let path = format!("/ui/{}/{{*rest}}", area.name);
    Router::new().route(
        &path,
        get(
            move |Path(rest): Path<String>, headers: HeaderMap| async move {
                let if_none_match = headers
                    .get(header::IF_NONE_MATCH)
                    .and_then(|v| v.to_str().ok());
                area.serve(&rest, if_none_match)
            },
        ),
    )
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        for (name, value) in self.headers {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use axum::body::to_bytes;
    use axum::http::Request;
    use tower::ServiceExt;

    use crate::File;

    static AREA: Area = Area {
        name: "demo",
        hash: "00000000000000aa",
        etag: "\"00000000000000aa\"",
        manifest: r#"{"area":"demo"}"#,
        files: &[File {
            path: "index.js",
            content_type: "text/javascript; charset=utf-8",
            etag: "\"e\"",
            bytes: b"export {}",
        }],
    };

    async fn get(path: &str, if_none_match: Option<&str>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut request = Request::get(path);
        if let Some(tag) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        let response = router::<()>(&AREA)
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let body = to_bytes(body, 1 << 20).await.unwrap().to_vec();
        (parts.status, parts.headers, body)
    }

    #[tokio::test]
    async fn serves_the_manifest_and_hashed_files_with_their_headers() {
        let (status, headers, body) = get("/ui/demo/manifest.json", None).await;
        assert_eq!(
            (status, body.as_slice()),
            (StatusCode::OK, &br#"{"area":"demo"}"#[..])
        );
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            crate::CONTENT_SECURITY_POLICY
        );

        let (status, headers, body) = get("/ui/demo/00000000000000aa/index.js", None).await;
        assert_eq!(
            (status, body.as_slice()),
            (StatusCode::OK, &b"export {}"[..])
        );
        assert_eq!(headers[header::CACHE_CONTROL], crate::IMMUTABLE);
        assert_eq!(headers[header::CONTENT_LENGTH], "9");
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );

        let (status, _, body) = get("/ui/demo/00000000000000aa/index.js", Some("\"e\"")).await;
        assert_eq!((status, body.len()), (StatusCode::NOT_MODIFIED, 0));
        let (status, headers, _) = get("/ui/demo/ffffffffffffffff/index.js", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    }
}
