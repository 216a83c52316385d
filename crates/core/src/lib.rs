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
mod infrastructure;
pub mod job_admin;
pub mod jobs;
mod logons;
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
mod view;
pub mod vms;

pub use accounts::Accounts;
pub use error::{CoreError, CoreResult};
pub use infrastructure::Infrastructure;
pub use jobs::Jobs;
pub use logons::Logons;
pub use model::*;
pub use restore::{RestoreParameters, RestoreRequest};
pub use restores::Restores;
pub use view::View;

use auth::Sessions;
use catalog::{AccountRow, Catalog};
use emrest_platform::{Inventory, LocalInventory};
use emrest_repo::Durability;
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
    /// Where the repository is, when not in the data folder: a folder's path, or
    /// `s3://BUCKET[/PREFIX]?endpoint=…&region=…` (see [`repository_location`]).
    pub repository: Option<String>,
    /// The local platform's datastores, when not in the data folder (several nodes point at
    /// the same one, as hypervisor hosts share datastores).
    pub inventory: Option<PathBuf>,
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
            repository: None,
            inventory: None,
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
    /// [`Restores::hold`]).
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

/// Where a configured repository is.
#[derive(Debug, PartialEq, Eq)]
pub enum RepositoryLocation {
    /// A folder.
    Folder(PathBuf),
    /// An S3-compatible bucket (or a prefix in one).
    S3(emrest_s3::S3Location),
}

pub use emrest_repo::{CopyStats, NoControl, Repository, RequestCounts};

/// Parses a `--repository` value: `s3://…`, `file:///path` or a path.
pub fn repository_location(value: &str) -> CoreResult<RepositoryLocation> {
    let invalid = |m: String| CoreError::invalid("repository", m);
    if value.starts_with("s3://") {
        return emrest_s3::S3Location::parse(value)
            .map(RepositoryLocation::S3)
            .map_err(invalid);
    }
    let path = value.strip_prefix("file://").unwrap_or(value);
    if path.is_empty() || value.contains("://") && !value.starts_with("file://") {
        return Err(invalid(format!(
            "'{value}' is neither a folder nor an s3:// address"
        )));
    }
    Ok(RepositoryLocation::Folder(PathBuf::from(path)))
}

/// The inventory's folder: configured, or in the data folder.
fn inventory_dir(config: &CoreConfig) -> PathBuf {
    config
        .inventory
        .clone()
        .unwrap_or_else(|| config.data_dir.join("platforms"))
}

/// The key of the catalog's identity in its `meta` table, which a configured repository
/// records as its owner.
const CATALOG_ID_KEY: &str = "catalog_id";

/// Opens the repository `config` names (the data folder's by default). A configured one is
/// claimed for this catalog, so two catalogs never share one (a read-only open only checks);
/// an S3 one keeps its metadata cache in the data folder.
fn open_repository(config: &CoreConfig, catalog: &Catalog) -> CoreResult<Repository> {
    let read_only = config.read_only;
    let location = match &config.repository {
        Some(value) => repository_location(value)?,
        None => RepositoryLocation::Folder(config.data_dir.join("repo")),
    };
    let repo = match location {
        RepositoryLocation::Folder(root) if read_only => {
            Repository::open_read_only(&root, config.durability)?
        }
        RepositoryLocation::Folder(root) => Repository::open(&root, config.durability)?,
        RepositoryLocation::S3(location) => {
            let storage = s3_storage(location, &config.data_dir)?;
            if read_only {
                Repository::open_storage_read_only(storage, config.durability)?
            } else {
                Repository::open_storage(
                    storage,
                    config.durability,
                    emrest_repo::DEFAULT_CHUNK_SIZE,
                )?
            }
        }
    };
    if config.repository.is_some() {
        if read_only {
            // Nothing is written: a catalog that has no identity yet owns no repository.
            let id = catalog.meta(CATALOG_ID_KEY)?.unwrap_or_default();
            repo.claim(&id, false)?;
        } else {
            repo.claim(&catalog_id(catalog)?, true)?;
        }
    }
    Ok(repo)
}

/// The catalog's identity, made on first use.
fn catalog_id(catalog: &Catalog) -> CoreResult<String> {
    catalog.meta_or_insert(CATALOG_ID_KEY, &Uuid::new_v4().to_string())
}

/// The bucket at `location`, with its metadata cache in the data folder `data_dir`.
fn s3_storage(
    location: emrest_s3::S3Location,
    data_dir: &Path,
) -> CoreResult<Arc<dyn emrest_repo::Storage>> {
    let cache = data_dir.join("cache").join("s3");
    let storage = emrest_s3::S3Storage::new(location, Some(&cache))
        .map_err(|e| CoreError::invalid("repository", e.to_string()))?;
    Ok(Arc::new(storage))
}

impl Owner {
    /// Copies this deployment's repository to `to` (parsed by [`repository_location`]), skipping what an earlier, interrupted copy already put there;
    /// with the requests the destination was sent, when it counts them.
    /// The catalog is not changed: run with `--repository` naming the copy afterwards (and
    /// verify it: `emrest verify` with that flag).
    pub fn copy_repository(
        &self,
        to: RepositoryLocation,
        ctl: &dyn emrest_repo::Control,
    ) -> CoreResult<(emrest_repo::CopyStats, Option<RequestCounts>)> {
        let dest: Arc<dyn emrest_repo::Storage> = match to {
            RepositoryLocation::S3(location) => s3_storage(location, &self.config.data_dir)?,
            RepositoryLocation::Folder(root) => {
                std::fs::create_dir_all(&root).map_err(|e| {
                    CoreError::invalid(
                        "repository",
                        format!("cannot create {}: {e}", root.display()),
                    )
                })?;
                Arc::new(emrest_repo::FolderStorage::new(
                    &root,
                    self.config.durability,
                ))
            }
        };
        // A repository that never had an owner gets this catalog's before it is copied.
        self.repo.claim(&catalog_id(&self.catalog)?, true)?;
        let stats = self.repo.copy_to(dest.as_ref(), ctl)?;
        Ok((stats, dest.requests()))
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
    pub fn open(config: CoreConfig) -> CoreResult<(Owner, OpenReport)> {
        if config.read_only {
            return Self::open_read_only(config);
        }
        let dir = &config.data_dir;
        if !dir.exists() {
            create_private_dir(dir)?;
        }
        let lock = take_lock(dir)?;
        let catalog = Arc::new(Catalog::open(&dir.join(CATALOG_FILE))?);
        let repo = Arc::new(open_repository(&config, &catalog)?);
        let inventory: Arc<dyn Inventory> =
            Arc::new(LocalInventory::open(&inventory_dir(&config))?);
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
        Ok((Owner(core), report))
    }

    /// Look at a data folder that another process (the server) may be writing.
    fn open_read_only(config: CoreConfig) -> CoreResult<(Owner, OpenReport)> {
        let dir = &config.data_dir;
        if !is_data_folder(dir) {
            return Err(CoreError::invalid(
                "data",
                format!("{} is not an emrest data folder (create one with `emrest demo` or `emrest serve`)", dir.display()),
            ));
        }
        let catalog = Arc::new(Catalog::open(&dir.join(CATALOG_FILE))?);
        let repo = Arc::new(open_repository(&config, &catalog)?);
        let inventory: Arc<dyn Inventory> =
            Arc::new(LocalInventory::open_read_only(&inventory_dir(&config))?);
        let audit = audit::AuditLog::disabled(dir);
        let core = Self::assemble(config, catalog, repo, inventory, audit, None)?;
        Ok((Owner(core), OpenReport::default()))
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

    pub(crate) fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub(crate) fn repository(&self) -> &Repository {
        &self.repo
    }

    pub(crate) fn inventory(&self) -> &dyn Inventory {
        self.inventory.as_ref()
    }

    /// Logging on and off, and the caller behind a session.
    pub fn logons(&self) -> Logons<'_> {
        Logons(self)
    }

    /// Backup servers, hierarchy roots and repositories: what every caller sees alike.
    pub fn infrastructure(&self) -> Infrastructure<'_> {
        Infrastructure(self)
    }

    /// Accounts, their roles and restore scopes, for an administering caller.
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts(self)
    }

    /// Starting restores, and their tasks.
    pub fn restores(self: &Arc<Self>) -> Restores<'_> {
        Restores(self)
    }

    /// Backup jobs: their runs, retention, garbage collection and schedules.
    pub fn jobs(self: &Arc<Self>) -> Jobs<'_> {
        Jobs(self)
    }

    // ---- accounts and logon sessions ----

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

    /// The catalog's data version: it changes with every commit that changes a row (the
    /// server's reply cache keys on it).
    pub fn data_version(&self) -> CoreResult<u64> {
        self.catalog.data_version()
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
            repository_requests: self.repo.requests(),
        })
    }

    /// The single authorization check (see [`security::authorize`]).
    pub fn authorize(&self, caller: &Caller, permission: security::Permission) -> CoreResult<()> {
        security::authorize(caller, permission)
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
}

/// Implements `Deref` from a service (a borrowed handle on the `Core`) to what it borrows, so
/// that a service's methods read the `Core`'s parts directly.
macro_rules! service {
    ($service:ident, $target:ty) => {
        impl std::ops::Deref for $service<'_> {
            type Target = $target;
            fn deref(&self) -> &$target {
                self.0
            }
        }
    };
}
pub(crate) use service;

/// The data folder's owner: whoever opened it ([`Core::open`]). Everything unscoped is here —
/// the catalog, the repository and the inventory themselves, a [`View`] of everything, the
/// local account verbs, the reports, demo data. The CLI holds the `Owner`; the server is
/// handed only the `Arc<Core>` it derefs to, so no unscoped read is within a handler's reach.
pub struct Owner(Arc<Core>);

impl std::ops::Deref for Owner {
    type Target = Arc<Core>;
    fn deref(&self) -> &Arc<Core> {
        &self.0
    }
}

impl Owner {
    /// The catalog (for the CLI's maintenance verbs and tests).
    pub fn catalog(&self) -> &Catalog {
        &self.0.catalog
    }

    /// The backup repository.
    pub fn repository(&self) -> &Repository {
        &self.0.repo
    }

    /// The repository, to keep beyond the `Owner` (the CLI reports its requests at exit).
    pub fn shared_repository(&self) -> Arc<Repository> {
        Arc::clone(&self.0.repo)
    }

    /// The VM inventory.
    pub fn inventory(&self) -> &dyn Inventory {
        self.0.inventory.as_ref()
    }

    /// Every backup, restore point, task and session, unscoped.
    pub fn view(&self) -> View<'_> {
        self.0.everything()
    }
}
