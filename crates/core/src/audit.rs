//! The audit log: one JSON object per line in `audit.log` in the data folder, appended and
//! never rewritten: who did what to which object, from where, and how it ended. Passwords and
//! session IDs are never written (events carry names and object IDs only).
//!
//! What an unauthenticated client can make it write is bounded: every field is cut to
//! [`FIELD_MAX`] characters; past [`FREE_REFUSALS`] refused logons from one address in a
//! [`REFUSAL_WINDOW`], the rest of that window's are counted into one line written when the
//! address is next heard from after the window, or when the log is closed; refused logons are
//! not fsynced one by one; the file is rotated at [`ROTATE_AT`] bytes, keeping [`KEEP_ROTATED`]
//! older files (`audit.log.1` the newest). A write that fails (a full disk) is reported once a
//! minute and never refuses the audited operation.

use crate::error::{CoreError, CoreResult};
use crate::model::{now_millis, Caller};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest user name, object or detail written, in characters.
pub const FIELD_MAX: usize = 256;
/// Refused logons from one address written one by one in each window.
pub const FREE_REFUSALS: u32 = 10;
/// The window over which refused logons from one address are counted.
pub const REFUSAL_WINDOW: Duration = Duration::from_secs(60);
/// Addresses whose refusals are remembered before the ended windows are counted up.
const REFUSAL_ADDRESSES: usize = 4096;
/// Size at which `audit.log` is rotated.
pub const ROTATE_AT: u64 = 64 << 20;
/// Rotated files kept (`audit.log.1` … `audit.log.4`).
pub const KEEP_ROTATED: u32 = 4;

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
    FaultAdd,
    FaultRemove,
    FaultClear,
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
            Action::FaultAdd => "fault-add",
            Action::FaultRemove => "fault-remove",
            Action::FaultClear => "fault-clear",
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

/// Refused logons from one address in the current window.
struct Refusals {
    since: Instant,
    since_text: String,
    seen: u32,
}

/// The open file and what the writer remembers.
struct Writer {
    file: std::fs::File,
    len: u64,
    refusals: HashMap<IpAddr, Refusals>,
    last_error_report: Option<Instant>,
}

impl Writer {
    /// Forgets the addresses whose window has ended, returning the count lines of those that
    /// went past the free refusals.
    fn take_ended(&mut self, now: Instant, now_text: &str) -> Vec<String> {
        let mut lines = Vec::new();
        self.refusals.retain(|addr, r| {
            if now.duration_since(r.since) < REFUSAL_WINDOW {
                return true;
            }
            lines.extend(summary_line(*addr, r, now_text));
            false
        });
        lines
    }
}

/// The append-only writer.
pub struct AuditLog {
    path: PathBuf,
    /// [`ROTATE_AT`], smaller in tests.
    rotate_at: u64,
    /// `None` for a read-only core, which writes nothing.
    writer: Mutex<Option<Writer>>,
}

fn iso(ms: i64) -> String {
    let (y, mo, d, h, mi, s) = crate::time::civil(ms);
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
        ms.rem_euclid(1000)
    )
}

/// `value` cut to [`FIELD_MAX`] characters, saying how long it was.
fn capped(value: &str) -> String {
    match value.char_indices().nth(FIELD_MAX) {
        None => value.to_string(),
        Some((end, _)) => format!("{}… ({} bytes)", &value[..end], value.len()),
    }
}

fn open_append(path: &Path) -> CoreResult<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| CoreError::Internal(format!("cannot open {}: {e}", path.display())))
}

impl AuditLog {
    /// Open (creating) the log of a data folder for appending.
    pub fn open(dir: &Path) -> CoreResult<AuditLog> {
        let path = dir.join(AUDIT_FILE);
        let file = open_append(&path)?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(AuditLog {
            path,
            rotate_at: ROTATE_AT,
            writer: Mutex::new(Some(Writer {
                file,
                len,
                refusals: HashMap::new(),
                last_error_report: None,
            })),
        })
    }

    /// A log that records nothing (read-only opens).
    pub fn disabled(dir: &Path) -> AuditLog {
        AuditLog {
            path: dir.join(AUDIT_FILE),
            rotate_at: ROTATE_AT,
            writer: Mutex::new(None),
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
        let now = Instant::now();
        let time = iso(now_millis());
        let mut guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let Some(w) = guard.as_mut() else { return };
        // A refused logon is what anyone can send: counted, past the free ones, per address.
        let refused = action == Action::LogonFailed && outcome != Outcome::Success;
        if let (true, Some(addr)) = (refused, actor.address) {
            let fresh = || Refusals {
                since: now,
                since_text: time.clone(),
                seen: 0,
            };
            if w.refusals.len() >= REFUSAL_ADDRESSES {
                // Many addresses: count up the ended windows now rather than keep them.
                let ended = w.take_ended(now, &time);
                for line in ended {
                    self.write(w, &line, false);
                }
            }
            let r = w.refusals.entry(addr).or_insert_with(fresh);
            let summary = if now.duration_since(r.since) >= REFUSAL_WINDOW {
                let line = summary_line(addr, r, &time);
                *r = fresh();
                line
            } else {
                None
            };
            r.seen += 1;
            let seen = r.seen;
            if let Some(line) = summary {
                self.write(w, &line, false);
            }
            if seen > FREE_REFUSALS {
                return;
            }
        }
        let ev = AuditEvent {
            time,
            user: capped(actor.user),
            address: actor.address.map(|a| a.to_string()),
            action: action.as_str().into(),
            object: object.map(capped),
            outcome: outcome.as_str().into(),
            detail: detail.map(capped),
        };
        let Ok(line) = serde_json::to_string(&ev) else {
            return;
        };
        self.write(w, &line, !refused);
    }

    /// One whole line on an O_APPEND file (lines never interleave), fsynced when `durable`;
    /// rotates first when the file has grown past [`ROTATE_AT`].
    fn write(&self, w: &mut Writer, line: &str, durable: bool) {
        if w.len >= self.rotate_at {
            self.rotate(w);
        }
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        let written =
            w.file.write_all(&bytes).and_then(
                |_| {
                    if durable {
                        w.file.sync_data()
                    } else {
                        Ok(())
                    }
                },
            );
        match written {
            Ok(()) => w.len += bytes.len() as u64,
            Err(e) => {
                // Loud, but not a line per event: a full disk must not flood the server log.
                if w.last_error_report
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
                {
                    tracing::error!(
                        "cannot write the audit log {}: {e}; events are being lost (free space on its disk)",
                        self.path.display()
                    );
                    w.last_error_report = Some(Instant::now());
                }
            }
        }
    }

    /// `audit.log` → `audit.log.1` → … → `audit.log.KEEP_ROTATED` (the oldest dropped).
    fn rotate(&self, w: &mut Writer) {
        let rotated = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        let _ = std::fs::remove_file(rotated(KEEP_ROTATED));
        for n in (1..KEEP_ROTATED).rev() {
            let _ = std::fs::rename(rotated(n), rotated(n + 1));
        }
        if let Err(e) = std::fs::rename(&self.path, rotated(1)) {
            tracing::error!("cannot rotate the audit log {}: {e}", self.path.display());
            return;
        }
        match open_append(&self.path) {
            Ok(f) => {
                w.file = f;
                w.len = 0;
            }
            Err(e) => tracing::error!("{e}"),
        }
    }
}

/// The line that counts a window's refused logons past the free ones, if there were any.
fn summary_line(addr: IpAddr, r: &Refusals, now: &str) -> Option<String> {
    let more = r.seen.checked_sub(FREE_REFUSALS).filter(|n| *n > 0)?;
    let ev = AuditEvent {
        time: now.to_string(),
        user: "-".into(),
        address: Some(addr.to_string()),
        action: Action::LogonFailed.as_str().into(),
        object: None,
        outcome: Outcome::Denied.as_str().into(),
        detail: Some(format!(
            "{more} more refused logons from this address since {} (not written one by one)",
            r.since_text
        )),
    };
    serde_json::to_string(&ev).ok()
}

impl Drop for AuditLog {
    /// Writes the counts of the refusals not yet summarised.
    fn drop(&mut self) {
        let mut guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let Some(w) = guard.as_mut() else { return };
        let now = iso(now_millis());
        let lines: Vec<String> = w
            .refusals
            .drain()
            .filter_map(|(addr, r)| summary_line(addr, &r, &now))
            .collect();
        for line in lines {
            self.write(w, &line, false);
        }
        let _ = w.file.sync_data();
    }
}

/// Read every event of a data folder's audit log, oldest first. A line that does not parse
/// (a torn last line after a crash) is skipped.
pub fn read_events(dir: &Path) -> CoreResult<Vec<AuditEvent>> {
    let mut events = Vec::new();
    let rotated = (1..=KEEP_ROTATED)
        .rev()
        .map(|n| dir.join(format!("{AUDIT_FILE}.{n}")));
    for path in rotated.chain([dir.join(AUDIT_FILE)]) {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(CoreError::Internal(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            }
        };
        events.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
    }
    Ok(events)
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

    #[test]
    fn the_log_rotates_by_size_keeping_four_older_files_and_reads_them_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(dir.path()).unwrap();
        log.rotate_at = 1000;
        for n in 0..200 {
            log.record(
                LOCAL,
                Action::PasswordSet,
                Some(&format!("user{n}")),
                Outcome::Success,
                None,
            );
        }
        drop(log);
        let files: Vec<u64> = (1..=KEEP_ROTATED + 1)
            .map(|n| dir.path().join(format!("{AUDIT_FILE}.{n}")))
            .filter(|p| p.exists())
            .map(|p| std::fs::metadata(p).unwrap().len())
            .collect();
        assert_eq!(files.len(), KEEP_ROTATED as usize, "{files:?}");
        assert!(files.iter().all(|l| *l < 1200), "{files:?}");
        let ev = read_events(dir.path()).unwrap();
        let n: Vec<usize> = ev
            .iter()
            .filter_map(|e| e.object.as_deref()?.strip_prefix("user")?.parse().ok())
            .collect();
        assert_eq!(n.last(), Some(&199));
        assert!(
            n.windows(2).all(|w| w[1] == w[0] + 1),
            "oldest first, no gap"
        );
    }

    fn refused(log: &AuditLog, user: &str, addr: &str) {
        let actor = Actor {
            user,
            address: Some(addr.parse().unwrap()),
        };
        log.record(
            actor,
            Action::LogonFailed,
            None,
            Outcome::Denied,
            Some("no"),
        );
    }

    #[test]
    fn fields_are_capped_and_a_refusal_flood_is_counted_on_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        let huge = "u".repeat(250_000);
        for _ in 0..100 {
            refused(&log, &huge, "192.0.2.9");
        }
        refused(&log, "other", "192.0.2.10");
        drop(log);
        let ev = read_events(dir.path()).unwrap();
        let from_9: Vec<_> = ev
            .iter()
            .filter(|e| e.address.as_deref() == Some("192.0.2.9"))
            .collect();
        assert_eq!(
            from_9.len(),
            FREE_REFUSALS as usize + 1,
            "the free ones and a count"
        );
        assert!(from_9[0].user.starts_with("uuu") && from_9[0].user.ends_with("(250000 bytes)"));
        assert!(from_9[0].user.chars().count() < FIELD_MAX + 20);
        let last = from_9.last().unwrap().detail.clone().unwrap_or_default();
        assert!(last.starts_with("90 more refused logons"), "{last}");
        assert_eq!(ev.iter().filter(|e| e.user == "other").count(), 1);
        let size = std::fs::metadata(dir.path().join(AUDIT_FILE))
            .unwrap()
            .len();
        assert!(size < 8 << 10, "{size} bytes for 101 refusals");
    }
}
