//! Listeners: HTTP and HTTPS accept loops feeding one axum router through hyper, so each request
//! knows the scheme it came in on (links use the request's own scheme, host and port).

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::Service;

/// How long and how many connections the listeners keep.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    /// A request's headers must arrive within this, counted from when the server starts
    /// waiting for them: on a new connection, and between the requests of a kept-alive one
    /// (so it is the idle timeout too). `--header-timeout-secs`.
    pub header_read_timeout: Duration,
    /// A TLS handshake must end within this. `--tls-handshake-timeout-secs`.
    pub tls_handshake_timeout: Duration,
    /// Connections served at once, over both listeners; more are accepted and closed at once,
    /// so the process never runs out of file descriptors. `--max-connections`.
    pub max_connections: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            header_read_timeout: Duration::from_secs(30),
            tls_handshake_timeout: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

/// Which listener a request arrived on.
#[derive(Clone, Copy, Debug)]
pub struct ConnInfo {
    pub https: bool,
    pub local: SocketAddr,
    pub peer: SocketAddr,
}

/// Accept connections on `listener` until `shutdown` resolves; `slots` holds one permit per
/// connection that may be served at once.
pub async fn accept_loop(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: ConnLimits,
    slots: Arc<Semaphore>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::pin!(shutdown);
    let mut last_shed_warning: Option<std::time::Instant> = None;
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            // Shed the connection rather than run out of descriptors; say so once a minute.
            drop(stream);
            if last_shed_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                tracing::warn!(
                    "{} connections are open, the limit (--max-connections): closing new ones until some end",
                    limits.max_connections
                );
                last_shed_warning = Some(std::time::Instant::now());
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let local = match stream.local_addr() {
            Ok(a) => a,
            Err(_) => continue,
        };
        let info = ConnInfo {
            https: acceptor.is_some(),
            local,
            peer,
        };
        let router = router.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let svc =
                tower::service_fn(move |mut req: axum::http::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(info);
                    let mut r = router.clone();
                    async move { r.call(req).await }
                });
            let svc = TowerToHyperService::new(svc);
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let result = match acceptor {
                Some(a) => {
                    match tokio::time::timeout(limits.tls_handshake_timeout, a.accept(stream)).await
                    {
                        Ok(Ok(tls)) => builder.serve_connection(TokioIo::new(tls), svc).await,
                        Ok(Err(e)) => {
                            tracing::debug!("TLS handshake with {peer} failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake with {peer} timed out");
                            return;
                        }
                    }
                }
                None => builder.serve_connection(TokioIo::new(stream), svc).await,
            };
            if let Err(e) = result {
                tracing::debug!("connection from {peer}: {e}");
            }
        });
    }
}
