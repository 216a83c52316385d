//! The backup repository as the API shows it (em_rest/get_repositories_id.md) and the figures
//! of the summary reports (em_rest/get_reports_summary*.md), computed from the catalog.
//!
//! emrest has one chunk repository per data folder (`<data>/repo`): it is one Repository record
//! with a UUID kept in the catalog's `meta` table, belonging to the first backup server.

use crate::error::{CoreError, CoreResult};
use crate::model::{now_millis, Millis};
use crate::{Core, View};
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

impl View<'_> {
    /// Figures of the overview report.
    pub fn overview_figures(&self) -> CoreResult<OverviewFigures> {
        let servers = self.infrastructure().backup_servers()?.len() as u64;
        let jobs = self.job_statistics()?;
        let (successful_vms, warning_vms, failed_vms) = self.vm_latest_states()?;
        Ok(OverviewFigures {
            backup_servers: servers,
            // emrest moves the data itself: no proxy servers are registered.
            proxy_servers: 0,
            repository_servers: self.infrastructure().backup_repositories()?.len() as u64,
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
        let (vms, results) = self.catalog().vm_backup_results()?;
        let mut latest: HashMap<(String, String), String> = vms
            .into_iter()
            .map(|vm| (vm, "Success".to_string()))
            .collect();
        // Oldest first: the last result of a VM wins.
        latest.extend(results);
        let count = |s: &str| latest.values().filter(|v| *v == s).count() as u64;
        Ok((count("Success"), count("Warning"), count("Failed")))
    }

    /// Figures of the VMs overview report.
    pub fn vms_overview_figures(&self) -> CoreResult<VmsOverviewFigures> {
        let n = self.catalog().vm_counts()?;
        Ok(VmsOverviewFigures {
            protected_vms: n.vms,
            backed_up_vms: n.vms,
            restore_points: n.vm_restore_points,
            full_points_size: n.full_points_size,
            incremental_points_size: n.incremental_points_size,
            // Disks of each VM's latest restore point.
            source_vms_size: n.latest_disks_size,
            success_percent: (n.ok_task_sessions * 100)
                .checked_div(n.finished_task_sessions)
                .unwrap_or(100),
        })
    }

    /// Figures of the job statistics report. emrest runs jobs on request only, so no job is
    /// scheduled.
    pub fn job_statistics(&self) -> CoreResult<JobStatistics> {
        let n = self.catalog().backup_session_counts()?;
        let (ms, name) = n.longest.unwrap_or((0, String::new()));
        Ok(JobStatistics {
            running_jobs: n.running_jobs,
            scheduled_jobs: 0,
            total_runs: n.total,
            successful_runs: n.success,
            warning_runs: n.warning,
            failed_runs: n.failed,
            max_duration_secs: (ms.max(0) / 1000) as u64,
            max_duration_job: name,
        })
    }

    /// VMs that got a restore point on each of the last [`PROCESSED_DAYS`] days (UTC), oldest
    /// first.
    pub fn processed_vms(&self) -> CoreResult<Vec<ProcessedDay>> {
        let today = now_millis().div_euclid(DAY_MS) * DAY_MS;
        let days: Vec<Millis> = (0..PROCESSED_DAYS)
            .rev()
            .map(|back| today - back * DAY_MS)
            .collect();
        let ranges: Vec<(Millis, Millis)> = days.iter().map(|d| (*d, d + DAY_MS)).collect();
        let counts = self.catalog().vms_with_points_in(&ranges)?;
        Ok(days
            .into_iter()
            .zip(counts)
            .map(|(day, backed_up_vms)| ProcessedDay { day, backed_up_vms })
            .collect())
    }
}

impl Core {
    /// The repository's UUID, created on first use and kept in the catalog.
    pub(crate) fn repository_id(&self) -> CoreResult<Uuid> {
        self.catalog()
            .meta_or_insert(REPOSITORY_KEY, &Uuid::new_v4().to_string())?
            .parse()
            .map_err(|_| CoreError::Internal("catalog: repository_id is not a UUID".into()))
    }
}
