//! Errors of the platform layer.
//!
//! Policy: every fallible call returns [`PlatformError`]. Variants other than
//! [`PlatformError::Io`] describe something the caller asked for that cannot be done
//! (missing object, name clash, bad name or reference, full datastore) and carry the
//! offending value; callers may show them to API users. [`PlatformError::Io`] is an
//! internal fault of the inventory (disk error, unreadable config): its `context` names
//! the operation and path for the log, and callers should not blame the client for it.

/// Everything that can go wrong in a hypervisor inventory.
#[derive(thiserror::Error, Debug)]
pub enum PlatformError {
    /// The named object does not exist.
    #[error("{what} not found: {id}")]
    NotFound {
        /// Kind of object (e.g. `"vm"`, `"datastore"`).
        what: &'static str,
        /// Identifier that was looked up.
        id: String,
    },
    /// An object with this identifier already exists.
    #[error("{what} already exists: {id}")]
    AlreadyExists {
        /// Kind of object.
        what: &'static str,
        /// Identifier that clashed.
        id: String,
    },
    /// Another object in the same scope already carries this name.
    #[error("name already in use: {name:?}")]
    NameInUse {
        /// The clashing name.
        name: String,
    },
    /// A name supplied by a caller is not acceptable.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A reference (URN, object ref, staged disk) is malformed or foreign.
    #[error("invalid reference {value:?}: {reason}")]
    InvalidRef {
        /// The rejected value.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The operation is not available for this platform or object.
    #[error("unsupported: {what}")]
    Unsupported {
        /// What was attempted.
        what: String,
    },
    /// The datastore has no room for the requested allocation.
    #[error("not enough space on datastore {datastore}: {needed} bytes needed, {free} bytes free")]
    NoSpace {
        /// Object ref of the datastore.
        datastore: String,
        /// Bytes the operation needed.
        needed: u64,
        /// Bytes still free.
        free: u64,
    },
    /// An internal I/O fault.
    #[error("{context}: {source}")]
    Io {
        /// Operation and path that failed.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl PlatformError {
    /// Wraps an I/O error with the operation and path it came from.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        PlatformError::Io {
            context: context.into(),
            source,
        }
    }

    /// An [`PlatformError::Io`] for a config file whose content is unusable.
    pub(crate) fn corrupt(context: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        PlatformError::Io {
            context: context.into(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, detail.to_string()),
        }
    }
}
