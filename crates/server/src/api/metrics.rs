//! `GET /metrics`: the Prometheus text exposition of `emrest_core::metrics`, on the plain HTTP
//! listener by default (`--metrics ADDR` moves it to a listener of its own), behind an optional
//! bearer token.

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use emrest_core::Core;
use std::sync::Arc;

/// Where the metrics are served.
pub const PATH: &str = "/metrics";

/// Who may read the metrics.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// When set, a scrape must send `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

/// Constant-time equality (the token is a secret).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn plain(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{text}\n"),
    )
        .into_response()
}

/// Answer a request for [`PATH`].
pub(super) async fn answer(core: Arc<Core>, access: Access, req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET serves the metrics",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    if let Some(token) = &access.token {
        let sent = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if !sent.is_some_and(|s| same(s.as_bytes(), token.as_bytes())) {
            let mut r = plain(
                StatusCode::UNAUTHORIZED,
                "the metrics need Authorization: Bearer <the --metrics-token>",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"emrest metrics\""),
            );
            return r;
        }
    }
    drop(req);
    // Reading the repository's size touches the disk: off the async workers.
    match tokio::task::spawn_blocking(move || core.metrics_text()).await {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, emrest_core::metrics::CONTENT_TYPE)],
            text,
        )
            .into_response(),
        Err(_) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the metrics could not be read",
        ),
    }
}

/// A router that serves only the metrics (`--metrics ADDR`).
pub fn router(core: Arc<Core>, access: Access) -> axum::Router {
    axum::Router::new().fallback(move |req: Request| {
        let (core, access) = (core.clone(), access.clone());
        async move {
            if req.uri().path() == PATH {
                answer(core, access, req).await
            } else {
                plain(StatusCode::NOT_FOUND, "this listener serves /metrics only")
            }
        }
    })
}
