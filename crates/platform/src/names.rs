//! Validation of names that come from API users (VM, datastore, root, disk names).
//!
//! Names are only ever stored inside JSON configs, never used as paths, but they are
//! still checked so that nothing surprising (path separators, control characters)
//! reaches logs, configs or other drivers.

use crate::error::PlatformError;

/// Longest accepted name, in characters.
pub const MAX_NAME_CHARS: usize = 128;

/// Checks an object name: non-empty, at most [`MAX_NAME_CHARS`] characters, no control
/// characters, no `/` or `\`, and not `.` or `..`.
pub fn validate_name(name: &str) -> Result<(), PlatformError> {
    let reason = if name.is_empty() {
        Some("must not be empty".to_string())
    } else if name.chars().count() > MAX_NAME_CHARS {
        Some(format!("must be at most {MAX_NAME_CHARS} characters"))
    } else if name == "." || name == ".." {
        Some("must not be '.' or '..'".to_string())
    } else if name.contains('/') || name.contains('\\') {
        Some("must not contain '/' or '\\'".to_string())
    } else if name.chars().any(char::is_control) {
        Some("must not contain control characters".to_string())
    } else {
        None
    };
    match reason {
        Some(reason) => Err(PlatformError::InvalidName {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Checks a disk name (e.g. `disk-0`) with the same rules as [`validate_name`].
pub fn validate_disk_name(name: &str) -> Result<(), PlatformError> {
    validate_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(name: &str) -> String {
        match validate_name(name) {
            Err(PlatformError::InvalidName { reason, .. }) => reason,
            other => panic!("{name:?} accepted: {other:?}"),
        }
    }

    #[test]
    fn ordinary_names_are_accepted() {
        for name in [
            "web01",
            "Hard disk 1",
            "disk-0",
            "db (old) ünïcode",
            "a.b",
            "...",
        ] {
            validate_name(name).unwrap();
        }
        validate_name(&"x".repeat(MAX_NAME_CHARS)).unwrap();
    }

    #[test]
    fn traversal_separators_and_control_chars_are_rejected_with_a_reason() {
        assert!(reason("").contains("empty"));
        assert!(reason(".").contains("'.'"));
        assert!(reason("..").contains("'..'"));
        assert!(reason("../../etc").contains("'/'"));
        assert!(reason("a\\b").contains("'\\'"));
        assert!(reason("a\nb").contains("control"));
        assert!(reason("a\0b").contains("control"));
        assert!(reason(&"x".repeat(MAX_NAME_CHARS + 1)).contains("128"));
    }
}
