//! Accounts, roles and restore scopes, and the one authorization check.
//!
//! Roles are the REST API's (security_roles_concept.md): an account holds one or more. What a
//! role may do is [`EnterpriseRole::grants`]; the server asks [`authorize`] once per request
//! with the [`Permission`] its endpoint needs. Which VMs a caller may see and restore is its
//! [`RestoreScope`]: every VM (`AllowRestoreAllVms`), or the VMs inside a list of hierarchy
//! objects (post_security_accounts_id_scopes.md: "all child nodes of the defined node become
//! available"). Containment follows emrest's inventory: a VM is inside itself, its hierarchy
//! root (vCenter, Hyper-V host, Cloud Director system) and the datastore its restore point was
//! taken from. Objects outside the scope are left out of lists and refused (403) when named.

use crate::error::{CoreError, CoreResult};
use crate::model::{Caller, Role, VmRestorePointRecord};
use emrest_platform::{parse_hierarchy_obj_ref, types, ObjRef, PlatformKind};
use uuid::Uuid;

/// The REST API's security roles (security_roles_concept.md, get_security_roles.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EnterpriseRole {
    PortalAdministrator,
    PortalUser,
    VmRestoreOperator,
    FileRestoreOperator,
    ExchangeRestoreOperator,
    OracleRestoreOperator,
    SqlRestoreOperator,
}

/// What an endpoint needs, beyond a live logon session. Object-level checks (restore scope,
/// ownership of tasks and sessions) are made by the core call that fetches the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Any logged-on caller: logon sessions, tasks and restore sessions (each filtered to
    /// the caller's own unless an administrator).
    LoggedOn,
    /// `/backupServers`, `/hierarchyRoots`.
    ReadInfrastructure,
    /// `/backupFiles`, `/restorePoints/{ID}/backupFiles`.
    ReadBackupFiles,
    /// `/backups`, `/restorePoints`, `/restorePoints/{ID}`.
    ReadBackups,
    /// `/restorePoints/{ID}/vmRestorePoints`.
    BrowseRestorePointVms,
    /// `/vmRestorePoints`, `/vmRestorePoints/{ID}`.
    ReadVmRestorePoints,
    /// `POST /vmRestorePoints/{ID}?action=restore`.
    RestoreVm,
    /// Starting, stopping or editing a job (authentication_and_security.md: a Restore
    /// Operator gets 403 Access denied).
    StartJob,
    /// `/security/*`.
    ManageAccounts,
    /// `/emrest/faults` (administrators only; the server must also allow faults).
    ManageFaults,
}

/// What a read lists: each collection the API serves, through its own URL or through the query
/// service. Which permission reading it needs is decided here, once ([`Collection::permission`]);
/// the server's endpoint check and the query service both ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collection {
    /// Backup servers, hierarchy roots, repositories and the summary reports.
    Infrastructure,
    /// Backup files.
    BackupFiles,
    /// Backups and restore points.
    Backups,
    /// The VM restore points of one restore point.
    RestorePointVms,
    /// VM restore points (and the VMs they make restorable).
    VmRestorePoints,
    /// Logon sessions, tasks and restore sessions: each caller's own unless it administers.
    OwnWork,
    /// Jobs, the VMs in them, and their backup and task sessions.
    Jobs,
}

impl Collection {
    /// The permission reading the collection needs (security_roles_concept.md).
    pub fn permission(self) -> Permission {
        match self {
            Collection::Infrastructure => Permission::ReadInfrastructure,
            Collection::BackupFiles => Permission::ReadBackupFiles,
            Collection::Backups => Permission::ReadBackups,
            Collection::RestorePointVms => Permission::BrowseRestorePointVms,
            Collection::VmRestorePoints => Permission::ReadVmRestorePoints,
            Collection::OwnWork => Permission::LoggedOn,
            // get_jobs.md: jobs are the Portal Administrator's.
            Collection::Jobs => Permission::StartJob,
        }
    }
}

impl EnterpriseRole {
    /// Every role, in the order `/security/roles` lists them.
    pub const ALL: [EnterpriseRole; 7] = [
        EnterpriseRole::PortalAdministrator,
        EnterpriseRole::PortalUser,
        EnterpriseRole::VmRestoreOperator,
        EnterpriseRole::FileRestoreOperator,
        EnterpriseRole::ExchangeRestoreOperator,
        EnterpriseRole::OracleRestoreOperator,
        EnterpriseRole::SqlRestoreOperator,
    ];

    /// Display name, as `/security/roles` shows it.
    pub fn name(self) -> &'static str {
        match self {
            EnterpriseRole::PortalAdministrator => "Portal Administrator",
            EnterpriseRole::PortalUser => "Portal User",
            EnterpriseRole::VmRestoreOperator => "VM Restore Operator",
            EnterpriseRole::FileRestoreOperator => "File Restore Operator",
            EnterpriseRole::ExchangeRestoreOperator => "Exchange Restore Operator",
            EnterpriseRole::OracleRestoreOperator => "Oracle Restore Operator",
            EnterpriseRole::SqlRestoreOperator => "SQL Restore Operator",
        }
    }

    /// Stored and CLI spelling.
    pub fn key(self) -> &'static str {
        match self {
            EnterpriseRole::PortalAdministrator => "PortalAdministrator",
            EnterpriseRole::PortalUser => "PortalUser",
            EnterpriseRole::VmRestoreOperator => "VmRestoreOperator",
            EnterpriseRole::FileRestoreOperator => "FileRestoreOperator",
            EnterpriseRole::ExchangeRestoreOperator => "ExchangeRestoreOperator",
            EnterpriseRole::OracleRestoreOperator => "OracleRestoreOperator",
            EnterpriseRole::SqlRestoreOperator => "SqlRestoreOperator",
        }
    }

    /// The role's fixed ID. The pages name four role UIDs in their examples
    /// (get_security_roles_id.md: Portal User; security_roles_id.md: Exchange Restore
    /// Operator; post_security_accounts_id_roles.md: VM Restore Operator;
    /// delete_security_accounts_id_roles_id.md: File Restore Operator); those are kept so
    /// scripts written from the examples work; the others are emrest's own.
    pub fn id(self) -> Uuid {
        let s = match self {
            EnterpriseRole::PortalAdministrator => "5a3e7c1e-8f0d-4c2b-9a51-0d7f4e2b6a01",
            EnterpriseRole::PortalUser => "d19a3d33-cb77-4ffe-94e6-001432483a4e",
            EnterpriseRole::VmRestoreOperator => "c11c0c38-ba8b-49c7-bf70-fc2058fff1e2",
            EnterpriseRole::FileRestoreOperator => "f84a8b62-49b8-4d0c-b25b-92321b52bab6",
            EnterpriseRole::ExchangeRestoreOperator => "f83e4c81-0815-452f-9377-9d573dd9d481",
            EnterpriseRole::OracleRestoreOperator => "5a3e7c1e-8f0d-4c2b-9a51-0d7f4e2b6a06",
            EnterpriseRole::SqlRestoreOperator => "5a3e7c1e-8f0d-4c2b-9a51-0d7f4e2b6a07",
        };
        Uuid::parse_str(s).unwrap_or_default()
    }

    /// The role with this ID.
    pub fn by_id(id: Uuid) -> Option<EnterpriseRole> {
        Self::ALL.into_iter().find(|r| r.id() == id)
    }

    /// Parse a key, a display name, or the CLI's older names (`RestoreOperator`).
    pub fn parse(s: &str) -> Option<EnterpriseRole> {
        let squash = |x: &str| x.replace([' ', '_', '-'], "").to_ascii_lowercase();
        let want = squash(s);
        if want == "restoreoperator" {
            return Some(EnterpriseRole::VmRestoreOperator);
        }
        Self::ALL.into_iter().find(|r| squash(r.key()) == want)
    }

    /// The CLI's three roles, as REST roles.
    pub fn from_role(role: Role) -> EnterpriseRole {
        match role {
            Role::PortalAdministrator => EnterpriseRole::PortalAdministrator,
            Role::RestoreOperator => EnterpriseRole::VmRestoreOperator,
            Role::PortalUser => EnterpriseRole::PortalUser,
        }
    }

    /// Whether this role grants `p` (the table of security_roles_concept.md, for the
    /// resources emrest serves).
    pub fn grants(self, p: Permission) -> bool {
        use EnterpriseRole as R;
        use Permission as P;
        match self {
            R::PortalAdministrator => true,
            // Portal User: backupFiles, backups, backupServers (GET), hierarchyRoots,
            // restorePoints (all), vmRestorePoints (GET); not the restore action.
            R::PortalUser => matches!(
                p,
                P::LoggedOn
                    | P::ReadInfrastructure
                    | P::ReadBackupFiles
                    | P::ReadBackups
                    | P::BrowseRestorePointVms
                    | P::ReadVmRestorePoints
            ),
            // VM Restore Operator: backups, GET restorePoints[/{ID}], vmRestorePoints (GET and
            // the restore action); not backupFiles, backupServers, hierarchyRoots, nor
            // restorePoints/{ID}/vmRestorePoints or /backupFiles.
            R::VmRestoreOperator => matches!(
                p,
                P::LoggedOn | P::ReadBackups | P::ReadVmRestorePoints | P::RestoreVm
            ),
            // File Restore Operator: the same reads, and no VM restore.
            R::FileRestoreOperator => {
                matches!(p, P::LoggedOn | P::ReadBackups | P::ReadVmRestorePoints)
            }
            // Exchange, Oracle, SQL Restore Operators: restoreSessions and tasks only.
            R::ExchangeRestoreOperator | R::OracleRestoreOperator | R::SqlRestoreOperator => {
                p == P::LoggedOn
            }
        }
    }
}

/// The single authorization check: may `caller` do what `permission` guards?
pub fn authorize(caller: &Caller, permission: Permission) -> CoreResult<()> {
    if caller.roles.iter().any(|r| r.grants(permission)) {
        Ok(())
    } else {
        Err(CoreError::Forbidden(format!(
            "Access denied: account '{}' ({}) may not {}",
            caller.user_name,
            role_names(&caller.roles),
            permission.describe()
        )))
    }
}

impl Permission {
    fn describe(self) -> &'static str {
        match self {
            Permission::LoggedOn => "use the API",
            Permission::ReadInfrastructure => "see backup servers and hierarchy roots",
            Permission::ReadBackupFiles => "see backup files",
            Permission::ReadBackups => "see backups and restore points",
            Permission::BrowseRestorePointVms => "browse the VMs of a restore point",
            Permission::ReadVmRestorePoints => "see VM restore points",
            Permission::RestoreVm => "restore VMs",
            Permission::StartJob => "start, stop or edit jobs",
            Permission::ManageAccounts => "manage accounts and roles",
            Permission::ManageFaults => "inject faults",
        }
    }
}

fn role_names(roles: &[EnterpriseRole]) -> String {
    if roles.is_empty() {
        return "no role".into();
    }
    roles
        .iter()
        .map(|r| r.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which VMs a caller may see and restore.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RestoreScope {
    /// Every VM (administrators, and accounts with `AllowRestoreAllVms`).
    All,
    /// The VMs inside these hierarchy objects.
    Objects(Vec<ObjRef>),
}

impl RestoreScope {
    /// Whether a VM restore point's VM lies inside the scope.
    pub fn covers(&self, p: &VmRestorePointRecord) -> bool {
        self.covers_place(p.vm.root, p.platform, &p.vm.object_ref, &p.datastore)
    }

    /// Whether a VM of the inventory lies inside the scope.
    pub fn covers_vm(&self, vm: &emrest_platform::VmInfo) -> bool {
        self.covers_place(vm.root, vm.kind, &vm.object_ref, &vm.datastore)
    }

    fn covers_place(&self, root: Uuid, kind: PlatformKind, vm_ref: &str, datastore: &str) -> bool {
        match self {
            RestoreScope::All => true,
            RestoreScope::Objects(objs) => objs
                .iter()
                .any(|o| contains(o, root, kind, vm_ref, datastore)),
        }
    }
}

/// Whether hierarchy object `o` contains the VM `vm_ref` on `datastore` under `root`: the VM
/// itself, its hierarchy root, or its datastore.
fn contains(o: &ObjRef, root: Uuid, kind: PlatformKind, vm_ref: &str, datastore: &str) -> bool {
    if o.root != root || o.kind != kind {
        return false;
    }
    let t = o.type_.as_str();
    if t == kind.root_type() {
        return true;
    }
    match t {
        types::VM => o.object_ref.eq_ignore_ascii_case(vm_ref),
        types::DATASTORE => o.object_ref.eq_ignore_ascii_case(datastore),
        _ => false,
    }
}

/// Object types a scope may name: the ones emrest's inventory can place a VM in.
fn scope_type_supported(o: &ObjRef) -> bool {
    o.type_ == types::VM || o.type_ == types::DATASTORE || o.type_ == o.kind.root_type()
}

/// Whether `caller` may see the VM of point `p`.
pub fn can_see_vm(caller: &Caller, p: &VmRestorePointRecord) -> bool {
    caller.is_admin() || caller.scope.covers(p)
}

/// Whether `caller` may see a VM of the inventory.
pub fn can_see_inventory_vm(caller: &Caller, vm: &emrest_platform::VmInfo) -> bool {
    caller.is_admin() || caller.scope.covers_vm(vm)
}

/// 403 unless the caller's scope covers the point's VM.
pub fn check_vm(caller: &Caller, p: &VmRestorePointRecord) -> CoreResult<()> {
    if can_see_vm(caller, p) {
        Ok(())
    } else {
        Err(CoreError::Forbidden(format!(
            "Access denied: VM restore point [{}] is outside the restore scope of account '{}'",
            p.id, caller.user_name
        )))
    }
}

/// The kind of an Enterprise Manager account (get_security_accounts_id.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountType {
    User,
    Group,
    ExternalUser,
    ExternalGroup,
}

impl AccountType {
    /// Wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountType::User => "User",
            AccountType::Group => "Group",
            AccountType::ExternalUser => "ExternalUser",
            AccountType::ExternalGroup => "ExternalGroup",
        }
    }
    /// Parse the wire spelling (any case).
    pub fn parse(s: &str) -> Option<AccountType> {
        [
            AccountType::User,
            AccountType::Group,
            AccountType::ExternalUser,
            AccountType::ExternalGroup,
        ]
        .into_iter()
        .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// File-level restore restrictions (stored and returned; emrest restores whole VMs only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlrSettings {
    pub inplace_only: bool,
    pub extensions: Option<String>,
}

/// SQL restore restrictions (stored and returned only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqlSettings {
    pub deny_in_place_restore: bool,
}

/// An account as the security API shows it.
#[derive(Clone, Debug)]
pub struct AccountRecord {
    pub id: Uuid,
    pub name: String,
    pub account_type: AccountType,
    pub roles: Vec<EnterpriseRole>,
    pub allow_restore_all_vms: bool,
    pub flr: Option<FlrSettings>,
    pub sql: Option<SqlSettings>,
    /// Whether a password is set (accounts created through the API have none until
    /// `emrest user passwd` sets one).
    pub has_password: bool,
}

/// One restore scope object of an account.
#[derive(Clone, Debug)]
pub struct ScopeRecord {
    pub id: Uuid,
    pub account_id: Uuid,
    pub obj_ref: ObjRef,
    pub name: String,
    /// Name of the hierarchy root the object belongs to, when the root is known.
    pub root_name: String,
}

/// One object of a restore scope request (post_security_accounts_id_scopes.md).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeItem {
    pub obj_ref: Option<String>,
    pub name: Option<String>,
}

/// A new account (post_security_accounts.md).
#[derive(Clone, Debug)]
pub struct AccountSpec {
    pub name: String,
    pub account_type: AccountType,
    pub roles: Vec<EnterpriseRole>,
    pub allow_restore_all_vms: bool,
    pub scopes: Vec<ScopeItem>,
    pub flr: Option<FlrSettings>,
    pub sql: Option<SqlSettings>,
    /// A password for logging on to emrest (CLI; the API sends none).
    pub password_hash: Option<String>,
}

/// Reads and writes accounts, roles, settings and scopes (catalog/accounts.rs).
pub(crate) use crate::catalog::AccountStore as Store;

/// The restore scope an account's record and scope rows give.
pub(crate) fn scope_of(a: &AccountRecord, scopes: &[ScopeRecord]) -> RestoreScope {
    if a.allow_restore_all_vms || a.roles.contains(&EnterpriseRole::PortalAdministrator) {
        RestoreScope::All
    } else {
        RestoreScope::Objects(scopes.iter().map(|s| s.obj_ref.clone()).collect())
    }
}

/// Parse and check the objects of a scope request: each needs a valid HierarchyObjRef of a
/// VM, a hierarchy root or a datastore; a missing name defaults to the object ref.
pub(crate) fn parse_scope_items(
    items: &[ScopeItem],
    known_roots: &[(Uuid, PlatformKind)],
) -> CoreResult<Vec<(ObjRef, String)>> {
    let mut out = Vec::new();
    for item in items {
        let text = item.obj_ref.as_deref().map(str::trim).unwrap_or("");
        if text.is_empty() {
            return Err(CoreError::invalid(
                "HierarchyObjRef",
                "HierarchyObjRef is required in each HierarchyScopeItem",
            ));
        }
        let o = parse_hierarchy_obj_ref(text).map_err(|e| {
            CoreError::invalid("HierarchyObjRef", format!("Invalid HierarchyObjRef: {e}"))
        })?;
        if !scope_type_supported(&o) {
            return Err(CoreError::invalid(
                "HierarchyObjRef",
                format!(
                    "HierarchyObjRef {text}: emrest's inventory places VMs only in hierarchy roots ({}) and datastores; scope a VM, a root or a datastore",
                    o.kind.root_type()
                ),
            ));
        }
        match known_roots.iter().find(|(id, _)| *id == o.root) {
            Some((_, kind)) if *kind == o.kind => {}
            Some((_, kind)) => {
                return Err(CoreError::invalid(
                    "HierarchyObjRef",
                    format!(
                        "HierarchyObjRef {text}: hierarchy root {} is a {} root",
                        o.root,
                        kind.urn_platform()
                    ),
                ))
            }
            None => {
                return Err(CoreError::invalid(
                    "HierarchyObjRef",
                    format!(
                        "HierarchyObjRef {text}: no hierarchy root {} is known",
                        o.root
                    ),
                ))
            }
        }
        let name = item
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| o.object_ref.clone());
        out.push((o, name));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_ids_are_distinct_and_round_trip() {
        let mut ids: Vec<Uuid> = EnterpriseRole::ALL.iter().map(|r| r.id()).collect();
        assert!(ids.iter().all(|i| !i.is_nil()));
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 7);
        for r in EnterpriseRole::ALL {
            assert_eq!(EnterpriseRole::by_id(r.id()), Some(r));
            assert_eq!(EnterpriseRole::parse(r.key()), Some(r));
            assert_eq!(EnterpriseRole::parse(r.name()), Some(r));
        }
        assert_eq!(
            EnterpriseRole::parse("RestoreOperator"),
            Some(EnterpriseRole::VmRestoreOperator)
        );
    }

    #[test]
    fn only_administrators_manage_accounts_and_start_jobs() {
        for r in EnterpriseRole::ALL {
            let admin = r == EnterpriseRole::PortalAdministrator;
            assert_eq!(r.grants(Permission::ManageAccounts), admin, "{r:?}");
            assert_eq!(r.grants(Permission::StartJob), admin, "{r:?}");
            assert!(r.grants(Permission::LoggedOn));
        }
        assert!(EnterpriseRole::VmRestoreOperator.grants(Permission::RestoreVm));
        assert!(!EnterpriseRole::PortalUser.grants(Permission::RestoreVm));
        assert!(!EnterpriseRole::VmRestoreOperator.grants(Permission::ReadInfrastructure));
    }
}
