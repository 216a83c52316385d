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
pub mod error;
pub mod filter;
pub mod jobs;
pub mod lookup;
pub mod model;
pub mod query;
pub mod report;
pub mod restore;
pub mod rollback_journal;
pub mod security;
pub mod summary;
pub mod throttle;
pub mod time;

pub use error::{CoreError, CoreResult};
pub use model::*;
pub use restore::{RestoreParameters, RestoreRequest};

use auth::Sessions;
use catalog::{AccountRow, Catalog};
use emrest_platform::{Inventory, LocalInventory, RootInfo, VmKey};
use emrest_repo::Control;
use emrest_repo::{Durability, Repository};
use restore::RunControl;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
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
    /// Whether repository writes are fsynced.
    pub durability: Durability,
    /// Brute-force protection of logon.
    pub logon_throttle: throttle::ThrottleConfig,
    /// Open to look only, beside a running server: no lock, no crash recovery, no account
    /// creation, nothing created or cleaned in the repository or the inventory. Without it the
    /// data folder is locked for this process, and recovery from a crash is safe: tasks left
    /// Running are marked failed and staging leftovers removed.
    pub read_only: bool,
}

impl CoreConfig {
    /// Defaults for a data folder.
    pub fn new(data_dir: impl Into<PathBuf>) -> CoreConfig {
        CoreConfig {
            data_dir: data_dir.into(),
            session_idle: Duration::from_secs(15 * 60),
            restore_workers: 2,
            durability: Durability::Fsync,
            logon_throttle: throttle::ThrottleConfig::default(),
            read_only: false,
        }
    }
}

/// The catalog's file name inside the data folder.
const CATALOG_FILE: &str = "catalog.db";

/// Whether `dir` holds an emrest data folder (one that `Core::open` has set up before).
pub fn is_data_folder(dir: &Path) -> bool {
    dir.join(CATALOG_FILE).is_file()
}

/// A restore in flight.
struct Running {
    /// Its restore session.
    session: Uuid,
    ctl: Arc<RunControl>,
}

/// Counting gate for restore workers.
struct Slots {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Slots {
    fn acquire(&self) {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.cv.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
    }
    fn release(&self) {
        *self.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.cv.notify_one();
    }
}

/// The whole domain, shared by the server's handlers and the CLI.
pub struct Core {
    config: CoreConfig,
    catalog: Arc<Catalog>,
    repo: Arc<Repository>,
    inventory: Arc<dyn Inventory>,
    sessions: Sessions,
    audit: audit::AuditLog,
    running: Mutex<HashMap<TaskId, Running>>,
    /// VMs a restore or a backup is working on (busy.rs).
    busy: busy::BusyVms,
    slots: Arc<Slots>,
    /// Backup jobs in flight (jobs.rs).
    jobs: jobs::JobsState,
    /// Quick rollbacks that could not be rolled forward (rollback_journal.rs).
    rollbacks: rollback_journal::Pending,
    /// While true, restores that have started wait before touching a disk (see
    /// [`Core::hold_restores`]).
    restore_hold: (Mutex<bool>, Condvar),
    /// The data folder's lock, held for the life of a writing `Core`.
    _lock: Option<std::fs::File>,
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
        std::fs::create_dir_all(dir).map_err(|e| {
            CoreError::Internal(format!("cannot create data folder {}: {e}", dir.display()))
        })?;
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
        let workers = config.restore_workers.max(1);
        let core = Arc::new(Core {
            rollbacks: rollback_journal::Pending::new(&config.data_dir),
            restore_hold: (Mutex::new(false), Condvar::new()),
            sessions: Sessions::new(config.session_idle, config.logon_throttle)?,
            audit,
            config,
            catalog,
            repo,
            inventory,
            running: Mutex::new(HashMap::new()),
            busy: Default::default(),
            slots: Arc::new(Slots {
                free: Mutex::new(workers),
                cv: Condvar::new(),
            }),
            jobs: Default::default(),
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

    /// Change an account's password.
    pub fn set_password(&self, name: &str, password: &str) -> CoreResult<()> {
        let r = (|| {
            if password.is_empty() {
                return Err(CoreError::invalid(
                    "password",
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
        })();
        self.audit_result(audit::LOCAL, audit::Action::PasswordSet, Some(name), &r);
        r
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
        let r = self.sessions.logon(&self.catalog, user, password, address);
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

    /// Logon sessions the caller may see.
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

    // ---- restore ----

    /// Plan a restore and start it on a worker; returns the running task at once.
    pub fn start_restore(
        self: &Arc<Self>,
        caller: &Caller,
        point_id: Uuid,
        request: &RestoreRequest,
    ) -> CoreResult<TaskRecord> {
        let object = point_id.to_string();
        let r = self.start_restore_checked(caller, point_id, request);
        self.audit_result(
            caller.into(),
            audit::Action::RestoreStart,
            Some(&object),
            &r,
        );
        r
    }

    fn start_restore_checked(
        self: &Arc<Self>,
        caller: &Caller,
        point_id: Uuid,
        request: &RestoreRequest,
    ) -> CoreResult<TaskRecord> {
        security::authorize(caller, security::Permission::RestoreVm)?;
        let point = self.vm_restore_point(point_id)?;
        security::check_vm(caller, &point)?;
        let indexes = self.check_point_intact(&point)?;
        let mut plan = restore::plan(self.inventory.as_ref(), point, request)?;
        // The worker restores from the indexes just checked rather than reading them again.
        plan.indexes = indexes;
        if let restore::RestoreTarget::Original { .. } = &plan.target {
            self.rollbacks.check(&plan.point.vm)?;
        }
        let busy_key = match &plan.target {
            restore::RestoreTarget::Original { .. } => plan.point.vm.clone(),
            restore::RestoreTarget::NewVm { name, .. } => VmKey {
                root: plan.point.vm.root,
                object_ref: format!("new-vm-name:{name}"),
            },
        };
        self.busy.claim(
            &[(busy_key.clone(), plan.point.vm_name.clone())],
            &busy::Activity::Restore,
        )?;
        let now = now_millis();
        let session_id = Uuid::new_v4();
        let started = (|| -> CoreResult<TaskRecord> {
            self.catalog.insert_restore_session(
                session_id,
                point_id,
                &plan.point.vm_name,
                caller.account_id,
                now,
            )?;
            self.catalog.append_log(
                session_id,
                &format!(
                    "Restore requested by {}: {}",
                    caller.user_name,
                    plan.describe()
                ),
                now,
            )?;
            self.catalog
                .insert_task("StartVMRestore", Some(session_id), caller.account_id, now)
        })();
        let task = match started {
            Ok(t) => t,
            Err(e) => {
                self.release_busy(&busy_key);
                return Err(e);
            }
        };
        let ctl = Arc::new(RunControl {
            rollback_journal: Some((self.rollbacks.dir().to_path_buf(), session_id)),
            ..Default::default()
        });
        if let Ok(mut running) = self.running.lock() {
            running.insert(
                task.id,
                Running {
                    session: session_id,
                    ctl: ctl.clone(),
                },
            );
        }
        let core = Arc::clone(self);
        let task_id = task.id;
        let key = busy_key.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("restore-{}", task.id))
            .spawn(move || core.run_restore(task_id, session_id, plan, ctl, busy_key));
        if let Err(e) = spawned {
            // Nothing ran: the task and session end failed and the VM is free again.
            let msg = format!("cannot start a restore worker: {e}");
            let _ = self.catalog.finish_session(
                session_id,
                SessionResult::Failed,
                None,
                Some(&msg),
                now_millis(),
            );
            let _ = self.catalog.finish_task(task_id, false, &msg);
            if let Ok(mut running) = self.running.lock() {
                running.remove(&task_id);
            }
            self.release_busy(&key);
            return Err(CoreError::Internal(msg));
        }
        Ok(task)
    }

    fn release_busy(&self, key: &VmKey) {
        self.busy.release([key]);
    }

    /// Holds restores that start from now on (session Working) before they touch any disk,
    /// until released with `false` or cancelled, for tests and maintenance that need
    /// restores in flight for as long as they look at them. Cancelling a held restore ends
    /// it at once with the VM as it was.
    pub fn hold_restores(&self, hold: bool) {
        let (held, changed) = &self.restore_hold;
        *held.lock().unwrap_or_else(PoisonError::into_inner) = hold;
        changed.notify_all();
    }

    fn wait_while_held(&self, ctl: &RunControl) {
        let (held, changed) = &self.restore_hold;
        let mut h = held.lock().unwrap_or_else(PoisonError::into_inner);
        // Cancelling does not notify: look again every few milliseconds.
        while *h && !ctl.cancelled() {
            h = changed
                .wait_timeout(h, Duration::from_millis(5))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn run_restore(
        &self,
        task: TaskId,
        session: Uuid,
        plan: restore::RestorePlan,
        ctl: Arc<RunControl>,
        busy_key: VmKey,
    ) {
        self.slots.acquire();
        let log = |text: String| {
            if let Err(e) = self.catalog.append_log(session, &text, now_millis()) {
                tracing::warn!("restore session {session}: cannot write log: {e}");
            }
        };
        let outcome = if ctl.cancelled() {
            Err(CoreError::Repo(emrest_repo::RepoError::Cancelled))
        } else {
            if let Err(e) = self
                .catalog
                .start_restore(session, "Restore started", now_millis())
            {
                tracing::warn!("restore session {session}: cannot record the start: {e}");
            }
            self.wait_while_held(&ctl);
            if let restore::RestoreTarget::Original { .. } = &plan.target {
                // The previous restore of this VM may still be flushing its disks.
                self.rollbacks.wait_flushed(&plan.point.vm);
            }
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                restore::execute(&self.repo, self.inventory.as_ref(), &plan, &ctl, &log)
            }))
            .unwrap_or_else(|_| Err(CoreError::Internal("the restore worker panicked".into())))
        };
        let now = now_millis();
        let finished = match &outcome {
            Ok(out) => self.catalog.finish_restore(
                session,
                task,
                SessionResult::Success,
                Some(&out.restored_obj_ref),
                "Ok",
                Some(&format!(
                    "Restore completed: examined {} chunks, wrote {} chunks ({} bytes)",
                    out.chunks_examined, out.chunks_written, out.bytes_written
                )),
                now,
            ),
            Err(e) => {
                let msg = match e {
                    CoreError::Repo(emrest_repo::RepoError::Cancelled) => format!(
                        "Restore cancelled by {}; the VM was left as it was",
                        ctl.canceller()
                    ),
                    // Name the point as well as the chunk: the operator restores from another.
                    CoreError::Repo(
                        emrest_repo::RepoError::ChunkMissing { .. }
                        | emrest_repo::RepoError::ChunkCorrupt { .. }
                        | emrest_repo::RepoError::IndexMissing { .. }
                        | emrest_repo::RepoError::IndexCorrupt { .. },
                    ) => format!(
                        "Restore failed: {e}; VM restore point {} of '{}' is damaged, restore from another point",
                        plan.point.id, plan.point.vm_name
                    ),
                    _ => format!("Restore failed: {e}"),
                };
                if !matches!(e, CoreError::Repo(emrest_repo::RepoError::Cancelled)) {
                    tracing::warn!("task {task}: {msg}");
                }
                self.catalog.finish_restore(
                    session,
                    task,
                    SessionResult::Failed,
                    None,
                    &msg,
                    Some(&msg),
                    now,
                )
            }
        };
        let recorded = finished.is_ok();
        if let Err(e) = finished {
            tracing::error!("task {task}: cannot record the result: {e}");
        }
        let succeeded = outcome.is_ok() && recorded;
        let flushing = succeeded && self.rollbacks.journalled(session);
        if flushing {
            // The task is Finished: the VM is free for a backup or the next restore while its
            // disks are flushed; a restore waits for the flush before it journals
            // (`wait_flushed` above).
            self.rollbacks.flushing(&plan.point.vm);
            self.release_busy(&busy_key);
        }
        self.rollbacks.after_restore(
            &self.repo,
            self.inventory.as_ref(),
            &self.catalog,
            session,
            succeeded,
        );
        if flushing {
            self.rollbacks.flushed(&plan.point.vm);
        } else {
            self.release_busy(&busy_key);
        }
        if let Ok(mut running) = self.running.lock() {
            running.remove(&task);
        }
        self.slots.release();
    }

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
            if let Some(r) = self
                .running
                .lock()
                .ok()
                .and_then(|r| r.get(&id).map(|r| r.ctl.clone()))
            {
                r.cancel(&caller.user_name);
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
        let Ok(running) = self.running.lock() else {
            return;
        };
        if let Some(r) = running.values().find(|r| r.session == s.id) {
            s.progress = r.ctl.percent();
        }
    }

    /// Wait until no restore is running (tests and orderly shutdown).
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self.running.lock().map(|r| r.is_empty()).unwrap_or(true) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}
