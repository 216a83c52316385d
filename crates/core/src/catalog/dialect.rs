//! The seam for a second SQL dialect. The statements of the catalog are SQLite's; the few
//! spellings that differ between SQL engines and that code composes at run time (the query
//! service's WHERE clauses, the catalog's change counter) ask the [`Dialect`] instead of
//! spelling them inline, so that a PostgreSQL catalog can answer them its own way.

/// An SQL engine the catalog speaks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// The embedded default (rusqlite, bundled SQLite).
    Sqlite,
}

impl Dialect {
    /// The marker of the `n`th bound parameter (1-based).
    /// The column that names a row of a table most cheaply (what an index entry points at).
    pub(crate) fn row_key(self) -> &'static str {
        match self {
            Dialect::Sqlite => "rowid",
        }
    }

    pub(crate) fn param(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
        }
    }

    /// What follows a text expression to compare or sort it ignoring case (Enterprise
    /// Manager's SQL Server collation is case-insensitive; query_service.md).
    pub(crate) fn nocase(self) -> &'static str {
        match self {
            Dialect::Sqlite => " COLLATE NOCASE",
        }
    }

    /// A statement answering one integer that changes whenever any connection commits.
    pub(crate) fn data_version(self) -> &'static str {
        match self {
            Dialect::Sqlite => "PRAGMA data_version",
        }
    }

    /// A statement answering `ok` when the catalog's storage is consistent.
    pub(crate) fn integrity_check(self) -> &'static str {
        match self {
            Dialect::Sqlite => "PRAGMA integrity_check",
        }
    }

    /// `2013-08-26 08:31:22` (UTC) from a column of milliseconds since the epoch.
    pub(crate) fn stamp(self, ms_col: &str) -> String {
        match self {
            Dialect::Sqlite => {
                format!("strftime('%Y-%m-%d %H:%M:%S', {ms_col} / 1000, 'unixepoch')")
            }
        }
    }
}
