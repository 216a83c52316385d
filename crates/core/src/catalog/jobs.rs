//! Backup jobs, the VMs they back up, their sessions and task sessions, and the marks
//! verification leaves on damaged points: statements and row mapping.

use super::{uuid_col, uuid_col_lenient, Catalog};
use crate::error::CoreResult;
use crate::jobs::{
    BackupSessionRecord, BackupTaskSessionRecord, JobObjectRecord, JobRecord, TaskSessionState,
};
use crate::model::*;
use emrest_platform::{PlatformKind, VmKey};
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::collections::HashMap;
use uuid::Uuid;

/// Jobs, aliased `j` (the query service filters on `j.` columns).
pub(crate) const JOB_SELECT: &str =
    "SELECT id, name, backup_server_id, platform, description, retain_cycles, created, schedule,
        schedule_enabled, next_run FROM jobs j";

pub(crate) fn job_row(r: &Row) -> rusqlite::Result<JobRecord> {
    let platform: String = r.get(3)?;
    Ok(JobRecord {
        id: uuid_col(r, 0)?,
        name: r.get(1)?,
        backup_server_id: uuid_col(r, 2)?,
        platform: PlatformKind::from_host_type(&platform).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Text,
                format!("unknown platform {platform}").into(),
            )
        })?,
        description: r.get(4)?,
        retention: r.get::<_, i64>(5)?.clamp(1, u32::MAX as i64) as u32,
        created: r.get(6)?,
        objects: Vec::new(),
        // A schedule this emrest cannot read (written by a newer one) counts as none.
        schedule: r
            .get::<_, Option<String>>(7)?
            .and_then(|s| serde_json::from_str(&s).ok()),
        schedule_enabled: r.get(8)?,
        next_run: r.get(9)?,
    })
}

pub(crate) const SESSION_SELECT: &str =
    "SELECT s.id, s.job_id, j.name, j.backup_server_id, s.created, s.ended, s.state, s.result,
        s.progress, s.failure_message, s.is_retry, s.restore_point_id
   FROM backup_sessions s JOIN jobs j ON j.id = s.job_id";

pub(crate) fn session_row(r: &Row) -> rusqlite::Result<BackupSessionRecord> {
    Ok(BackupSessionRecord {
        id: uuid_col(r, 0)?,
        job_id: uuid_col(r, 1)?,
        job_name: r.get(2)?,
        backup_server_id: uuid_col(r, 3)?,
        created: r.get(4)?,
        ended: r.get(5)?,
        state: SessionState::parse(&r.get::<_, String>(6)?),
        result: SessionResult::parse(&r.get::<_, String>(7)?),
        progress: r.get::<_, i64>(8)?.clamp(0, 100) as u8,
        failure_message: r.get(9)?,
        is_retry: r.get(10)?,
        restore_point_id: uuid_col_lenient(r, 11)?,
        bytes_done: 0,
        bytes_total: 0,
    })
}

pub(crate) const TASK_SESSION_SELECT: &str =
    "SELECT t.id, t.session_id, j.name, s.created, j.backup_server_id, t.vm_root, t.vm_ref,
        t.obj_ref, t.vm_name, t.created, t.ended, t.state, t.result, t.reason, t.total_size,
        t.bytes_read, t.bytes_transferred, t.chunks_new, t.vm_restore_point_id
   FROM backup_task_sessions t JOIN backup_sessions s ON s.id = t.session_id
   JOIN jobs j ON j.id = s.job_id";

pub(crate) fn task_session_row(r: &Row) -> rusqlite::Result<BackupTaskSessionRecord> {
    Ok(BackupTaskSessionRecord {
        id: uuid_col(r, 0)?,
        session_id: uuid_col(r, 1)?,
        job_name: r.get(2)?,
        session_created: r.get(3)?,
        backup_server_id: uuid_col(r, 4)?,
        vm: VmKey {
            root: uuid_col(r, 5)?,
            object_ref: r.get(6)?,
        },
        hierarchy_obj_ref: r.get(7)?,
        vm_name: r.get(8)?,
        created: r.get(9)?,
        ended: r.get(10)?,
        state: TaskSessionState::parse(&r.get::<_, String>(11)?),
        result: SessionResult::parse(&r.get::<_, String>(12)?),
        reason: r.get(13)?,
        total_size: r.get::<_, i64>(14)?.max(0) as u64,
        bytes_read: r.get::<_, i64>(15)?.max(0) as u64,
        bytes_transferred: r.get::<_, i64>(16)?.max(0) as u64,
        chunks_new: r.get::<_, i64>(17)?.max(0) as u64,
        vm_restore_point_id: uuid_col_lenient(r, 18)?,
    })
}

/// Fill in a job's VMs, in job order.
pub(crate) fn load_objects(c: &Connection, job: &mut JobRecord) -> CoreResult<()> {
    let mut st = c.prepare(
        "SELECT id, vm_root, vm_ref, obj_ref, name FROM job_objects WHERE job_id = ?1 ORDER BY ordinal",
    )?;
    let rows = st.query_map([job.id.to_string()], |r| {
        Ok(JobObjectRecord {
            id: uuid_col(r, 0)?,
            vm: VmKey {
                root: uuid_col(r, 1)?,
                object_ref: r.get(2)?,
            },
            hierarchy_obj_ref: r.get(3)?,
            name: r.get(4)?,
        })
    })?;
    job.objects = rows.collect::<Result<_, _>>()?;
    Ok(())
}

/// Index names of a restore point's VM points.
fn point_indexes(c: &Connection, rp: Uuid) -> CoreResult<Vec<String>> {
    let mut st = c.prepare(
        "SELECT d.index_name FROM point_disks d JOIN vm_restore_points v ON v.id = d.vm_restore_point_id
          WHERE v.restore_point_id = ?1",
    )?;
    let rows = st.query_map([rp.to_string()], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A task session to create with a new backup session: the VM and the sum of its disk sizes.
pub(crate) struct NewTaskSession<'a> {
    pub object: &'a JobObjectRecord,
    pub total_size: u64,
}

fn schedule_json(s: &Option<crate::schedule::Schedule>) -> CoreResult<Option<String>> {
    s.as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| crate::error::CoreError::Internal(format!("cannot store a schedule: {e}")))
}

/// What an edit of a job changes (None: kept).
#[derive(Debug, Default)]
pub(crate) struct JobEdit {
    /// A new name; the job's backup (its restore points, filed by the job's name) is renamed
    /// with it.
    pub name: Option<(String, String)>,
    pub description: Option<String>,
    pub retention: Option<u32>,
    /// Some(None) removes the schedule.
    pub schedule: Option<Option<crate::schedule::Schedule>>,
    pub schedule_enabled: Option<bool>,
}

impl Catalog {
    // ---- jobs ----

    /// Change a job's settings in one transaction; a changed schedule or a schedule switched
    /// on has its next run computed again by the scheduler.
    pub(crate) fn edit_job(&self, id: Uuid, e: &JobEdit) -> CoreResult<()> {
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        let id = id.to_string();
        if let Some((old, new)) = &e.name {
            tx.execute("UPDATE jobs SET name = ?2 WHERE id = ?1", params![id, new])?;
            tx.execute(
                "UPDATE backups SET name = ?2 WHERE name = ?1",
                params![old, new],
            )?;
        }
        if let Some(d) = &e.description {
            tx.execute(
                "UPDATE jobs SET description = ?2 WHERE id = ?1",
                params![id, d],
            )?;
        }
        if let Some(r) = e.retention {
            tx.execute(
                "UPDATE jobs SET retain_cycles = ?2 WHERE id = ?1",
                params![id, r],
            )?;
        }
        if let Some(s) = &e.schedule {
            tx.execute(
                "UPDATE jobs SET schedule = ?2, next_run = NULL, chain_mark = NULL WHERE id = ?1",
                params![id, schedule_json(s)?],
            )?;
        }
        if let Some(on) = e.schedule_enabled {
            tx.execute(
                "UPDATE jobs SET schedule_enabled = ?2, next_run = NULL WHERE id = ?1",
                params![id, on],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Record when the scheduler will next start a job (None: compute again).
    pub(crate) fn set_job_next_run(&self, id: Uuid, at: Option<Millis>) -> CoreResult<()> {
        self.conn()?.execute(
            "UPDATE jobs SET next_run = ?2 WHERE id = ?1",
            params![id.to_string(), at],
        )?;
        Ok(())
    }

    /// The end of the previous job's run a chained job last ran after.
    pub(crate) fn job_chain_mark(&self, id: Uuid) -> CoreResult<Option<Millis>> {
        Ok(self
            .conn()?
            .query_row(
                "SELECT chain_mark FROM jobs WHERE id = ?1",
                [id.to_string()],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    /// Record the end of the previous job's run a chained job ran (or will not run) after.
    pub(crate) fn set_job_chain_mark(&self, id: Uuid, at: Millis) -> CoreResult<()> {
        self.conn()?.execute(
            "UPDATE jobs SET chain_mark = ?2 WHERE id = ?1",
            params![id.to_string(), at],
        )?;
        Ok(())
    }

    /// Add a VM to the end of a job's list.
    pub(crate) fn insert_job_object(&self, job: Uuid, o: &JobObjectRecord) -> CoreResult<()> {
        let c = self.conn()?;
        c.execute(
            "INSERT INTO job_objects (id, job_id, ordinal, vm_root, vm_ref, obj_ref, name)
             VALUES (?1, ?2, (SELECT COALESCE(MAX(ordinal), -1) + 1 FROM job_objects WHERE job_id = ?2),
                     ?3, ?4, ?5, ?6)",
            params![
                o.id.to_string(),
                job.to_string(),
                o.vm.root.to_string(),
                o.vm.object_ref,
                o.hierarchy_obj_ref,
                o.name
            ],
        )?;
        Ok(())
    }

    /// Remove a VM from a job; whether it was there.
    pub(crate) fn delete_job_object(&self, job: Uuid, object: Uuid) -> CoreResult<bool> {
        let n = self.conn()?.execute(
            "DELETE FROM job_objects WHERE job_id = ?1 AND id = ?2",
            params![job.to_string(), object.to_string()],
        )?;
        Ok(n > 0)
    }

    /// Remove a job, its VMs and its sessions' history (its restore points stay, in its
    /// backup), in one transaction. Chained jobs that named it keep their schedule, which then
    /// never fires.
    pub(crate) fn delete_job(&self, id: Uuid) -> CoreResult<()> {
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        let id = id.to_string();
        tx.execute(
            "DELETE FROM backup_task_sessions WHERE session_id IN
                 (SELECT id FROM backup_sessions WHERE job_id = ?1)",
            [&id],
        )?;
        tx.execute("DELETE FROM backup_sessions WHERE job_id = ?1", [&id])?;
        tx.execute("DELETE FROM job_objects WHERE job_id = ?1", [&id])?;
        tx.execute("DELETE FROM jobs WHERE id = ?1", [&id])?;
        tx.commit()?;
        Ok(())
    }

    /// Record a new job with its VMs (in their order), in one transaction.
    pub(crate) fn insert_job(&self, job: &JobRecord) -> CoreResult<()> {
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        tx.execute(
            "INSERT INTO jobs (id, name, backup_server_id, platform, description, retain_cycles, created,
                 schedule, schedule_enabled, next_run)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![job.id.to_string(), job.name, job.backup_server_id.to_string(), job.platform.host_type(),
                    job.description, job.retention, job.created, schedule_json(&job.schedule)?,
                    job.schedule_enabled, job.next_run],
        )?;
        for (i, o) in job.objects.iter().enumerate() {
            tx.execute(
                "INSERT INTO job_objects (id, job_id, ordinal, vm_root, vm_ref, obj_ref, name)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    o.id.to_string(),
                    job.id.to_string(),
                    i as i64,
                    o.vm.root.to_string(),
                    o.vm.object_ref,
                    o.hierarchy_obj_ref,
                    o.name
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every job with its VMs, by name.
    pub(crate) fn jobs(&self) -> CoreResult<Vec<JobRecord>> {
        let c = self.conn()?;
        let mut jobs = {
            let mut st = c.prepare(&format!("{JOB_SELECT} ORDER BY name"))?;
            let rows = st.query_map([], job_row)?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        for j in &mut jobs {
            load_objects(&c, j)?;
        }
        Ok(jobs)
    }

    /// One job with its VMs.
    pub(crate) fn job(&self, id: Uuid) -> CoreResult<Option<JobRecord>> {
        let c = self.conn()?;
        let job = c
            .query_row(
                &format!("{JOB_SELECT} WHERE id = ?1"),
                [id.to_string()],
                job_row,
            )
            .optional()?;
        let Some(mut job) = job else {
            return Ok(None);
        };
        load_objects(&c, &mut job)?;
        Ok(Some(job))
    }

    /// The ID of the job of that name (case-insensitive, as the column is), if any; an ID
    /// that is not a UUID counts as none.
    pub(crate) fn job_id_by_name(&self, name: &str) -> CoreResult<Option<Uuid>> {
        let id: Option<String> = self
            .conn()?
            .query_row("SELECT id FROM jobs WHERE name = ?1", [name], |r| r.get(0))
            .optional()?;
        Ok(id.and_then(|s| Uuid::parse_str(&s).ok()))
    }

    // ---- backup sessions and task sessions ----

    /// Record a new backup session in state Starting with one Pending task session per VM,
    /// in one transaction.
    pub(crate) fn insert_backup_session(
        &self,
        session: Uuid,
        job: Uuid,
        now: Millis,
        is_retry: bool,
        tasks: &[NewTaskSession],
    ) -> CoreResult<()> {
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        tx.execute(
            "INSERT INTO backup_sessions (id, job_id, created, state, result, progress, is_retry)
             VALUES (?1, ?2, ?3, 'Starting', 'None', 0, ?4)",
            params![session.to_string(), job.to_string(), now, is_retry],
        )?;
        for (i, t) in tasks.iter().enumerate() {
            let o = t.object;
            tx.execute(
                "INSERT INTO backup_task_sessions (id, session_id, ordinal, vm_root, vm_ref, obj_ref, vm_name,
                     created, state, result, reason, total_size, bytes_read, bytes_transferred, chunks_new)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'Pending', 'None', '', ?9, 0, 0, 0)",
                params![Uuid::new_v4().to_string(), session.to_string(), i as i64, o.vm.root.to_string(),
                        o.vm.object_ref, o.hierarchy_obj_ref, o.name, now, t.total_size as i64],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A backup session's run has begun.
    pub(crate) fn backup_session_working(&self, session: Uuid) -> CoreResult<()> {
        self.conn()?.execute(
            "UPDATE backup_sessions SET state = 'Working' WHERE id = ?1",
            [session.to_string()],
        )?;
        Ok(())
    }

    /// A task session's VM is being backed up from `now`.
    pub(crate) fn task_session_in_progress(&self, id: Uuid, now: Millis) -> CoreResult<()> {
        self.conn()?.execute(
            "UPDATE backup_task_sessions SET state = 'InProgress', created = ?2 WHERE id = ?1",
            params![id.to_string(), now],
        )?;
        Ok(())
    }

    /// The figures of a task session's finished backup.
    pub(crate) fn task_session_stats(
        &self,
        id: Uuid,
        bytes_read: u64,
        bytes_transferred: u64,
        chunks_new: u64,
        total_size: u64,
    ) -> CoreResult<()> {
        self.conn()?.execute(
            "UPDATE backup_task_sessions SET bytes_read = ?2, bytes_transferred = ?3, chunks_new = ?4,
                 total_size = ?5 WHERE id = ?1",
            params![id.to_string(), bytes_read as i64, bytes_transferred as i64,
                    chunks_new as i64, total_size as i64],
        )?;
        Ok(())
    }

    /// Close a task session with its result and the VM restore point it made.
    pub(crate) fn finish_task_session(
        &self,
        id: Uuid,
        result: SessionResult,
        reason: &str,
        point: Option<Uuid>,
        now: Millis,
    ) -> CoreResult<()> {
        self.conn()?.execute(
            "UPDATE backup_task_sessions SET state = 'Completed', result = ?2, reason = ?3, ended = ?4,
                 vm_restore_point_id = ?5 WHERE id = ?1",
            params![id.to_string(), result.as_str(), reason, now, point.map(|p| p.to_string())],
        )?;
        Ok(())
    }

    /// Fail every task session of a backup session that has not completed.
    pub(crate) fn fail_pending_task_sessions(
        &self,
        session: Uuid,
        reason: &str,
        now: Millis,
    ) -> CoreResult<()> {
        self.conn()?.execute(
            "UPDATE backup_task_sessions SET state = 'Completed', result = 'Failed', reason = ?2, ended = ?3
              WHERE session_id = ?1 AND state != 'Completed'",
            params![session.to_string(), reason, now],
        )?;
        Ok(())
    }

    /// Close a backup session with its result, progress and the restore point it made.
    pub(crate) fn finish_backup_session(
        &self,
        id: Uuid,
        result: SessionResult,
        failure: Option<&str>,
        now: Millis,
        progress: u8,
        point: Option<Uuid>,
    ) -> CoreResult<()> {
        self.conn()?.execute(
            "UPDATE backup_sessions SET state = 'Stopped', result = ?2, failure_message = ?3, ended = ?4,
                 progress = ?5, restore_point_id = ?6 WHERE id = ?1",
            params![id.to_string(), result.as_str(), failure, now, progress, point.map(|p| p.to_string())],
        )?;
        Ok(())
    }

    /// After a crash: every backup session and task session still open failed with `message`,
    /// in one transaction.
    pub(crate) fn fail_interrupted_backups(&self, now: Millis, message: &str) -> CoreResult<()> {
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        tx.execute(
            "UPDATE backup_task_sessions SET state = 'Completed', result = 'Failed', ended = ?1, reason = ?2
              WHERE state != 'Completed'",
            params![now, message],
        )?;
        tx.execute(
            "UPDATE backup_sessions SET state = 'Stopped', result = 'Failed', ended = ?1, failure_message = ?2
              WHERE state != 'Stopped'",
            params![now, message],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Backup sessions, oldest first; of one job when given.
    pub(crate) fn backup_sessions(
        &self,
        job: Option<Uuid>,
    ) -> CoreResult<Vec<BackupSessionRecord>> {
        let c = self.conn()?;
        let mut st = c.prepare(&format!(
            "{SESSION_SELECT} WHERE (?1 IS NULL OR s.job_id = ?1) ORDER BY s.created, s.id"
        ))?;
        let rows = st.query_map([job.map(|j| j.to_string())], session_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// One backup session.
    pub(crate) fn backup_session(&self, id: Uuid) -> CoreResult<Option<BackupSessionRecord>> {
        Ok(self
            .conn()?
            .query_row(
                &format!("{SESSION_SELECT} WHERE s.id = ?1"),
                [id.to_string()],
                session_row,
            )
            .optional()?)
    }

    /// Backup task sessions in job order; of one backup session when given, `None` when that
    /// session does not exist.
    pub(crate) fn backup_task_sessions(
        &self,
        session: Option<Uuid>,
    ) -> CoreResult<Option<Vec<BackupTaskSessionRecord>>> {
        let c = self.conn()?;
        if let Some(s) = session {
            let exists: i64 = c.query_row(
                "SELECT count(*) FROM backup_sessions WHERE id = ?1",
                [s.to_string()],
                |r| r.get(0),
            )?;
            if exists == 0 {
                return Ok(None);
            }
        }
        let mut st = c.prepare(&format!(
            "{TASK_SESSION_SELECT} WHERE (?1 IS NULL OR t.session_id = ?1) ORDER BY s.created, s.id, t.ordinal"
        ))?;
        let rows = st.query_map([session.map(|s| s.to_string())], task_session_row)?;
        Ok(Some(rows.collect::<Result<_, _>>()?))
    }

    /// One backup task session.
    pub(crate) fn backup_task_session(
        &self,
        id: Uuid,
    ) -> CoreResult<Option<BackupTaskSessionRecord>> {
        Ok(self
            .conn()?
            .query_row(
                &format!("{TASK_SESSION_SELECT} WHERE t.id = ?1"),
                [id.to_string()],
                task_session_row,
            )
            .optional()?)
    }

    // ---- retention ----

    /// Remove a restore point with its backup file, VM points, disks and damage marks, and
    /// unlink the sessions that name it, in one transaction; returns the index names it held.
    /// Kept (`None`) while a restore session that is not stopped uses one of its VM points, or
    /// when `in_use` says one of its VM points (IDs given) is still needed; both are decided
    /// under the catalog's write lock, so no restore can start from it in between.
    pub(crate) fn remove_restore_point(
        &self,
        rp: Uuid,
        in_use: impl FnOnce(&[Uuid]) -> bool,
    ) -> CoreResult<Option<Vec<String>>> {
        let mut c = self.conn()?;
        let busy: i64 = c.query_row(
            "SELECT count(*) FROM restore_sessions s JOIN vm_restore_points v ON v.id = s.vm_restore_point_id
              WHERE v.restore_point_id = ?1 AND s.state != 'Stopped'",
            [rp.to_string()],
            |r| r.get(0),
        )?;
        let vm_points: Vec<Uuid> = {
            let mut st =
                c.prepare_cached("SELECT id FROM vm_restore_points WHERE restore_point_id = ?1")?;
            let ids = st
                .query_map([rp.to_string()], |r| r.get::<_, String>(0))?
                .filter_map(Result::ok)
                .filter_map(|id| Uuid::parse_str(&id).ok())
                .collect();
            ids
        };
        if busy > 0 || in_use(&vm_points) {
            return Ok(None);
        }
        let indexes = point_indexes(&c, rp)?;
        let tx = c.transaction()?;
        let id = rp.to_string();
        let vm_points = "SELECT id FROM vm_restore_points WHERE restore_point_id = ?1";
        tx.execute(
            &format!("UPDATE backup_task_sessions SET vm_restore_point_id = NULL WHERE vm_restore_point_id IN ({vm_points})"),
            [&id],
        )?;
        tx.execute(
            &format!("DELETE FROM damaged_points WHERE vm_restore_point_id IN ({vm_points})"),
            [&id],
        )?;
        tx.execute(
            &format!("DELETE FROM point_disks WHERE vm_restore_point_id IN ({vm_points})"),
            [&id],
        )?;
        tx.execute(
            "DELETE FROM vm_restore_points WHERE restore_point_id = ?1",
            [&id],
        )?;
        tx.execute(
            "DELETE FROM backup_files WHERE restore_point_id = ?1",
            [&id],
        )?;
        tx.execute(
            "UPDATE backup_sessions SET restore_point_id = NULL WHERE restore_point_id = ?1",
            [&id],
        )?;
        tx.execute("DELETE FROM restore_points WHERE id = ?1", [&id])?;
        tx.commit()?;
        Ok(Some(indexes))
    }

    // ---- damaged points ----

    /// Why verification marked a VM restore point damaged, if it did.
    pub(crate) fn damage_of(&self, point: Uuid) -> CoreResult<Option<String>> {
        Ok(self
            .conn()?
            .query_row(
                "SELECT reason FROM damaged_points WHERE vm_restore_point_id = ?1",
                [point.to_string()],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Replace every damage mark with `points` (VM restore point → reason), in one transaction.
    pub(crate) fn mark_damaged(
        &self,
        points: &HashMap<Uuid, String>,
        now: Millis,
    ) -> CoreResult<()> {
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        tx.execute("DELETE FROM damaged_points", [])?;
        for (p, why) in points {
            tx.execute(
                "INSERT OR REPLACE INTO damaged_points (vm_restore_point_id, reason, found) VALUES (?1, ?2, ?3)",
                params![p.to_string(), why, now],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}
