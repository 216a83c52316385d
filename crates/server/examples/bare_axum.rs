//! The baseline of bench/api.sh: a minimal axum server on the same runtime settings as emrest,
//! answering every GET with a fixed body the size of an emrest task, so that the benchmark
//! measures what emrest adds (session check, catalog read, encoding) over HTTP itself.
//!
//! `GET /bytes/<N>` answers a fixed body of N bytes instead (at most 4 MiB, shared, never
//! copied): the cost of shipping as many bytes as an emrest answer, measured beside it.
//!
//! Usage: bare_axum <host:port>

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::sync::OnceLock;

const BODY: &str = r#"{"TaskId":"task-1","State":"Finished","Operation":"RestoreVm","Result":{"Success":true,"Message":"Restore completed"},"Links":[{"Rel":"Related","Href":"http://127.0.0.1:9399/api/restoreSessions/00000000-0000-0000-0000-000000000000?format=Entity","Name":null,"Type":"RestoreSession"}],"Href":"http://127.0.0.1:9399/api/tasks/task-1","Type":"Task"}"#;

/// Largest body `/bytes/<N>` answers.
const MAX_BYTES: usize = 4 << 20;

/// The bytes every `/bytes/<N>` answer is a slice of.
fn filler() -> &'static Bytes {
    static FILLER: OnceLock<Bytes> = OnceLock::new();
    FILLER.get_or_init(|| Bytes::from(vec![b'x'; MAX_BYTES]))
}

async fn fixed(req: Request) -> Response {
    let sized = req
        .uri()
        .path()
        .strip_prefix("/bytes/")
        .map(str::parse::<usize>);
    match sized {
        None => ([(header::CONTENT_TYPE, "application/json")], BODY).into_response(),
        Some(Ok(n)) if n <= MAX_BYTES => (
            [(header::CONTENT_TYPE, "application/json")],
            filler().slice(..n),
        )
            .into_response(),
        Some(_) => (StatusCode::BAD_REQUEST, "size must be 0..=4194304").into_response(),
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9390".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        eprintln!("bare axum on {addr}");
        axum::serve(listener, Router::new().fallback(fixed)).await
    })
}
