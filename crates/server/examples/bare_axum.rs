//! The baseline of bench/api.sh: a minimal axum server on the same runtime settings as emrest,
//! answering every GET with a fixed body the size of an emrest task, so that the benchmark
//! measures what emrest adds (session check, catalog read, encoding) over HTTP itself.
//!
//! Usage: bare_axum <host:port>

use axum::http::header;
use axum::response::IntoResponse;
use axum::Router;

const BODY: &str = r#"{"TaskId":"task-1","State":"Finished","Operation":"RestoreVm","Result":{"Success":true,"Message":"Restore completed"},"Links":[{"Rel":"Related","Href":"http://127.0.0.1:9399/api/restoreSessions/00000000-0000-0000-0000-000000000000?format=Entity","Name":null,"Type":"RestoreSession"}],"Href":"http://127.0.0.1:9399/api/tasks/task-1","Type":"Task"}"#;

async fn fixed() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], BODY)
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
