//! emrest's domain: the catalog, accounts and logon sessions, backups, restore planning and
//! execution, tasks and restore sessions. It knows nothing of HTTP, XML or JSON; the server maps
//! its records and errors to the wire.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod backup;
mod busy;
pub mod catalog;
pub mod demo;
pub mod directory;
pub mod error;
pub mod faults;
pub mod filter;
pub mod job_admin;
pub mod jobs;
pub mod lookup;
pub mod metrics;
pub mod model;
pub mod query;
pub mod report;
pub mod restore;
mod restores;
pub mod rollback_journal;
mod runner;
pub mod scenario;
pub mod schedule;
pub mod scheduler;
pub mod security;
pub mod summary;
pub mod throttle;
pub mod time;
pub mod vms;

pub use error::{CoreError, CoreResult};
pub use model::*;
pub use restore::{RestoreParameters, RestoreRequest};

use auth::Sessions;
use catalog::{AccountRow, Catalog};
use emrest_platform::{Inventory, LocalInventory, RootInfo};
use emrest_repo::{Durability, Repository};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// How a `Core` is set up.
#[derive(Clone, Debug)]
pub struct CoreConfig {
    /// The data folder: catalog, repository, inventory.
    pub data_dir: PathBuf,
    /// Idle time after which a logon session expires.
    pub session_idle: Duration,
    /// How many restores run at once; the rest wait in state Starting.
    pub restore_workers: usize,
    /// How many more restores may wait for a worker; past them a restore is refused (503).
    pub restore_queue: usize,
    /// Whether repository writes are fsynced.
    pub durability: Durability,
    /// Brute-force protection of logon.
    pub logon_throttle: throttle::ThrottleConfig,
    /// The most work one query of the query service may do, in thousands of SQLite VM steps;
    /// a query that needs more is stopped with a 400.
    pub query_cost_limit: u64,
    /// Open to look only, beside a running server: no lock, no crash recovery, no account
    /// creation, nothing created or cleaned in the repository or the inventory. Without it the
    /// data folder is locked for this process, and recovery from a crash is safe: tasks left
    /// Running are marked failed and staging leftovers removed.
    pub read_only: bool,
    /// Directory (LDAP) logon for `DOMAIN\name` and `name@domain` accounts; none by default.
    pub directory: Option<directory::DirectoryConfig>,
}

impl CoreConfig {
    /// Defaults for a data folder.
    pub fn new(data_dir: impl Into<PathBuf>) -> CoreConfig {
        CoreConfig {
            data_dir: data_dir.into(),
            session_idle: Duration::from_secs(15 * 60),
            restore_workers: 2,
            restore_queue: 64,
            durability: Durability::Fsync,
            logon_throttle: throttle::ThrottleConfig::default(),
            query_cost_limit: catalog::DEFAULT_QUERY_BUDGET,
            read_only: false,
            directory: None,
        }
    }
}

/// The catalog's file name inside the data folder.
const CATALOG_FILE: &str = "catalog.db";

/// The permission bits of the data folder `dir` when other users may enter or read it (it
/// holds password hashes, the audit log and VM disks); `None` when only its owner may.
pub fn open_to_others(dir: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Whether `dir` holds an emrest data folder (one that `Core::open` has set up before).
pub fn is_data_folder(dir: &Path) -> bool {
    dir.join(CATALOG_FILE).is_file()
}

/// The whole domain, shared by the server's handlers and the CLI.
pub struct Core {
    config: CoreConfig,
    catalog: Arc<Catalog>,
    repo: Arc<Repository>,
    inventory: Arc<dyn Inventory>,
    sessions: Sessions,
    /// The directory that authenticates `DOMAIN\name` accounts, when configured.
    directory: Option<directory::Directory>,
    audit: audit::AuditLog,
    /// Restores, backup job runs and garbage collection in flight (runner.rs).
    runner: Arc<runner::Runner>,
    /// VMs a restore or a backup is working on (busy.rs).
    busy: busy::BusyVms,
    /// Quick rollbacks that could not be rolled forward (rollback_journal.rs).
    rollbacks: rollback_journal::Pending,
    /// While true, restores that have started wait before touching a disk (see
    /// [`Core::hold_restores`]).
    restore_hold: (Mutex<bool>, Condvar),
    /// Injected faults, when the server takes them (faults.rs).
    faults: faults::Faults,
    /// Counters and histograms for `/metrics` (metrics.rs).
    metrics: Arc<metrics::Metrics>,
    /// The data folder's lock, held for the life of a writing `Core`.
    _lock: Option<std::fs::File>,
}

/// Creates the data folder for its owner alone (0700), whatever the process's umask.
fn create_private_dir(dir: &Path) -> CoreResult<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let failed = |e: std::io::Error| {
        CoreError::Internal(format!("cannot create data folder {}: {e}", dir.display()))
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(failed)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(failed)
}

/// Name of the lock file in the data folder: one writing process at a time.
const LOCK_FILE: &str = "emrest.lock";

fn take_lock(dir: &Path) -> CoreResult<std::fs::File> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| CoreError::Internal(format!("cannot open {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(CoreError::Conflict(format!(
            "the data folder {} is in use by another emrest process (a running server?); stop it first",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(CoreError::Internal(format!(
            "cannot lock {}: {e}",
            path.display()
        ))),
    }
}

/// What `Core::open` found or did that the operator should hear about.
#[derive(Debug, Default)]
pub struct OpenReport {
    /// Set when the first administrator was created with a generated password.
    pub generated_admin_password: Option<String>,
    /// Tasks that were running when the server last stopped, now marked failed.
    pub interrupted_tasks: usize,
    /// Staging files left by an interrupted restore, now removed.
    pub staging_removed: usize,
    /// Indexes left by an interrupted backup (no restore point names them), now removed.
    pub orphan_indexes_removed: usize,
    /// Restores interrupted after they began changing a VM's disks, or before those were
    /// flushed, now rolled forward (rollback_journal.rs).
    pub rollbacks_rolled_forward: usize,
    /// Rollback journals that could not be rolled forward (kept; their VMs refuse restores).
    pub rollbacks_kept: usize,
}

/// Name of the account created on first start.
pub const ADMIN_ACCOUNT: &str = "admin";

impl Core {
    /// Open a data folder, creating what is missing, and lock it for this process (a second
    /// writer is refused). Recovers from an earlier crash: running tasks are marked failed and
    /// staging leftovers removed. With `config.read_only`, only looks (see `CoreConfig`).
    pub fn open(config: CoreConfig) -> CoreResult<(Arc<Core>, OpenReport)> {
        if config.read_only {
            return Self::open_read_only(config);
        }
        let dir = &config.data_dir;
        if !dir.exists() {
            create_private_dir(dir)?;
        }
        let lock = take_lock(dir)?;
        let catalog = Arc::new(Catalog::open(&dir.join(CATALOG_FILE))?);
        let repo = Arc::new(Repository::open(&dir.join("repo"), config.durability)?);
        let inventory: Arc<dyn Inventory> = Arc::new(LocalInventory::open(&dir.join("platforms"))?);
        let mut report = OpenReport {
            interrupted_tasks: catalog.fail_interrupted(now_millis())?,
            staging_removed: inventory.clean_staging()?,
            ..Default::default()
        };
        if catalog.account_count()? == 0 {
            let (password, generated) = match std::env::var("EMREST_ADMIN_PASSWORD") {
                Ok(p) if !p.is_empty() => (p, false),
                _ => (auth::generate_password(), true),
            };
            security::Store(&catalog).insert_account(
                &AccountRow {
                    id: Uuid::new_v4(),
                    name: ADMIN_ACCOUNT.into(),
                    password_hash: auth::hash_password(&password)?,
                },
                &[security::EnterpriseRole::PortalAdministrator],
            )?;
            if generated {
                report.generated_admin_password = Some(password);
            }
        }
        let audit = audit::AuditLog::open(dir)?;
        let core = Self::assemble(config, catalog, repo, inventory, audit, Some(lock))?;
        jobs::fail_interrupted(&core, now_millis())?;
        (report.rollbacks_rolled_forward, report.rollbacks_kept) =
            core.rollbacks
                .recover(&core.repo, core.inventory.as_ref(), &core.catalog)?;
        report.orphan_indexes_removed = jobs::remove_orphan_indexes(&core)?;
        Ok((core, report))
    }

    /// Look at a data folder that another process (the server) may be writing.
    fn open_read_only(config: CoreConfig) -> CoreResult<(Arc<Core>, OpenReport)> {
        let dir = &config.data_dir;
        if !is_data_folder(dir) {
            return Err(CoreError::invalid(
                "data",
                format!("{} is not an emrest data folder (create one with `emrest demo` or `emrest serve`)", dir.display()),
            ));
        }
        let catalog = Arc::new(Catalog::open(&dir.join(CATALOG_FILE))?);
        let repo = Arc::new(Repository::open_read_only(
            &dir.join("repo"),
            config.durability,
        )?);
        let inventory: Arc<dyn Inventory> =
            Arc::new(LocalInventory::open_read_only(&dir.join("platforms"))?);
        let audit = audit::AuditLog::disabled(dir);
        let core = Self::assemble(config, catalog, repo, inventory, audit, None)?;
        Ok((core, OpenReport::default()))
    }

    fn assemble(
        config: CoreConfig,
        catalog: Arc<Catalog>,
        repo: Arc<Repository>,
        inventory: Arc<dyn Inventory>,
        audit: audit::AuditLog,
        lock: Option<std::fs::File>,
    ) -> CoreResult<Arc<Core>> {
        catalog.set_query_budget(config.query_cost_limit);
        let metrics = Arc::new(metrics::Metrics::new());
        let directory = config
            .directory
            .clone()
            .map(directory::Directory::new)
            .transpose()?;
        let core = Arc::new(Core {
            directory,
            runner: runner::Runner::new(
                config.restore_workers,
                config.restore_queue,
                metrics.clone(),
            ),
            metrics,
            rollbacks: rollback_journal::Pending::new(&config.data_dir),
            restore_hold: (Mutex::new(false), Condvar::new()),
            faults: faults::Faults::default(),
            sessions: Sessions::new(config.session_idle, config.logon_throttle)?,
            audit,
            config,
            catalog,
            repo,
            inventory,
            busy: Default::default(),
            _lock: lock,
        });
        core.release_idle_scratch()?;
        Ok(core)
    }

    /// Gives the buffers the repository keeps from finished restores (up to ~130 MB, see
    /// `Repository::kept_scratch`) back to the system once no restore has ended for a minute,
    /// on a background thread for as long as this `Core` lives.
    fn release_idle_scratch(self: &Arc<Self>) -> CoreResult<()> {
        const IDLE: Duration = Duration::from_secs(60);
        let weak = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("release-scratch".into())
            .spawn(move || loop {
                std::thread::sleep(IDLE / 2);
                let Some(core) = weak.upgrade() else { return };
                if core.repo.release_scratch(IDLE) {
                    tracing::debug!("released the buffers kept from finished restores");
                }
            })
            .map(|_| ())
            .map_err(|e| CoreError::Internal(format!("cannot start a background thread: {e}")))
    }

    /// The data folder.
    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// The catalog (for the CLI's maintenance verbs and tests).
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The backup repository.
    pub fn repository(&self) -> &Repository {
        &self.repo
    }

    /// The VM inventory.
    pub fn inventory(&self) -> &dyn Inventory {
        self.inventory.as_ref()
    }

    // ---- accounts and logon sessions ----

    /// Create an account with a password and one of the CLI's roles, allowed to restore every
    /// VM (CLI and tests; the API's `POST /security/accounts` is [`Core::create_account`]).
    pub fn add_account(&self, name: &str, password: &str, role: Role) -> CoreResult<()> {
        if password.is_empty() {
            return Err(CoreError::invalid(
                "password",
                "account name and password must not be empty",
            ));
        }
        let spec = security::AccountSpec {
            name: name.to_string(),
            account_type: security::AccountType::User,
            roles: vec![security::EnterpriseRole::from_role(role)],
            allow_restore_all_vms: true,
            scopes: Vec::new(),
            flr: None,
            sql: None,
            password_hash: Some(auth::hash_password(password)?),
        };
        self.create_account_as(audit::LOCAL, &spec).map(|_| ())
    }

    /// Change an account's password (the CLI, on the data folder's owner's authority).
    pub fn set_password(&self, name: &str, password: &str) -> CoreResult<()> {
        let r = self.store_password(name, password);
        self.audit_result(audit::LOCAL, audit::Action::PasswordSet, Some(name), &r);
        r
    }

    /// emrest extension: an administrator sets the password of an account by its ID.
    pub fn set_password_of(&self, caller: &Caller, id: Uuid, password: &str) -> CoreResult<()> {
        let r = security::authorize(caller, security::Permission::ManageAccounts)
            .and_then(|_| self.account(caller, id))
            .and_then(|a| self.store_password(&a.name, password).map(|_| a.name));
        let object = match &r {
            Ok(name) => name.clone(),
            Err(_) => id.to_string(),
        };
        self.audit_result(caller.into(), audit::Action::PasswordSet, Some(&object), &r);
        r.map(|_| ())
    }

    fn store_password(&self, name: &str, password: &str) -> CoreResult<()> {
        if password.is_empty() {
            return Err(CoreError::invalid(
                "Password",
                "the password must not be empty",
            ));
        }
        if self
            .catalog
            .set_password(name, &auth::hash_password(password)?)?
        {
            Ok(())
        } else {
            Err(CoreError::not_found("Account", name))
        }
    }

    /// Check credentials and open a logon session (no client address: CLI and tests).
    pub fn logon(&self, user: &str, password: &str) -> CoreResult<LogonSessionRecord> {
        self.logon_from(user, password, None)
    }

    /// Check credentials from a client address and open a logon session; throttled, audited.
    pub fn logon_from(
        &self,
        user: &str,
        password: &str,
        address: Option<std::net::IpAddr>,
    ) -> CoreResult<LogonSessionRecord> {
        let r = match self
            .directory
            .as_ref()
            .and_then(|d| Some((d, d.claim(user)?)))
        {
            Some((d, name)) => self.directory_logon(d, user, name, password, address),
            None => self.sessions.logon(&self.catalog, user, password, address),
        };
        self.metrics.logon(match &r {
            Ok(_) => "success",
            Err(CoreError::TooManyAttempts { .. }) => "throttled",
            Err(_) => "refused",
        });
        let action = if r.is_ok() {
            audit::Action::Logon
        } else {
            audit::Action::LogonFailed
        };
        self.audit_result(audit::Actor { user, address }, action, None, &r);
        r
    }

    /// The caller behind a live session.
    pub fn caller(&self, session: Uuid) -> CoreResult<Caller> {
        self.sessions.caller(&self.catalog, session)
    }

    /// The caller's own logon sessions, its current one first.
    pub fn logon_sessions(&self, caller: &Caller) -> CoreResult<Vec<LogonSessionRecord>> {
        self.sessions.list(caller)
    }

    /// One logon session.
    pub fn logon_session(&self, caller: &Caller, id: Uuid) -> CoreResult<LogonSessionRecord> {
        self.sessions.get(caller, id)
    }

    /// Log a session out.
    pub fn logout(&self, caller: &Caller, id: Uuid) -> CoreResult<()> {
        let r = self.sessions.logout(caller, id);
        let object = r.as_ref().ok().map(|s| s.user_name.clone());
        self.audit_result(caller.into(), audit::Action::Logoff, object.as_deref(), &r);
        r.map(|_| ())
    }

    /// emrest extension: every live logon session with its handle (administrators only).
    pub fn managed_logon_sessions(
        &self,
        caller: &Caller,
    ) -> CoreResult<Vec<(String, LogonSessionRecord)>> {
        security::authorize(caller, security::Permission::ManageAccounts)?;
        self.sessions.all()
    }

    /// emrest extension: end any account's logon session by its handle (administrators only).
    pub fn end_logon_session(&self, caller: &Caller, handle: &str) -> CoreResult<()> {
        let r = security::authorize(caller, security::Permission::ManageAccounts)
            .and_then(|_| self.sessions.end_by_handle(handle));
        let object = r.as_ref().ok().map(|s| s.user_name.clone());
        self.audit_result(caller.into(), audit::Action::Logoff, object.as_deref(), &r);
        r.map(|_| ())
    }

    /// The metrics, for the server to count requests into.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
    }

    /// The injected faults: whether they are taken, and which rule fires on a request.
    pub fn faults(&self) -> &faults::Faults {
        &self.faults
    }

    /// Adding, listing and removing fault rules, checked and audited.
    pub fn fault_admin(&self) -> faults::FaultAdmin<'_> {
        faults::FaultAdmin { core: self }
    }

    /// Every metric in the Prometheus text format, with the levels read now (tasks running and
    /// waiting, the repository's size).
    pub fn metrics_text(&self) -> String {
        let (restores_running, restores_waiting, jobs_running) = self.runner.levels();
        let (repository_bytes, repository_chunks) = self.repo.stored_totals().unwrap_or_else(|e| {
            tracing::warn!("metrics: cannot read the repository's size: {e}");
            (0, 0)
        });
        self.metrics.encode(metrics::Levels {
            restores_running,
            restores_waiting,
            jobs_running,
            repository_bytes,
            repository_chunks,
        })
    }

    /// The single authorization check (see [`security::authorize`]).
    pub fn authorize(&self, caller: &Caller, permission: security::Permission) -> CoreResult<()> {
        security::authorize(caller, permission)
    }

    /// Record an event in the audit log.
    pub fn audit(
        &self,
        actor: audit::Actor<'_>,
        action: audit::Action,
        object: Option<&str>,
        outcome: audit::Outcome,
    ) {
        self.audit.record(actor, action, object, outcome, None);
    }

    /// Record the outcome of an operation in the audit log.
    pub(crate) fn audit_result<T>(
        &self,
        actor: audit::Actor<'_>,
        action: audit::Action,
        object: Option<&str>,
        r: &CoreResult<T>,
    ) {
        let detail = r.as_ref().err().map(|e| e.to_string());
        self.audit.record(
            actor,
            action,
            object,
            audit::Outcome::of(r),
            detail.as_deref(),
        );
    }

    // ---- discovery ----

    /// All backup servers.
    pub fn backup_servers(&self) -> CoreResult<Vec<BackupServerRecord>> {
        self.catalog.backup_servers()
    }

    /// One backup server.
    pub fn backup_server(&self, id: Uuid) -> CoreResult<BackupServerRecord> {
        self.backup_servers()?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| CoreError::not_found("Backup server", id))
    }

    /// Hierarchy roots registered with a backup server.
    pub fn hierarchy_roots(&self) -> CoreResult<Vec<HierarchyRootRecord>> {
        let linked: HashMap<Uuid, Uuid> = self.catalog.hierarchy_roots()?.into_iter().collect();
        let mut roots: Vec<HierarchyRootRecord> = self
            .inventory
            .roots()?
            .into_iter()
            .filter_map(|r: RootInfo| {
                linked.get(&r.id).map(|server| HierarchyRootRecord {
                    id: r.id,
                    name: r.name,
                    kind: r.kind,
                    unique_id: r.unique_id,
                    backup_server_id: *server,
                })
            })
            .collect();
        roots.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(roots)
    }

    /// One hierarchy root.
    pub fn hierarchy_root(&self, id: Uuid) -> CoreResult<HierarchyRootRecord> {
        self.hierarchy_roots()?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| CoreError::not_found("Hierarchy root", id))
    }

    /// All backups.
    pub fn backups(&self) -> CoreResult<Vec<BackupRecord>> {
        self.catalog.backups()
    }

    /// One backup.
    pub fn backup(&self, id: Uuid) -> CoreResult<BackupRecord> {
        self.backups()?
            .into_iter()
            .find(|b| b.id == id)
            .ok_or_else(|| CoreError::not_found("Backup", id))
    }

    /// Restore points, of one backup when given.
    pub fn restore_points(&self, backup: Option<Uuid>) -> CoreResult<Vec<RestorePointRecord>> {
        if let Some(b) = backup {
            self.backup(b)?;
        }
        self.catalog.restore_points(backup)
    }

    /// One restore point.
    pub fn restore_point(&self, id: Uuid) -> CoreResult<RestorePointRecord> {
        self.catalog
            .restore_point(id)?
            .ok_or_else(|| CoreError::not_found("Restore point", id))
    }

    /// VM restore points, of one restore point when given.
    pub fn vm_restore_points(&self, point: Option<Uuid>) -> CoreResult<Vec<VmRestorePointRecord>> {
        if let Some(p) = point {
            self.restore_point(p)?;
        }
        self.catalog.vm_restore_points(point)
    }

    /// One VM restore point.
    pub fn vm_restore_point(&self, id: Uuid) -> CoreResult<VmRestorePointRecord> {
        self.catalog
            .vm_restore_point(id)?
            .ok_or_else(|| CoreError::not_found("VM restore point", id))
    }

    /// Backup files, of one restore point when given.
    pub fn backup_files(&self, point: Option<Uuid>) -> CoreResult<Vec<BackupFileRecord>> {
        if let Some(p) = point {
            self.restore_point(p)?;
        }
        self.catalog.backup_files(point)
    }

    /// One backup file.
    pub fn backup_file(&self, id: Uuid) -> CoreResult<BackupFileRecord> {
        self.catalog
            .backup_file(id)?
            .ok_or_else(|| CoreError::not_found("Backup file", id))
    }

    // ---- tasks and restore sessions ----

    fn visible(caller: &Caller, owner: Uuid) -> bool {
        caller.is_admin() || caller.account_id == owner
    }

    /// Tasks the caller may see.
    pub fn tasks(&self, caller: &Caller) -> CoreResult<Vec<TaskRecord>> {
        let scope = (!caller.is_admin()).then_some(caller.account_id);
        self.catalog.tasks(scope)
    }

    /// One task.
    pub fn task(&self, caller: &Caller, id: TaskId) -> CoreResult<TaskRecord> {
        self.catalog
            .task(id)?
            .filter(|t| Self::visible(caller, t.account_id))
            .ok_or_else(|| CoreError::not_found("Task", id))
    }

    /// Remove a task; a running restore is cancelled first and leaves its VM as it was.
    pub fn delete_task(&self, caller: &Caller, id: TaskId) -> CoreResult<()> {
        let task = self.task(caller, id)?;
        if task.state == TaskState::Running {
            let work = task.restore_session_id.map(runner::Work::Restore);
            if let Some(ctl) = work.and_then(|w| self.runner.control(w)) {
                ctl.cancel(&caller.user_name);
            }
        }
        self.catalog.delete_task(id)
    }

    /// Restore sessions the caller may see, with live progress.
    pub fn restore_sessions(&self, caller: &Caller) -> CoreResult<Vec<RestoreSessionRecord>> {
        let scope = (!caller.is_admin()).then_some(caller.account_id);
        let mut v = self.catalog.restore_sessions(scope)?;
        for s in &mut v {
            self.live_progress(s);
        }
        Ok(v)
    }

    /// One restore session.
    pub fn restore_session(&self, caller: &Caller, id: Uuid) -> CoreResult<RestoreSessionRecord> {
        let mut s = self
            .catalog
            .restore_session(id)?
            .filter(|s| Self::visible(caller, s.account_id))
            .ok_or_else(|| CoreError::not_found("Restore session", id))?;
        self.live_progress(&mut s);
        Ok(s)
    }

    /// A restore session's log (emrest extension).
    pub fn restore_log(&self, caller: &Caller, id: Uuid) -> CoreResult<Vec<LogLine>> {
        self.restore_session(caller, id)?;
        self.catalog.session_log(id)
    }

    fn live_progress(&self, s: &mut RestoreSessionRecord) {
        if s.state != SessionState::Working {
            return;
        }
        // By session, not through the task list: a task deleted to cancel its restore is
        // hidden from it while the restore winds down, and progress must not drop to 0.
        if let Some(percent) = self.runner.progress_of_session(s.id) {
            s.progress = percent;
        }
    }

    /// Wait until no restore is running (tests and orderly shutdown).
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self.runner.no_restores() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}
