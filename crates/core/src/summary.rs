//! The backup repository as the API shows it (em_rest/get_repositories_id.md) and the figures
//! of the summary reports (em_rest/get_reports_summary*.md), computed from the catalog.
//!
//! emrest has one chunk repository per data folder (`<data>/repo`): it is one Repository record
//! with a UUID kept in the catalog's `meta` table, belonging to the first backup server.

use crate::error::{CoreError, CoreResult};
use crate::model::{now_millis, Millis};
use crate::Core;
use rusqlite::OptionalExtension;
use std::collections::HashMap;
use std::path::Path;
use uuid::Uuid;

/// `meta` key of the repository's UUID.
pub(crate) const REPOSITORY_KEY: &str = "repository_id";
/// Name shown for the repository (the name Veeam gives a server's local default repository).
pub const REPOSITORY_NAME: &str = "Default Backup Repository";
/// A folder on the server's own file system: `LinuxLocal` among the documented kinds
/// (em_rest/get_repositories_id.md).
pub const REPOSITORY_KIND: &str = "LinuxLocal";

/// The backup repository.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RepositoryRecord {
    pub id: Uuid,
    pub name: String,
    pub kind: &'static str,
    pub backup_server_id: Uuid,
    /// Size of the file system holding the repository, in bytes.
    pub capacity: u64,
    /// Space on that file system available to emrest, in bytes.
    pub free_space: u64,
    /// Bytes of chunk files stored.
    pub backup_size: u64,
}

/// `/reports/summary/overview`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OverviewFigures {
    pub backup_servers: u64,
    pub proxy_servers: u64,
    pub repository_servers: u64,
    pub running_jobs: u64,
    pub scheduled_jobs: u64,
    pub successful_vms: u64,
    pub warning_vms: u64,
    pub failed_vms: u64,
}

/// `/reports/summary/vms_overview`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VmsOverviewFigures {
    pub protected_vms: u64,
    pub backed_up_vms: u64,
    pub restore_points: u64,
    pub full_points_size: u64,
    pub incremental_points_size: u64,
    pub source_vms_size: u64,
    pub success_percent: u64,
}

/// `/reports/summary/job_statistics` (durations in whole seconds).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobStatistics {
    pub running_jobs: u64,
    pub scheduled_jobs: u64,
    pub total_runs: u64,
    pub successful_runs: u64,
    pub warning_runs: u64,
    pub failed_runs: u64,
    pub max_duration_secs: u64,
    pub max_duration_job: String,
}

/// One day of `/reports/summary/processed_vms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessedDay {
    /// Midnight UTC.
    pub day: Millis,
    pub backed_up_vms: u64,
}

/// Days `/reports/summary/processed_vms` covers, today included.
pub const PROCESSED_DAYS: i64 = 7;
const DAY_MS: i64 = 86_400_000;

/// Total and available bytes of the file system holding `path`.
// The statvfs field types differ between platforms (u32 on some 32-bit targets).
#[allow(clippy::useless_conversion)]
pub fn filesystem_space(path: &Path) -> CoreResult<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| CoreError::Internal(format!("{}: NUL in path", path.display())))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `st` points to writable storage of the right
    // type; statvfs only writes it, and we read it only when the call succeeded.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(CoreError::Internal(format!(
            "statvfs {}: {e}",
            path.display()
        )));
    }
    // SAFETY: statvfs returned 0, so it filled the struct.
    let st = unsafe { st.assume_init() };
    let unit = u64::from(st.f_frsize);
    Ok((
        u64::from(st.f_blocks).saturating_mul(unit),
        u64::from(st.f_bavail).saturating_mul(unit),
    ))
}

impl Core {
    /// The repository's UUID, created on first use and kept in the catalog.
    pub(crate) fn repository_id(&self) -> CoreResult<Uuid> {
        self.catalog()
            .with_conn(|c| {
                c.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)",
                    (REPOSITORY_KEY, Uuid::new_v4().to_string()),
                )?;
                let v: String = c.query_row(
                    "SELECT value FROM meta WHERE key = ?1",
                    [REPOSITORY_KEY],
                    |r| r.get(0),
                )?;
                Ok(v)
            })?
            .parse()
            .map_err(|_| CoreError::Internal("catalog: repository_id is not a UUID".into()))
    }

    /// The backup repositories: emrest's one, when a backup server is registered.
    pub fn backup_repositories(&self) -> CoreResult<Vec<RepositoryRecord>> {
        let Some(server) = self.backup_servers()?.into_iter().next() else {
            return Ok(Vec::new());
        };
        let id = self.repository_id()?;
        let dir = self.data_dir().join("repo");
        let (capacity, free_space) = filesystem_space(&dir)?;
        let backup_size = self
            .repository()
            .stored_bytes()
            .map_err(|e| CoreError::Internal(format!("repository size: {e}")))?;
        Ok(vec![RepositoryRecord {
            id,
            name: REPOSITORY_NAME.into(),
            kind: REPOSITORY_KIND,
            backup_server_id: server.id,
            capacity,
            free_space,
            backup_size,
        }])
    }

    /// One backup repository.
    pub fn backup_repository(&self, id: Uuid) -> CoreResult<RepositoryRecord> {
        self.backup_repositories()?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| CoreError::not_found("Repository", id))
    }

    /// Figures of the overview report.
    pub fn overview_figures(&self) -> CoreResult<OverviewFigures> {
        let servers = self.backup_servers()?.len() as u64;
        let jobs = self.job_statistics()?;
        let (successful_vms, warning_vms, failed_vms) = self.vm_latest_states()?;
        Ok(OverviewFigures {
            backup_servers: servers,
            // emrest moves the data itself: no proxy servers are registered.
            proxy_servers: 0,
            repository_servers: self.backup_repositories()?.len() as u64,
            running_jobs: jobs.running_jobs,
            scheduled_jobs: jobs.scheduled_jobs,
            successful_vms,
            warning_vms,
            failed_vms,
        })
    }

    /// VMs by the result of their latest backup: the result of the latest finished task
    /// session; a VM with restore points and no finished task session (points made outside a
    /// job, as the demo's) counts as successful.
    fn vm_latest_states(&self) -> CoreResult<(u64, u64, u64)> {
        self.catalog().with_conn(|c| {
            let mut latest: HashMap<(String, String), String> = HashMap::new();
            let mut st = c.prepare("SELECT DISTINCT vm_root, vm_ref FROM vm_restore_points")?;
            for row in st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))? {
                latest.insert(row?, "Success".into());
            }
            let mut st = c.prepare(
                "SELECT vm_root, vm_ref, result FROM backup_task_sessions
                 WHERE state = 'Completed' ORDER BY created, ordinal",
            )?;
            for row in st.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))? {
                let (k, v) = row?;
                latest.insert(k, v);
            }
            let count = |s: &str| latest.values().filter(|v| *v == s).count() as u64;
            Ok((count("Success"), count("Warning"), count("Failed")))
        })
    }

    /// Figures of the VMs overview report.
    pub fn vms_overview_figures(&self) -> CoreResult<VmsOverviewFigures> {
        self.catalog().with_conn(|c| {
            let one = |sql: &str| -> rusqlite::Result<u64> {
                c.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
                    .map(|v| v.unwrap_or(0).max(0) as u64)
            };
            let vms = one(
                "SELECT COUNT(*) FROM (SELECT DISTINCT vm_root, vm_ref FROM vm_restore_points)",
            )?;
            let size_of = |kind: &str| -> rusqlite::Result<u64> {
                c.query_row(
                    "SELECT SUM(f.backup_size) FROM backup_files f
                     JOIN restore_points p ON p.id = f.restore_point_id WHERE p.point_type = ?1",
                    [kind],
                    |r| r.get::<_, Option<i64>>(0),
                )
                .map(|v| v.unwrap_or(0).max(0) as u64)
            };
            let finished = one("SELECT COUNT(*) FROM backup_task_sessions
                 WHERE state = 'Completed' AND result IN ('Success', 'Warning', 'Failed')")?;
            let ok = one("SELECT COUNT(*) FROM backup_task_sessions
                 WHERE state = 'Completed' AND result IN ('Success', 'Warning')")?;
            Ok(VmsOverviewFigures {
                protected_vms: vms,
                backed_up_vms: vms,
                restore_points: one("SELECT COUNT(*) FROM vm_restore_points")?,
                full_points_size: size_of("Full")?,
                incremental_points_size: size_of("Increment")?,
                // Disks of each VM's latest restore point.
                source_vms_size: one("SELECT SUM(d.size) FROM point_disks d
                     JOIN vm_restore_points v ON v.id = d.vm_restore_point_id
                     WHERE v.created = (SELECT MAX(w.created) FROM vm_restore_points w
                                        WHERE w.vm_root = v.vm_root AND w.vm_ref = v.vm_ref)")?,
                success_percent: (ok * 100).checked_div(finished).unwrap_or(100),
            })
        })
    }

    /// Figures of the job statistics report. emrest runs jobs on request only, so no job is
    /// scheduled.
    pub fn job_statistics(&self) -> CoreResult<JobStatistics> {
        self.catalog().with_conn(|c| {
            let one = |sql: &str| -> rusqlite::Result<u64> {
                c.query_row(sql, [], |r| r.get::<_, i64>(0))
                    .map(|v| v.max(0) as u64)
            };
            let longest: Option<(i64, String)> = c
                .query_row(
                    "SELECT s.ended - s.created, j.name FROM backup_sessions s
                     JOIN jobs j ON j.id = s.job_id WHERE s.ended IS NOT NULL
                     ORDER BY 1 DESC, s.created LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let (ms, name) = longest.unwrap_or((0, String::new()));
            Ok(JobStatistics {
                running_jobs: one(
                    "SELECT COUNT(DISTINCT job_id) FROM backup_sessions WHERE state <> 'Stopped'",
                )?,
                scheduled_jobs: 0,
                total_runs: one("SELECT COUNT(*) FROM backup_sessions")?,
                successful_runs: one(
                    "SELECT COUNT(*) FROM backup_sessions WHERE result = 'Success'",
                )?,
                warning_runs: one("SELECT COUNT(*) FROM backup_sessions WHERE result = 'Warning'")?,
                failed_runs: one("SELECT COUNT(*) FROM backup_sessions WHERE result = 'Failed'")?,
                max_duration_secs: (ms.max(0) / 1000) as u64,
                max_duration_job: name,
            })
        })
    }

    /// VMs that got a restore point on each of the last [`PROCESSED_DAYS`] days (UTC), oldest
    /// first.
    pub fn processed_vms(&self) -> CoreResult<Vec<ProcessedDay>> {
        let today = now_millis().div_euclid(DAY_MS) * DAY_MS;
        self.catalog().with_conn(|c| {
            (0..PROCESSED_DAYS)
                .rev()
                .map(|back| {
                    let day = today - back * DAY_MS;
                    let n: i64 = c.query_row(
                        "SELECT COUNT(*) FROM (SELECT DISTINCT vm_root, vm_ref
                         FROM vm_restore_points WHERE created >= ?1 AND created < ?2)",
                        [day, day + DAY_MS],
                        |r| r.get(0),
                    )?;
                    Ok(ProcessedDay {
                        day,
                        backed_up_vms: n.max(0) as u64,
                    })
                })
                .collect()
        })
    }
}
