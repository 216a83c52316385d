//! The catalog: every durable record of backups, points, tasks, sessions and accounts, in
//! SQLite (WAL mode, so the CLI can read while the server writes). One writing connection
//! behind a mutex; every statement is short. Hot read paths (resolving a caller, reading a task
//! or the restore points) use a small pool of read-only connections instead: in WAL mode readers
//! see the last committed state and never wait for the writer (bench/api.sh profile: requests
//! queued on the one mutex).
//!
//! All SQL of core lives in this folder: [`migrations`] holds the schema, and a file per
//! table or area holds its statements and row mapping as `Catalog` methods. Domain modules
//! call those methods and never see SQL. [`Dialect`] is the seam for a second SQL engine.

mod accounts;
mod backups;
mod dialect;
mod jobs;
mod migrations;
mod query;
mod summary;
mod tasks;

pub use accounts::AccountRow;
pub(crate) use accounts::Store as AccountStore;
pub use backups::{vm_point_name, NewVmPoint};
pub(crate) use dialect::Dialect;
pub(crate) use jobs::{JobEdit, NewTaskSession};
pub(crate) use query::{query_field_names, Cell, QueryFilter};

use crate::error::{CoreError, CoreResult};
use rusqlite::{Connection, Row};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use uuid::Uuid;

/// Read-only connections beside the writer: enough for the request threads of a small machine
/// to read at once; more only cost file descriptors and page caches.
const READERS: usize = 4;

/// The SQLite catalog.
pub struct Catalog {
    conn: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    /// Where the next reader search starts, so that threads spread over the pool.
    next_reader: AtomicUsize,
    /// Bumped after every change to accounts, their roles, settings or scopes (security.rs):
    /// cached callers loaded under an older value are stale (auth.rs).
    security_generation: AtomicU64,
    /// A read-only connection that only asks `PRAGMA data_version` ([`Catalog::data_version`]):
    /// it never commits, so every commit of any other connection changes its answer.
    watch: Mutex<Connection>,
    /// The SQL engine behind the connections.
    dialect: Dialect,
    /// How much work one query of the query service may do, in thousands of SQLite VM steps
    /// ([`Catalog::with_query_reader`]).
    query_budget: AtomicU64,
}

/// The default of [`Catalog::set_query_budget`]: 100 million SQLite VM steps, about a second
/// of one core.
pub const DEFAULT_QUERY_BUDGET: u64 = 100_000;

/// A UUID column; a value that is not a UUID is an error.
fn uuid_col(row: &Row, i: usize) -> rusqlite::Result<Uuid> {
    // Parsed from SQLite's own text, without a String of its own (bench/api.sh profile).
    let s = row.get_ref(i)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Uuid::parse_str(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// A column that may hold a UUID: NULL, and also text that is not a UUID, give `None` (links to
/// sessions and points that are gone or were never recorded are read as absent, not as errors).
fn uuid_col_lenient(row: &Row, i: usize) -> rusqlite::Result<Option<Uuid>> {
    let s: Option<String> = row.get(i)?;
    Ok(s.and_then(|s| Uuid::parse_str(&s).ok()))
}

impl Catalog {
    /// Open (or create) the catalog file and bring its schema up to date.
    pub fn open(path: &Path) -> CoreResult<Catalog> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Every request runs the same few statements: parse each once (bench/api.sh profile).
        conn.set_prepared_statement_cache_capacity(64);
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let dialect = Dialect::Sqlite;
        migrations::migrate(&mut conn, dialect)?;
        let readers = (0..READERS)
            .map(|_| Self::open_reader(path).map(Mutex::new))
            .collect::<CoreResult<Vec<_>>>()?;
        Ok(Catalog {
            conn: Mutex::new(conn),
            readers,
            next_reader: AtomicUsize::new(0),
            security_generation: AtomicU64::new(0),
            watch: Mutex::new(Self::open_reader(path)?),
            dialect,
            query_budget: AtomicU64::new(DEFAULT_QUERY_BUDGET),
        })
    }

    fn open_reader(path: &Path) -> CoreResult<Connection> {
        use rusqlite::OpenFlags;
        let c = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        c.busy_timeout(std::time::Duration::from_secs(10))?;
        c.set_prepared_statement_cache_capacity(64);
        Ok(c)
    }

    /// Run read statements on a read-only connection of the pool: a free one when there is
    /// one, else wait for one. Sees every change committed before the call.
    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> CoreResult<T> {
        Ok(self.with_reader_raw(f)??)
    }

    /// [`Catalog::with_reader`], handing back the statements' own result.
    fn with_reader_raw<T>(&self, f: impl FnOnce(&Connection) -> T) -> CoreResult<T> {
        let n = self.readers.len();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        let free = (0..n).find_map(|i| self.readers[(start + i) % n].try_lock().ok());
        let guard = match free {
            Some(g) => g,
            None => self.readers[start % n]
                .lock()
                .map_err(|_| CoreError::Internal("catalog reader lock poisoned".into()))?,
        };
        Ok(f(&guard))
    }

    /// Limit the work of one query of the query service, in thousands of SQLite VM steps.
    pub(crate) fn set_query_budget(&self, thousands: u64) {
        self.query_budget.store(thousands, Ordering::Relaxed);
    }

    /// Run a query of the query service on a reader, in one read transaction (its count and its
    /// page see the same state), stopped once it has done more than the query budget's work: a
    /// heavy filter costs a reader for a bounded time, never the writing connection, so it
    /// cannot stall writes and logons. A stopped query is a 400 naming the filter.
    fn with_query_reader<T>(&self, f: impl FnOnce(&Connection) -> CoreResult<T>) -> CoreResult<T> {
        let budget = self.query_budget.load(Ordering::Relaxed);
        let r = self.with_reader_raw(|c| {
            let mut left = budget;
            c.progress_handler(
                1000,
                Some(move || {
                    if left == 0 {
                        return true;
                    }
                    left -= 1;
                    false
                }),
            );
            let r = c
                .unchecked_transaction()
                .map_err(CoreError::from)
                .and_then(|tx| {
                    let v = f(&tx)?;
                    tx.commit()?;
                    Ok(v)
                });
            c.progress_handler(0, None::<fn() -> bool>);
            r
        })?;
        r.map_err(|e| match e {
            CoreError::Catalog(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) =>
            {
                CoreError::invalid(
                    "filter",
                    format!(
                        "the query needed more than its limit of {} million SQLite steps and \
                         was stopped: narrow the filter or ask for smaller pages",
                        budget / 1000
                    ),
                )
            }
            e => e,
        })
    }

    /// A version of the whole catalog: it changes whenever a change is committed, by this
    /// process (its writing connection) or by another process on the same file. Equal values
    /// read before two reads mean no commit came between them (SQLite's `PRAGMA data_version`,
    /// asked on a connection of its own that never writes). Answers computed from the catalog
    /// may be kept under the value read before they were computed (the server's reply cache).
    pub fn data_version(&self) -> CoreResult<u64> {
        let c = self
            .watch
            .lock()
            .map_err(|_| CoreError::Internal("catalog watch lock poisoned".into()))?;
        let v: i64 = c
            .prepare_cached(self.dialect.data_version())?
            .query_row([], |r| r.get(0))?;
        Ok(v as u64)
    }

    /// The schema version recorded in the catalog (see [`migrations`]).
    pub fn schema_version(&self) -> CoreResult<u32> {
        Ok(migrations::version(&*self.conn()?)?)
    }

    /// The current account-security generation (see the field).
    pub(crate) fn security_generation(&self) -> u64 {
        self.security_generation.load(Ordering::SeqCst)
    }

    /// Record that accounts, roles, settings or scopes changed (after the change committed).
    pub(crate) fn security_changed(&self) {
        self.security_generation.fetch_add(1, Ordering::SeqCst);
    }

    fn conn(&self) -> CoreResult<MutexGuard<'_, Connection>> {
        self.conn
            .lock()
            .map_err(|_| CoreError::Internal("catalog lock poisoned".into()))
    }

    /// Run statements on the writing connection.
    fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> CoreResult<T> {
        Ok(f(&*self.conn()?)?)
    }

    /// SQLite's own consistency check; `Ok(())` when it answers "ok".
    pub fn integrity_check(&self) -> CoreResult<()> {
        let c = self.conn()?;
        let r: String = c.query_row(self.dialect.integrity_check(), [], |r| r.get(0))?;
        if r == "ok" {
            Ok(())
        } else {
            Err(CoreError::Internal(format!("catalog integrity check: {r}")))
        }
    }
}
