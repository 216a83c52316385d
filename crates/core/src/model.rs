//! Domain records: what the catalog stores and what `core` hands to the HTTP edge.

use emrest_platform::{PlatformKind, PowerState, VmKey};
use serde::Serialize;
use uuid::Uuid;

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// Current time in milliseconds since the epoch.
pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A task identifier, shown on the wire as `task-N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TaskId(pub i64);

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "task-{}", self.0)
    }
}

impl std::str::FromStr for TaskId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let n = s
            .get(..5)
            .filter(|p| p.eq_ignore_ascii_case("task-"))
            .and_then(|_| s[5..].parse::<i64>().ok())
            .filter(|n| *n > 0)
            .ok_or(())?;
        Ok(TaskId(n))
    }
}

/// The CLI's three older role names, accepted as input by [`crate::Owner::add_account`] only:
/// an account's roles are a set of [`crate::security::EnterpriseRole`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Role {
    PortalAdministrator,
    RestoreOperator,
    PortalUser,
}

impl Role {
    /// Name as stored and shown.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::PortalAdministrator => "PortalAdministrator",
            Role::RestoreOperator => "RestoreOperator",
            Role::PortalUser => "PortalUser",
        }
    }
    /// Parse a stored role name.
    pub fn parse(s: &str) -> Option<Role> {
        [
            Role::PortalAdministrator,
            Role::RestoreOperator,
            Role::PortalUser,
        ]
        .into_iter()
        .find(|r| r.as_str().eq_ignore_ascii_case(s))
    }
}

/// Who is calling: resolved from a live logon session.
#[derive(Clone, Debug)]
pub struct Caller {
    pub(crate) account_id: Uuid,
    pub(crate) user_name: String,
    pub(crate) session_id: Uuid,
    /// Every REST role the account holds (security_roles_concept.md).
    pub(crate) roles: Vec<crate::security::EnterpriseRole>,
    /// The VMs the caller may see and restore.
    pub(crate) scope: crate::security::RestoreScope,
    /// The client's address, when the request came over the network (for the audit log).
    pub(crate) address: Option<std::net::IpAddr>,
}

/// A `Caller` is made only by the domain, from a live logon session (its fields cannot be set
/// from outside), so holding one proves who asks; these read it.
impl Caller {
    /// Whether the caller holds the Portal Administrator role.
    pub fn is_admin(&self) -> bool {
        self.roles
            .contains(&crate::security::EnterpriseRole::PortalAdministrator)
    }

    /// Whether the caller sees every VM (an administrator, or a scope of all VMs): the one
    /// rule the restore scope, the views and the server's reply cache all follow.
    pub fn sees_all_vms(&self) -> bool {
        self.is_admin() || self.scope == crate::security::RestoreScope::All
    }

    /// Whether the caller sees every account's tasks and restore sessions (an administrator),
    /// not only its own: the rule the views and the server's reply cache follow.
    pub fn sees_all_tasks(&self) -> bool {
        self.is_admin()
    }

    /// The caller's account.
    pub fn account_id(&self) -> Uuid {
        self.account_id
    }

    /// The caller's account name.
    pub fn user_name(&self) -> &str {
        &self.user_name
    }

    /// The logon session the caller came with.
    pub fn session_id(&self) -> Uuid {
        self.session_id
    }

    /// Every REST role the account holds.
    pub fn roles(&self) -> &[crate::security::EnterpriseRole] {
        &self.roles
    }

    /// The VMs the caller may see and restore.
    pub fn scope(&self) -> &crate::security::RestoreScope {
        &self.scope
    }

    /// The client's address, when the request came over the network.
    pub fn address(&self) -> Option<std::net::IpAddr> {
        self.address
    }

    /// The same caller, calling from a client address (for the audit log).
    pub fn at(self, address: Option<std::net::IpAddr>) -> Caller {
        Caller { address, ..self }
    }
}

/// A live logon session.
#[derive(Clone, Debug)]
pub struct LogonSessionRecord {
    pub id: Uuid,
    pub account_id: Uuid,
    pub user_name: String,
    pub created: Millis,
    pub last_seen: Millis,
}

/// A backup server registered in Enterprise Manager.
#[derive(Clone, Debug, Serialize)]
pub struct BackupServerRecord {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub port: u16,
    pub version: String,
}

/// A hierarchy root (vCenter, Hyper-V host, Cloud Director) known to a backup server.
#[derive(Clone, Debug, Serialize)]
pub struct HierarchyRootRecord {
    pub id: Uuid,
    pub name: String,
    pub kind: PlatformKind,
    pub unique_id: String,
    pub backup_server_id: Uuid,
}

/// A backup: the chain of restore points one job made.
#[derive(Clone, Debug, Serialize)]
pub struct BackupRecord {
    pub id: Uuid,
    pub name: String,
    pub platform: PlatformKind,
    pub backup_server_id: Uuid,
    pub created: Millis,
}

/// Full or incremental: how a restore point was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum PointType {
    Full,
    Increment,
}

impl PointType {
    /// Wire spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            PointType::Full => "Full",
            PointType::Increment => "Increment",
        }
    }
    fn parse(s: &str) -> PointType {
        if s == "Full" {
            PointType::Full
        } else {
            PointType::Increment
        }
    }
    pub(crate) fn from_db(s: String) -> PointType {
        PointType::parse(&s)
    }
}

/// One run of a backup: a point in time of every VM the job holds.
#[derive(Clone, Debug, Serialize)]
pub struct RestorePointRecord {
    pub id: Uuid,
    pub backup_id: Uuid,
    pub backup_name: String,
    pub backup_server_id: Uuid,
    pub created: Millis,
    pub point_type: PointType,
}

/// One disk captured in a VM restore point.
#[derive(Clone, Debug, Serialize)]
pub struct PointDisk {
    pub name: String,
    pub size: u64,
    pub index: String,
}

/// The state of one VM inside a restore point.
#[derive(Clone, Debug, Serialize)]
pub struct VmRestorePointRecord {
    pub id: Uuid,
    pub restore_point_id: Uuid,
    pub backup_id: Uuid,
    pub backup_server_id: Uuid,
    pub backup_file_id: Uuid,
    pub backup_file_name: String,
    pub restore_point_created: Millis,
    pub vm: VmKey,
    pub platform: PlatformKind,
    pub vm_name: String,
    pub datastore: String,
    pub storage_profile: Option<String>,
    pub power: PowerState,
    pub created: Millis,
    pub point_type: PointType,
    pub hierarchy_obj_ref: String,
    pub disks: Vec<PointDisk>,
}

/// A backup file (.vbk/.vib) holding one restore point.
#[derive(Clone, Debug, Serialize)]
pub struct BackupFileRecord {
    pub id: Uuid,
    pub backup_id: Uuid,
    pub backup_name: String,
    pub backup_server_id: Uuid,
    pub restore_point_id: Uuid,
    pub file_name: String,
    pub backup_size: u64,
    pub data_size: u64,
    pub created: Millis,
}

/// Task life cycle (tasks_id.md: Running, Finished).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum TaskState {
    Running,
    Finished,
}

/// A long operation's handle, as clients poll it.
#[derive(Clone, Debug, Serialize)]
pub struct TaskRecord {
    pub id: TaskId,
    pub operation: String,
    pub state: TaskState,
    /// `Some((success, message))` once finished.
    pub result: Option<(bool, String)>,
    pub restore_session_id: Option<Uuid>,
    pub account_id: Uuid,
    pub created: Millis,
    /// The job the task made (CloneJob).
    pub related_job_id: Option<Uuid>,
}

/// Restore session states (get_restoresessions_id.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum SessionState {
    Starting,
    Working,
    Stopping,
    Stopped,
}

impl SessionState {
    /// Wire spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            SessionState::Starting => "Starting",
            SessionState::Working => "Working",
            SessionState::Stopping => "Stopping",
            SessionState::Stopped => "Stopped",
        }
    }
    pub(crate) fn parse(s: &str) -> SessionState {
        match s {
            "Starting" => SessionState::Starting,
            "Working" => SessionState::Working,
            "Stopping" => SessionState::Stopping,
            _ => SessionState::Stopped,
        }
    }
}

/// Restore session results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum SessionResult {
    None,
    Success,
    Warning,
    Failed,
}

impl SessionResult {
    /// Wire spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            SessionResult::None => "None",
            SessionResult::Success => "Success",
            SessionResult::Warning => "Warning",
            SessionResult::Failed => "Failed",
        }
    }
    pub(crate) fn parse(s: &str) -> SessionResult {
        match s {
            "Success" => SessionResult::Success,
            "Warning" => SessionResult::Warning,
            "Failed" => SessionResult::Failed,
            _ => SessionResult::None,
        }
    }
}

/// A restore session: what a restore did, for whom, and how it ended.
#[derive(Clone, Debug, Serialize)]
pub struct RestoreSessionRecord {
    pub id: Uuid,
    pub vm_restore_point_id: Uuid,
    pub vm_restore_point_name: String,
    pub backup_server_id: Uuid,
    pub vm_name: String,
    pub state: SessionState,
    pub result: SessionResult,
    pub progress: u8,
    pub created: Millis,
    pub ended: Option<Millis>,
    pub restored_obj_ref: Option<String>,
    pub failure_message: Option<String>,
    pub account_id: Uuid,
}

/// One line of a restore session's log (an emrest extension).
#[derive(Clone, Debug, Serialize)]
pub struct LogLine {
    pub time: Millis,
    pub text: String,
}
