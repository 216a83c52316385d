//! The Enterprise Manager REST API over HTTP(S): request parsing, authentication, content
//! negotiation, and the mapping of `core` records and errors to the wire. Handlers are thin:
//! extract, one `core` call, a representation.

mod api;
mod convert;
mod endpoint;
mod ids;
mod portal;
mod reply;
mod serve;
pub mod tls;

pub use api::faults::spec_from_json as fault_spec_from_json;
pub use api::metrics::Access as MetricsAccess;
pub use api::{ApiOptions, CacheStats, ReplyCache};
pub use serve::{ConnInfo, ConnLimits};

use emrest_core::Core;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// How the server listens.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Plain HTTP listener (loopback by default).
    pub http: Option<SocketAddr>,
    /// HTTPS listener.
    pub https: Option<SocketAddr>,
    /// Operator's certificate and key (PEM); a self-signed pair otherwise.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Accept XML request elements in any order.
    pub lenient_xml_order: bool,
    /// Default a restore request's 1/1 members when they are left out.
    pub lenient_restore_spec: bool,
    /// Timeouts and the connection limit of the listeners.
    pub limits: serve::ConnLimits,
    /// Where `GET /metrics` is served.
    pub metrics: MetricsConfig,
}

/// Where `GET /metrics` is served, and who may read it.
#[derive(Clone, Debug, Default)]
pub struct MetricsConfig {
    pub listen: MetricsListen,
    /// When set, a scrape must send `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

/// Which listener serves `GET /metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MetricsListen {
    /// The plain HTTP listener (loopback by default).
    #[default]
    Http,
    /// A listener of its own.
    Addr(SocketAddr),
    /// Nowhere.
    Off,
}

/// Why the server could not start.
#[derive(thiserror::Error, Debug)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// The API and the restore portal as an axum router (tests drive it directly).
pub fn router(core: Arc<Core>, options: ApiOptions) -> axum::Router {
    router_with_cache(core, options).0
}

/// [`router`], with its reply cache (tests count its hits).
pub fn router_with_cache(core: Arc<Core>, options: ApiOptions) -> (axum::Router, Arc<ReplyCache>) {
    let (api, cache) = api::router(core, options);
    let api = api.layer(axum::middleware::from_fn(portal::without_browser_challenge));
    (portal::router().merge(api), cache)
}

/// Serve until `shutdown` resolves.
pub async fn run(
    core: Arc<Core>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let options = ApiOptions {
        lenient_xml_order: config.lenient_xml_order,
        lenient_restore_spec: config.lenient_restore_spec,
        metrics: None,
        stream_collections_above: None,
    };
    let access = api::metrics::Access {
        token: config.metrics.token.clone(),
    };
    let app = router(core.clone(), options.clone());
    // The plain HTTP listener serves the metrics too, unless they are moved or off.
    let http_app = if config.metrics.listen == MetricsListen::Http {
        router(
            core.clone(),
            ApiOptions {
                metrics: Some(access.clone()),
                ..options
            },
        )
    } else {
        app.clone()
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    let limits = config.limits;
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    if let Some(addr) = config.https {
        let tls = tls::setup(
            core.data_dir(),
            config.tls_cert.as_deref(),
            config.tls_key.as_deref(),
        )?;
        if tls.generated {
            tracing::info!("generated a self-signed TLS certificate in the data folder");
        }
        tracing::info!("TLS certificate SHA-256 fingerprint: {}", tls.fingerprint);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        tracing::info!("serving HTTPS on https://{addr}/api");
        tasks.push(tokio::spawn(serve::accept_loop(
            listener,
            app.clone(),
            Some(tls.config),
            limits,
            slots.clone(),
            wait_for(rx.clone()),
        )));
    }
    if let Some(addr) = config.http {
        if !addr.ip().is_loopback() {
            tracing::warn!("plain HTTP is listening on {addr}, beyond this machine: credentials and session IDs cross the network unencrypted");
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        tracing::info!("serving HTTP on http://{addr}/api");
        if config.metrics.listen == MetricsListen::Http {
            tracing::info!("serving metrics on http://{addr}/metrics");
        }
        tasks.push(tokio::spawn(serve::accept_loop(
            listener,
            http_app.clone(),
            None,
            limits,
            slots.clone(),
            wait_for(rx.clone()),
        )));
    }
    if let MetricsListen::Addr(addr) = config.metrics.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        tracing::info!("serving metrics on http://{addr}/metrics");
        tasks.push(tokio::spawn(serve::accept_loop(
            listener,
            api::metrics::router(core.clone(), access),
            None,
            limits,
            slots.clone(),
            wait_for(rx.clone()),
        )));
    }
    shutdown.await;
    tracing::info!("shutting down");
    let _ = tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}

async fn wait_for(mut rx: tokio::sync::watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// What the server reads from a request before any handler runs, for the `request_edges` fuzz
/// target (fuzz/) and its corpus replay: the path (`Endpoint` and its template, methods and
/// permission), the query string, the `Authorization: Basic` credentials, and the session ID
/// from the `X-RestSvcSessionId` header or the cookie. Whatever the bytes, none of it panics.
#[doc(hidden)]
pub fn read_request_edges(
    path: &str,
    query: &str,
    authorization: &[u8],
    session: &[u8],
    cookie: &[u8],
) {
    use axum::http::{header, HeaderMap, HeaderValue, Method};
    if let Some(e) = endpoint::Endpoint::parse(path) {
        let _ = e.template();
        let _ = e.methods();
        for m in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
            let _ = e.permission(&m);
        }
    }
    let q = endpoint::Query::parse(Some(query));
    let _ = q.get("format");
    let mut headers = HeaderMap::new();
    for (name, bytes) in [
        (header::AUTHORIZATION, authorization),
        (header::COOKIE, cookie),
        (
            header::HeaderName::from_static("x-restsvcsessionid"),
            session,
        ),
    ] {
        if let Ok(v) = HeaderValue::from_bytes(bytes) {
            headers.insert(name, v);
        }
    }
    let _ = api::logon::basic_credentials(&headers);
    let _ = api::session_id(&headers);
}
