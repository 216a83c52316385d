//! The audit log: one JSON object per line in `audit.log` in the data folder, appended and
//! never rewritten: who did what to which object, from where, and how it ended. Passwords and
//! session IDs are never written (events carry names and object IDs only).

use crate::error::{CoreError, CoreResult};
use crate::model::{now_millis, Caller};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The audit log's file name inside the data folder.
pub const AUDIT_FILE: &str = "audit.log";

/// What was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Logon,
    Logoff,
    LogonFailed,
    RestoreStart,
    JobStart,
    AccountCreate,
    AccountDelete,
    PasswordSet,
    RoleAdd,
    RoleRemove,
    ScopeAdd,
    ScopeRemove,
    ScopeToggle,
}

impl Action {
    /// Spelling in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Logon => "logon",
            Action::Logoff => "logoff",
            Action::LogonFailed => "logon-failed",
            Action::RestoreStart => "restore-start",
            Action::JobStart => "job-start",
            Action::AccountCreate => "account-create",
            Action::AccountDelete => "account-delete",
            Action::PasswordSet => "password-set",
            Action::RoleAdd => "role-add",
            Action::RoleRemove => "role-remove",
            Action::ScopeAdd => "scope-add",
            Action::ScopeRemove => "scope-remove",
            Action::ScopeToggle => "scope-toggle",
        }
    }
}

/// How it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Refused: wrong credentials, a lockout, or not allowed (403).
    Denied,
    /// Allowed but failed (bad input, a fault).
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }
    /// The outcome of a core result: 401/403 are denials, other errors failures.
    pub fn of<T>(r: &CoreResult<T>) -> Outcome {
        match r {
            Ok(_) => Outcome::Success,
            Err(CoreError::Unauthorized(_) | CoreError::Forbidden(_)) => Outcome::Denied,
            Err(CoreError::TooManyAttempts { .. }) => Outcome::Denied,
            Err(_) => Outcome::Failed,
        }
    }
}

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// UTC, `2025-01-31T12:00:00.123Z`.
    pub time: String,
    /// Account name as sent or resolved; `-` for the local CLI.
    pub user: String,
    /// Client address; null for the local CLI.
    pub address: Option<String>,
    pub action: String,
    /// The object acted on (account name, VM restore point ID, …).
    pub object: Option<String>,
    pub outcome: String,
    /// Why it was refused or failed, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Who acted, for an event.
pub struct Actor<'a> {
    pub user: &'a str,
    pub address: Option<IpAddr>,
}

impl<'a> From<&'a Caller> for Actor<'a> {
    fn from(c: &'a Caller) -> Self {
        Actor {
            user: &c.user_name,
            address: c.address,
        }
    }
}

/// The local operator (CLI verbs that work on the data folder directly).
pub const LOCAL: Actor<'static> = Actor {
    user: "-",
    address: None,
};

/// The append-only writer.
pub struct AuditLog {
    path: PathBuf,
    /// `None` for a read-only core, which writes nothing.
    file: Mutex<Option<std::fs::File>>,
}

fn iso(ms: i64) -> String {
    let (y, mo, d, h, mi, s) = crate::time::civil(ms);
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
        ms.rem_euclid(1000)
    )
}

impl AuditLog {
    /// Open (creating) the log of a data folder for appending.
    pub fn open(dir: &Path) -> CoreResult<AuditLog> {
        let path = dir.join(AUDIT_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| CoreError::Internal(format!("cannot open {}: {e}", path.display())))?;
        Ok(AuditLog {
            path,
            file: Mutex::new(Some(file)),
        })
    }

    /// A log that records nothing (read-only opens).
    pub fn disabled(dir: &Path) -> AuditLog {
        AuditLog {
            path: dir.join(AUDIT_FILE),
            file: Mutex::new(None),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one event. A failure to write is logged, never turned into a refusal of the
    /// operation that was audited.
    pub fn record(
        &self,
        actor: Actor<'_>,
        action: Action,
        object: Option<&str>,
        outcome: Outcome,
        detail: Option<&str>,
    ) {
        let ev = AuditEvent {
            time: iso(now_millis()),
            user: actor.user.to_string(),
            address: actor.address.map(|a| a.to_string()),
            action: action.as_str().into(),
            object: object.map(str::to_string),
            outcome: outcome.as_str().into(),
            detail: detail.map(str::to_string),
        };
        let Ok(mut line) = serde_json::to_string(&ev) else {
            return;
        };
        line.push('\n');
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = guard.as_mut() {
            // One write of a whole line on an O_APPEND file: lines never interleave.
            if let Err(e) = f.write_all(line.as_bytes()).and_then(|_| f.sync_data()) {
                tracing::error!("cannot write the audit log {}: {e}", self.path.display());
            }
        }
    }
}

/// Read every event of a data folder's audit log, oldest first. A line that does not parse
/// (a torn last line after a crash) is skipped.
pub fn read_events(dir: &Path) -> CoreResult<Vec<AuditEvent>> {
    let path = dir.join(AUDIT_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(CoreError::Internal(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_appended_as_json_lines_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        log.record(
            Actor {
                user: "alice",
                address: Some("192.0.2.1".parse().unwrap()),
            },
            Action::Logon,
            None,
            Outcome::Success,
            None,
        );
        log.record(
            LOCAL,
            Action::AccountCreate,
            Some("bob"),
            Outcome::Success,
            None,
        );
        drop(log);
        let log = AuditLog::open(dir.path()).unwrap();
        log.record(
            LOCAL,
            Action::AccountDelete,
            Some("bob"),
            Outcome::Failed,
            Some("x"),
        );
        let ev = read_events(dir.path()).unwrap();
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].user, "alice");
        assert_eq!(ev[0].address.as_deref(), Some("192.0.2.1"));
        assert_eq!(ev[0].action, "logon");
        assert!(
            ev[0].time.ends_with('Z') && ev[0].time.len() == 24,
            "{}",
            ev[0].time
        );
        assert_eq!(ev[2].outcome, "failed");
        assert_eq!(ev[2].detail.as_deref(), Some("x"));
    }
}
