//! Domain errors. Error policy: a caller's mistake is `Invalid`/`NotFound`/`Unauthorized`/
//! `Forbidden`/`Conflict`; anything the caller cannot fix (I/O, a damaged repository, a
//! catalog fault) is `Internal` or `Storage`, which the server maps to 5xx, never 400.

use emrest_platform::PlatformError;
use emrest_repo::RepoError;

/// Everything `core` can refuse or fail with.
#[derive(thiserror::Error, Debug)]
pub enum CoreError {
    /// No valid logon session, or wrong credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Too many failed logons for this account name or from this address; try again later.
    #[error("Too many failed logon attempts; try again in {} seconds", retry_after.as_secs().max(1))]
    TooManyAttempts { retry_after: std::time::Duration },
    /// The caller is known but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// An object named by the request does not exist.
    #[error("{what} [{id}] was not found")]
    NotFound { what: &'static str, id: String },
    /// The request is malformed or contradicts itself; `element` names the culprit.
    #[error("{message}")]
    Invalid {
        element: Option<String>,
        message: String,
    },
    /// The request is valid but clashes with work in progress.
    #[error("{0}")]
    Conflict(String),
    /// The server has as much of this work queued as it takes; try again after `retry_after`.
    #[error("{message}")]
    Busy {
        message: String,
        retry_after: std::time::Duration,
    },
    /// The backup repository failed (missing or corrupt chunk, I/O).
    #[error("backup repository: {0}")]
    Repo(#[from] RepoError),
    /// The VM inventory failed.
    #[error("inventory: {0}")]
    Platform(PlatformError),
    /// The catalog failed.
    #[error("catalog: {0}")]
    Catalog(#[from] rusqlite::Error),
    /// Anything else that is our fault.
    #[error("{0}")]
    Internal(String),
}

impl CoreError {
    /// A 400-class error about one element of a request.
    pub fn invalid(element: impl Into<String>, message: impl Into<String>) -> Self {
        CoreError::Invalid {
            element: Some(element.into()),
            message: message.into(),
        }
    }

    /// A NotFound error for an object kind and id.
    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        CoreError::NotFound {
            what,
            id: id.to_string(),
        }
    }
}

impl From<PlatformError> for CoreError {
    /// Inventory refusals that only a request can cause (a bad name, a taken name, a reference
    /// that does not resolve) are the request's fault; the rest are ours.
    fn from(e: PlatformError) -> Self {
        match e {
            PlatformError::NotFound { what, id } => CoreError::NotFound { what, id },
            PlatformError::InvalidName { .. }
            | PlatformError::NameInUse { .. }
            | PlatformError::InvalidRef { .. } => CoreError::Invalid {
                element: None,
                message: e.to_string(),
            },
            other => CoreError::Platform(other),
        }
    }
}

/// Result alias for core.
pub type CoreResult<T> = Result<T, CoreError>;

/// At most `max` characters of a client-supplied value, with `…` when some were cut: how such
/// a value appears in an error message (the wire crate has the same rule for its decoders).
pub(crate) fn clip(text: &str, max: usize) -> String {
    let mut v: String = text.chars().take(max).collect();
    if text.chars().nth(max).is_some() {
        v.push('…');
    }
    v
}
