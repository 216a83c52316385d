//! The figures of the summary reports and the `meta` table: aggregate statements over the
//! other tables. What the figures mean is decided in summary.rs.

use super::Catalog;
use crate::error::CoreResult;
use crate::model::Millis;
use rusqlite::{Connection, OptionalExtension};

/// Counts behind `/reports/summary/vms_overview`.
#[derive(Clone, Debug, Default)]
pub(crate) struct VmCounts {
    /// Distinct VMs with a restore point.
    pub vms: u64,
    pub vm_restore_points: u64,
    /// Bytes of the backup files of full and of incremental restore points.
    pub full_points_size: u64,
    pub incremental_points_size: u64,
    /// Sum of the disks of each VM's latest restore point.
    pub latest_disks_size: u64,
    /// Completed task sessions with a result, and those of them with Success or Warning.
    pub finished_task_sessions: u64,
    pub ok_task_sessions: u64,
}

/// Counts behind `/reports/summary/job_statistics`.
#[derive(Clone, Debug, Default)]
pub(crate) struct BackupSessionCounts {
    /// Jobs with a session that has not stopped.
    pub running_jobs: u64,
    pub total: u64,
    pub success: u64,
    pub warning: u64,
    pub failed: u64,
    /// The longest finished session: milliseconds and its job's name.
    pub longest: Option<(i64, String)>,
}

fn count(c: &Connection, sql: &str) -> rusqlite::Result<u64> {
    c.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
        .map(|v| v.unwrap_or(0).max(0) as u64)
}

impl Catalog {
    /// The value of a `meta` key, if it has one.
    pub(crate) fn meta(&self, key: &str) -> CoreResult<Option<String>> {
        use rusqlite::OptionalExtension;
        self.with_reader(|c| {
            c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
        })
    }

    /// The value of a `meta` key, set to `value` first when it has none.
    pub(crate) fn meta_or_insert(&self, key: &str, value: &str) -> CoreResult<String> {
        let c = self.conn()?;
        c.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)",
            (key, value),
        )?;
        Ok(c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))?)
    }

    /// Every VM with a restore point, as (root, ref), and the results of completed task
    /// sessions per VM, oldest first.
    #[allow(clippy::type_complexity)]
    pub(crate) fn vm_backup_results(
        &self,
    ) -> CoreResult<(Vec<(String, String)>, Vec<((String, String), String)>)> {
        let c = self.conn()?;
        let vms = {
            let mut st = c.prepare("SELECT DISTINCT vm_root, vm_ref FROM vm_restore_points")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        let results = {
            let mut st = c.prepare(
                "SELECT vm_root, vm_ref, result FROM backup_task_sessions
                 WHERE state = 'Completed' ORDER BY created, ordinal",
            )?;
            let rows = st.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        Ok((vms, results))
    }

    /// The counts of the VMs overview report.
    pub(crate) fn vm_counts(&self) -> CoreResult<VmCounts> {
        let c = self.conn()?;
        let size_of = |kind: &str| -> rusqlite::Result<u64> {
            c.query_row(
                "SELECT SUM(f.backup_size) FROM backup_files f
                 JOIN restore_points p ON p.id = f.restore_point_id WHERE p.point_type = ?1",
                [kind],
                |r| r.get::<_, Option<i64>>(0),
            )
            .map(|v| v.unwrap_or(0).max(0) as u64)
        };
        Ok(VmCounts {
            vms: count(
                &c,
                "SELECT COUNT(*) FROM (SELECT DISTINCT vm_root, vm_ref FROM vm_restore_points)",
            )?,
            vm_restore_points: count(&c, "SELECT COUNT(*) FROM vm_restore_points")?,
            full_points_size: size_of("Full")?,
            incremental_points_size: size_of("Increment")?,
            latest_disks_size: count(
                &c,
                "SELECT SUM(d.size) FROM point_disks d
                 JOIN vm_restore_points v ON v.id = d.vm_restore_point_id
                 WHERE v.created = (SELECT MAX(w.created) FROM vm_restore_points w
                                    WHERE w.vm_root = v.vm_root AND w.vm_ref = v.vm_ref)",
            )?,
            finished_task_sessions: count(
                &c,
                "SELECT COUNT(*) FROM backup_task_sessions
                 WHERE state = 'Completed' AND result IN ('Success', 'Warning', 'Failed')",
            )?,
            ok_task_sessions: count(
                &c,
                "SELECT COUNT(*) FROM backup_task_sessions
                 WHERE state = 'Completed' AND result IN ('Success', 'Warning')",
            )?,
        })
    }

    /// The counts of the job statistics report.
    pub(crate) fn backup_session_counts(&self) -> CoreResult<BackupSessionCounts> {
        let c = self.conn()?;
        let longest: Option<(i64, String)> = c
            .query_row(
                "SELECT s.ended - s.created, j.name FROM backup_sessions s
                 JOIN jobs j ON j.id = s.job_id WHERE s.ended IS NOT NULL
                 ORDER BY 1 DESC, s.created LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(BackupSessionCounts {
            running_jobs: count(
                &c,
                "SELECT COUNT(DISTINCT job_id) FROM backup_sessions WHERE state <> 'Stopped'",
            )?,
            total: count(&c, "SELECT COUNT(*) FROM backup_sessions")?,
            success: count(
                &c,
                "SELECT COUNT(*) FROM backup_sessions WHERE result = 'Success'",
            )?,
            warning: count(
                &c,
                "SELECT COUNT(*) FROM backup_sessions WHERE result = 'Warning'",
            )?,
            failed: count(
                &c,
                "SELECT COUNT(*) FROM backup_sessions WHERE result = 'Failed'",
            )?,
            longest,
        })
    }

    /// For each `[from, to)` range, the number of distinct VMs that got a restore point in it.
    pub(crate) fn vms_with_points_in(&self, ranges: &[(Millis, Millis)]) -> CoreResult<Vec<u64>> {
        let c = self.conn()?;
        let mut out = Vec::with_capacity(ranges.len());
        for (from, to) in ranges {
            let n: i64 = c.query_row(
                "SELECT COUNT(*) FROM (SELECT DISTINCT vm_root, vm_ref
                 FROM vm_restore_points WHERE created >= ?1 AND created < ?2)",
                [from, to],
                |r| r.get(0),
            )?;
            out.push(n.max(0) as u64);
        }
        Ok(out)
    }
}
