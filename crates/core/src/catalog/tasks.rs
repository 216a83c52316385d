//! Tasks, restore sessions and their logs: statements and row mapping.

use super::{uuid_col, uuid_col_lenient, Catalog};
use crate::catalog::backups::vm_point_name;
use crate::error::CoreResult;
use crate::model::*;
use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

// LEFT JOINs: a restore session outlives the point it used when retention removes that point.
pub(crate) const SESSION_SELECT: &str = "SELECT s.id, s.vm_restore_point_id, COALESCE(v.vm_name, s.vm_name), COALESCE(v.created, s.created),
        COALESCE(b.backup_server_id, (SELECT id FROM backup_servers ORDER BY name LIMIT 1)), s.vm_name, s.state,
        s.result, s.progress, s.created, s.ended, s.restored_obj_ref, s.failure_message, s.account_id
   FROM restore_sessions s LEFT JOIN vm_restore_points v ON v.id = s.vm_restore_point_id
   LEFT JOIN restore_points r ON r.id = v.restore_point_id LEFT JOIN backups b ON b.id = r.backup_id";

pub(crate) const TASK_SELECT: &str = "SELECT id, operation, state, success, message, restore_session_id, account_id, created, related_job_id FROM tasks";

pub(crate) fn session_row(row: &Row) -> rusqlite::Result<RestoreSessionRecord> {
    let point_vm: String = row.get(2)?;
    let point_created: Millis = row.get(3)?;
    Ok(RestoreSessionRecord {
        id: uuid_col(row, 0)?,
        vm_restore_point_id: uuid_col(row, 1)?,
        vm_restore_point_name: vm_point_name(&point_vm, point_created),
        backup_server_id: uuid_col(row, 4)?,
        vm_name: row.get(5)?,
        state: SessionState::parse(&row.get::<_, String>(6)?),
        result: SessionResult::parse(&row.get::<_, String>(7)?),
        progress: row.get::<_, i64>(8)?.clamp(0, 100) as u8,
        created: row.get(9)?,
        ended: row.get(10)?,
        restored_obj_ref: row.get(11)?,
        failure_message: row.get(12)?,
        account_id: uuid_col(row, 13)?,
    })
}

pub(crate) fn task_row(row: &Row) -> rusqlite::Result<TaskRecord> {
    let state: String = row.get(2)?;
    let success: Option<bool> = row.get(3)?;
    let message: Option<String> = row.get(4)?;
    Ok(TaskRecord {
        id: TaskId(row.get(0)?),
        operation: row.get(1)?,
        state: if state == "Running" {
            TaskState::Running
        } else {
            TaskState::Finished
        },
        result: success.map(|s| (s, message.unwrap_or_default())),
        restore_session_id: uuid_col_lenient(row, 5)?,
        account_id: uuid_col(row, 6)?,
        created: row.get(7)?,
        related_job_id: uuid_col_lenient(row, 8)?,
    })
}

impl Catalog {
    // ---- tasks ----

    /// Record the job a task made (a clone: post_jobs_id_actionclone.md's Related link).
    pub(crate) fn set_task_related_job(&self, id: TaskId, job: Uuid) -> CoreResult<()> {
        self.conn()?.execute(
            "UPDATE tasks SET related_job_id = ?2 WHERE id = ?1",
            rusqlite::params![id.0, job.to_string()],
        )?;
        Ok(())
    }

    /// Create a running task.
    pub fn insert_task(
        &self,
        operation: &str,
        restore_session: Option<Uuid>,
        account: Uuid,
        now: Millis,
    ) -> CoreResult<TaskRecord> {
        let c = self.conn()?;
        c.execute(
            "INSERT INTO tasks (operation, state, restore_session_id, account_id, created) VALUES (?1, 'Running', ?2, ?3, ?4)",
            params![operation, restore_session.map(|s| s.to_string()), account.to_string(), now],
        )?;
        let id = c.last_insert_rowid();
        Ok(TaskRecord {
            id: TaskId(id),
            operation: operation.to_string(),
            state: TaskState::Running,
            result: None,
            restore_session_id: restore_session,
            related_job_id: None,
            account_id: account,
            created: now,
        })
    }

    /// Finish a task with a result.
    pub fn finish_task(&self, id: TaskId, success: bool, message: &str) -> CoreResult<()> {
        finish_task_on(&*self.conn()?, id, success, message)
    }

    /// Hide a task from listings (DELETE /tasks/{ID}).
    pub fn delete_task(&self, id: TaskId) -> CoreResult<()> {
        self.conn()?
            .execute("UPDATE tasks SET deleted = 1 WHERE id = ?1", [id.0])?;
        Ok(())
    }

    /// Visible tasks, oldest first; of one account when given.
    pub fn tasks(&self, account: Option<Uuid>) -> CoreResult<Vec<TaskRecord>> {
        let c = self.conn()?;
        let sql = format!(
            "{TASK_SELECT} WHERE deleted = 0 AND (?1 IS NULL OR account_id = ?1) ORDER BY id"
        );
        let mut st = c.prepare_cached(&sql)?;
        let rows = st.query_map([account.map(|a| a.to_string())], task_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One visible task.
    pub fn task(&self, id: TaskId) -> CoreResult<Option<TaskRecord>> {
        self.with_reader(|c| {
            c.prepare_cached(&format!("{TASK_SELECT} WHERE deleted = 0 AND id = ?1"))?
                .query_row([id.0], task_row)
                .optional()
        })
    }

    // ---- restore sessions ----

    /// Record a new restore session in state Starting.
    pub fn insert_restore_session(
        &self,
        id: Uuid,
        point: Uuid,
        vm_name: &str,
        account: Uuid,
        now: Millis,
    ) -> CoreResult<()> {
        self.conn()?.execute(
            "INSERT INTO restore_sessions (id, vm_restore_point_id, vm_name, state, result, progress, created, account_id)
             VALUES (?1, ?2, ?3, 'Starting', 'None', 0, ?4, ?5)",
            params![id.to_string(), point.to_string(), vm_name, now, account.to_string()],
        )?;
        Ok(())
    }

    /// Move a session to another state, with progress.
    pub fn update_session(&self, id: Uuid, state: SessionState, progress: u8) -> CoreResult<()> {
        self.conn()?.execute(
            "UPDATE restore_sessions SET state = ?2, progress = ?3 WHERE id = ?1",
            params![id.to_string(), state.as_str(), progress],
        )?;
        Ok(())
    }

    /// Close a session with its result.
    pub fn finish_session(
        &self,
        id: Uuid,
        result: SessionResult,
        restored: Option<&str>,
        failure: Option<&str>,
        now: Millis,
    ) -> CoreResult<()> {
        finish_session_on(&*self.conn()?, id, result, restored, failure, now)
    }

    /// Mark a restore session Working and log `text`, in one transaction (one commit).
    pub fn start_restore(&self, session: Uuid, text: &str, now: Millis) -> CoreResult<()> {
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        tx.execute(
            "UPDATE restore_sessions SET state = ?2, progress = 0 WHERE id = ?1",
            params![session.to_string(), SessionState::Working.as_str()],
        )?;
        append_log_on(&tx, session, text, now)?;
        tx.commit()?;
        Ok(())
    }

    /// Close a restore session and finish its task in one transaction, so a crash between the
    /// two never leaves a successful session behind a task marked interrupted. `log`, when
    /// given, is the session's last log line, written in the same transaction.
    #[allow(clippy::too_many_arguments)]
    pub fn finish_restore(
        &self,
        session: Uuid,
        task: TaskId,
        result: SessionResult,
        restored: Option<&str>,
        message: &str,
        log: Option<&str>,
        now: Millis,
    ) -> CoreResult<()> {
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        if let Some(text) = log {
            append_log_on(&tx, session, text, now)?;
        }
        let success = result == SessionResult::Success;
        let failure = (!success).then_some(message);
        finish_session_on(&tx, session, result, restored, failure, now)?;
        finish_task_on(&tx, task, success, message)?;
        tx.commit()?;
        Ok(())
    }

    /// Restore sessions, oldest first; of one account when given.
    pub fn restore_sessions(&self, account: Option<Uuid>) -> CoreResult<Vec<RestoreSessionRecord>> {
        let c = self.conn()?;
        let sql = format!(
            "{SESSION_SELECT} WHERE (?1 IS NULL OR s.account_id = ?1) ORDER BY s.created, s.id"
        );
        let mut st = c.prepare_cached(&sql)?;
        let rows = st.query_map([account.map(|a| a.to_string())], session_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One restore session.
    pub fn restore_session(&self, id: Uuid) -> CoreResult<Option<RestoreSessionRecord>> {
        let c = self.conn()?;
        let sql = format!("{SESSION_SELECT} WHERE s.id = ?1");
        let row = c
            .prepare_cached(&sql)?
            .query_row([id.to_string()], session_row)
            .optional()?;
        Ok(row)
    }

    /// Append a line to a session's log.
    pub fn append_log(&self, session: Uuid, text: &str, now: Millis) -> CoreResult<()> {
        append_log_on(&*self.conn()?, session, text, now)
    }

    /// A session's log, in order.
    pub fn session_log(&self, session: Uuid) -> CoreResult<Vec<LogLine>> {
        let c = self.conn()?;
        let mut st = c.prepare_cached(
            "SELECT time, text FROM restore_log WHERE session_id = ?1 ORDER BY seq",
        )?;
        let rows = st.query_map([session.to_string()], |r| {
            Ok(LogLine {
                time: r.get(0)?,
                text: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// After a crash: every task still Running failed, every open session with it.
    /// Returns the number of tasks marked.
    pub fn fail_interrupted(&self, now: Millis) -> CoreResult<usize> {
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        let msg = "Interrupted: the server stopped while this task was running";
        let n = tx.execute(
            "UPDATE tasks SET state = 'Finished', success = 0, message = ?1 WHERE state = 'Running'",
            [msg],
        )?;
        tx.execute(
            "UPDATE restore_sessions SET state = 'Stopped', result = 'Failed', ended = ?1, failure_message = ?2
             WHERE state != 'Stopped'",
            params![now, msg],
        )?;
        tx.commit()?;
        Ok(n)
    }
}

fn append_log_on(c: &Connection, session: Uuid, text: &str, now: Millis) -> CoreResult<()> {
    c.execute(
        "INSERT INTO restore_log (session_id, seq, time, text)
         VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM restore_log WHERE session_id = ?1), ?2, ?3)",
        params![session.to_string(), now, text],
    )?;
    Ok(())
}

fn finish_task_on(c: &Connection, id: TaskId, success: bool, message: &str) -> CoreResult<()> {
    c.execute(
        "UPDATE tasks SET state = 'Finished', success = ?2, message = ?3 WHERE id = ?1",
        params![id.0, success, message],
    )?;
    Ok(())
}

fn finish_session_on(
    c: &Connection,
    id: Uuid,
    result: SessionResult,
    restored: Option<&str>,
    failure: Option<&str>,
    now: Millis,
) -> CoreResult<()> {
    let progress = if result == SessionResult::Success {
        100
    } else {
        0
    };
    c.execute(
        "UPDATE restore_sessions SET state = 'Stopped', result = ?2, ended = ?3,
                 restored_obj_ref = COALESCE(?4, restored_obj_ref), failure_message = ?5,
                 progress = CASE WHEN ?6 = 100 THEN 100 ELSE progress END
             WHERE id = ?1",
        params![
            id.to_string(),
            result.as_str(),
            now,
            restored,
            failure,
            progress
        ],
    )?;
    Ok(())
}
