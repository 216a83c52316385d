//! The `{ID}`s of request paths as newtypes, parsed once while the path is parsed into an
//! [`Endpoint`](crate::endpoint::Endpoint).
//!
//! A malformed ID does not make the path unknown: the route still exists, and the client
//! learns first whether it is authenticated and allowed (401/403), then that the ID is wrong
//! (400). So an `Endpoint` carries a [`PathId`], the parse's result, and the handler's
//! dispatch turns a [`BadId`] into the 400 only after the session and permission checks.

use emrest_core::{CoreError, TaskId};
use emrest_wire as wire;
use uuid::Uuid;

/// An `{ID}` from a path, parsed: the typed ID, or why it is not one.
pub type PathId<T> = Result<T, BadId>;

/// A path `{ID}` that is not an ID of the kind its route names. Answered 400 (an `Invalid`
/// error on the element `ID`) once the caller is authenticated and authorized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadId {
    message: String,
}

impl From<BadId> for CoreError {
    fn from(e: BadId) -> CoreError {
        CoreError::invalid("ID", e.message)
    }
}

/// An ID type a path segment parses into.
pub trait FromPathSegment: Sized {
    /// Parse a (percent-decoded) path segment.
    fn from_segment(segment: &str) -> PathId<Self>;
}

/// A value from the request for an error message: quoted, at most 80 characters (a full UID
/// fits), so that a huge path or parameter is never reflected back at length.
pub fn shown(value: &str) -> String {
    format!("'{}'", wire::clip(value, 80))
}

/// An `{ID}` of a Veeam object: the bare UUID or the full UID (`urn:veeam:<Kind>:<uuid>`,
/// DESIGN.md "Wire format rules").
fn parse_uuid(segment: &str, kind: &'static str) -> PathId<Uuid> {
    wire::parse_id(segment, kind).ok_or_else(|| BadId {
        message: format!(
            "{} is not a {kind} ID: expected a UUID or urn:veeam:{kind}:<uuid>",
            shown(segment)
        ),
    })
}

/// A task `{ID}` (`task-N`, tasks.md).
impl FromPathSegment for TaskId {
    fn from_segment(segment: &str) -> PathId<TaskId> {
        segment.parse().map_err(|_| BadId {
            message: format!("{} is not a task ID like task-1", shown(segment)),
        })
    }
}

macro_rules! uuid_ids {
    ($($(#[$doc:meta])* $name:ident => $kind:literal,)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name(pub Uuid);

        impl FromPathSegment for $name {
            fn from_segment(segment: &str) -> PathId<$name> {
                parse_uuid(segment, $kind).map($name)
            }
        }
    )*};
}

uuid_ids! {
    /// A logon session (`/logonSessions/{ID}`).
    LogonSessionId => "LogonSession",
    /// A backup server (`/backupServers/{ID}`).
    BackupServerId => "BackupServer",
    /// A backup (`/backups/{ID}`).
    BackupId => "Backup",
    /// A restore point (`/restorePoints/{ID}`).
    RestorePointId => "RestorePoint",
    /// A VM restore point (`/vmRestorePoints/{ID}`).
    VmRestorePointId => "VmRestorePoint",
    /// A hierarchy root (`/hierarchyRoots/{ID}`).
    HierarchyRootId => "HierarchyRoot",
    /// A backup file (`/backupFiles/{ID}`).
    BackupFileId => "BackupFile",
    /// A restore session (`/restoreSessions/{ID}`).
    RestoreSessionId => "RestoreSession",
    /// An Enterprise Manager account (`/security/accounts/{ID}`).
    AccountId => "EnterpriseAccount",
    /// An Enterprise Manager role (`/security/roles/{ID}`, `…/roles/{RoleID}`).
    RoleId => "EnterpriseRole",
    /// A restore scope of an account (`/security/accounts/{ID}/scopes/{ScopeID}`).
    ScopeId => "EnterpriseAccountHierarchyScope",
    /// A backup job (`/jobs/{ID}`).
    JobId => "Job",
    /// A VM in a job (`/jobs/{ID}/includes/{ID}`, a bare UUID).
    ObjectInJobId => "ObjectInJob",
    /// A backup job session (`/backupSessions/{ID}`).
    BackupSessionId => "BackupJobSession",
    /// A backup task session (`/backupTaskSessions/{ID}`).
    BackupTaskSessionId => "BackupTaskSession",
    /// A backup repository (`/repositories/{ID}`).
    RepositoryId => "Repository",
    /// A fault rule (`/emrest/faults/{ID}`, emrest extension).
    FaultId => "FaultRule",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_the_bare_uuid_or_the_full_uid_of_its_kind() {
        let u = Uuid::new_v4();
        assert_eq!(JobId::from_segment(&u.to_string()), Ok(JobId(u)));
        assert_eq!(
            JobId::from_segment(&format!("URN:VEEAM:job:{u}")),
            Ok(JobId(u))
        );
        let e = CoreError::from(JobId::from_segment(&format!("urn:veeam:Backup:{u}")).unwrap_err());
        assert_eq!(
            e.to_string(),
            CoreError::invalid(
                "ID",
                format!("'urn:veeam:Backup:{u}' is not a Job ID: expected a UUID or urn:veeam:Job:<uuid>")
            )
            .to_string()
        );
        assert_eq!(TaskId::from_segment("TASK-7"), Ok(TaskId(7)));
        let e = CoreError::from(TaskId::from_segment("task-0").unwrap_err());
        assert!(
            e.to_string()
                .contains("'task-0' is not a task ID like task-1"),
            "{e}"
        );
    }

    #[test]
    fn a_long_bad_id_is_clipped_in_the_message() {
        let long = "x".repeat(500);
        let e = CoreError::from(BackupId::from_segment(&long).unwrap_err()).to_string();
        assert!(e.contains(&format!("'{}…'", "x".repeat(80))), "{e}");
        assert!(!e.contains(&"x".repeat(81)), "{e}");
    }
}
