//! Responses: a status, an optional body in the negotiated format, extra headers; and the one
//! exhaustive mapping from `core` errors to status codes and Error bodies.

use axum::body::Bytes;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use emrest_core::CoreError;
use emrest_wire::{encode, Format, Representation};

/// What a handler answers.
pub struct Reply {
    pub status: StatusCode,
    pub format: Format,
    pub body: Payload,
    pub headers: Vec<(HeaderName, String)>,
}

/// What follows a reply's head.
pub enum Payload {
    /// No body (201 and 204 answers).
    None,
    /// Shared bytes: an answer from the reply cache is a reference count, not a copy.
    Bytes(Bytes),
    /// A body produced while it is sent (a collection too long to hold).
    Stream(axum::body::Body),
}

impl Reply {
    /// A representation with a status.
    pub fn rep(status: StatusCode, format: Format, rep: &impl Representation) -> Reply {
        Reply {
            status,
            format,
            body: Payload::Bytes(Bytes::from(encode(rep, format))),
            headers: Vec::new(),
        }
    }

    /// 200 with a representation.
    pub fn ok(format: Format, rep: &impl Representation) -> Reply {
        Reply::rep(StatusCode::OK, format, rep)
    }

    /// An encoded body in `format` (the reply cache's answers).
    pub fn bytes(status: StatusCode, format: Format, body: Bytes) -> Reply {
        Reply {
            status,
            format,
            body: Payload::Bytes(body),
            headers: Vec::new(),
        }
    }

    /// A status without a body (204).
    pub fn empty(status: StatusCode, format: Format) -> Reply {
        Reply {
            status,
            format,
            body: Payload::None,
            headers: Vec::new(),
        }
    }

    /// An Error body.
    pub fn error(status: StatusCode, format: Format, message: impl Into<String>) -> Reply {
        let err = emrest_wire::Error::new(status.as_u16(), message);
        let mut r = Reply::rep(status, format, &err);
        if status == StatusCode::UNAUTHORIZED {
            // http_authentication.md: the server asks for Basic credentials.
            r.headers
                .push((header::WWW_AUTHENTICATE, "Basic realm=\"RestSvc\"".into()));
        }
        r
    }

    /// 200 with a body that `chunks` yields while it is sent: a collection too long to hold
    /// (see `api::stream_collection`). No Content-Length; HTTP/1.1 sends it chunked.
    pub fn streamed(
        format: Format,
        chunks: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
    ) -> Reply {
        Reply {
            status: StatusCode::OK,
            format,
            body: Payload::Stream(axum::body::Body::new(Chunks(chunks))),
            headers: Vec::new(),
        }
    }

    /// Plain text (emrest extensions that are not representations).
    pub fn text(status: StatusCode, format: Format, text: String) -> Reply {
        Reply {
            status,
            format,
            body: Payload::Bytes(Bytes::from(text.into_bytes())),
            headers: vec![(header::CONTENT_TYPE, "text/plain; charset=utf-8".into())],
        }
    }

    /// Add a header.
    pub fn with_header(mut self, name: HeaderName, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }
}

/// Map a domain error to a status and an Error body. Internal faults are 5xx, never 400; their
/// details go to the log, the client gets a plain sentence.
pub fn core_error(format: Format, err: CoreError) -> Reply {
    let (status, message) = match &err {
        CoreError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m.clone()),
        CoreError::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone()),
        CoreError::TooManyAttempts { retry_after } => {
            let secs = retry_after.as_secs().max(1);
            return Reply::error(StatusCode::TOO_MANY_REQUESTS, format, err.to_string())
                .with_header(header::RETRY_AFTER, secs.to_string());
        }
        CoreError::NotFound { .. } => (StatusCode::NOT_FOUND, err.to_string()),
        CoreError::Invalid { .. } => (StatusCode::BAD_REQUEST, err.to_string()),
        // http_response_codes.md lists no 409; a request that clashes with running work is a
        // request the server cannot take now.
        CoreError::Conflict(m) => (StatusCode::BAD_REQUEST, m.clone()),
        CoreError::Busy {
            message,
            retry_after,
        } => {
            let secs = retry_after.as_secs().max(1);
            return Reply::error(StatusCode::SERVICE_UNAVAILABLE, format, message.clone())
                .with_header(header::RETRY_AFTER, secs.to_string());
        }
        CoreError::Repo(_)
        | CoreError::Platform(_)
        | CoreError::Catalog(_)
        | CoreError::Internal(_) => {
            // STYLE.md: the client gets a plain sentence; the details (paths, SQLite messages)
            // go to the log, under a reference the client can quote to the operator.
            let reference = uuid::Uuid::new_v4().simple().to_string();
            let reference = &reference[..12];
            tracing::error!("internal error (reference {reference}): {err}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "The server failed to process the request; the server log has the details under reference {reference}"
                ),
            )
        }
    };
    Reply::error(status, format, message)
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let Reply {
            status,
            format,
            body,
            headers,
        } = self;
        let has_body = !matches!(body, Payload::None);
        let mut resp = match body {
            Payload::None => status.into_response(),
            Payload::Bytes(b) => (status, b).into_response(),
            Payload::Stream(s) => (status, s).into_response(),
        };
        let h = resp.headers_mut();
        // A body-less answer (201 of post_security_accounts.md: "Response Body: None", 204)
        // carries no Content-Type: veeam_em parses any `application/json` answer as JSON and
        // fails on an empty one.
        if has_body {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            );
        }
        for (name, value) in headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                if name == header::CONTENT_TYPE {
                    h.insert(name, v);
                } else {
                    h.append(name, v);
                }
            }
        }
        resp
    }
}

/// The chunks of a streamed body, as a producer sends them; an error ends the body short (the
/// connection is closed, so the client sees it did not get the whole answer).
struct Chunks(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|r| r.map(http_body::Frame::data)))
    }
}
