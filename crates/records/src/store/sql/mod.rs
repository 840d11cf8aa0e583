//! One query set for both databases: the store's queries are written once, in the SQL that
//! SQLite and PostgreSQL both speak, over a small dialect layer that each backend implements.
//!
//! - [`Value`]: a parameter, in the five types the schema uses (and null);
//! - [`Row`]: one row, read by position straight from the driver's row into typed values,
//!   every miss an error (never a panic);
//! - [`Conn`]: a connection or a transaction: execute, query, and announce a change;
//! - [`Backend`]: how a backend runs a call (one statement, a snapshot, a write
//!   transaction), which failures are unique violations, and how it hears of changes.
//!
//! Every type that implements [`Backend`] is a [`Store`](super::Store): the implementation
//! is `queries/` (one file per concern), once. Placeholders are `$1`, `$2`, ..., each first written in that
//! order: PostgreSQL numbers them by their digits, SQLite by their order of first appearance
//! (to SQLite `$2` is a parameter named `$2`), and the two agree only so. The SQLite
//! backend checks this of every statement in debug builds, which every test runs. Where
//! the two dialects differ, [`Dialect`] says how, in one place.

mod queries;
mod rows;

use std::borrow::Cow;
use std::fmt;

use super::{ChangeHook, StoreError, StoreResult};

/// A parameter of a query, borrowed from the caller where it can be.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'a> {
    /// SQL `NULL`.
    Null,
    /// An integer (`INTEGER` in SQLite, `BIGINT` in PostgreSQL).
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// A boolean (an integer 0 or 1 in SQLite).
    Bool(bool),
    /// Text.
    Text(Cow<'a, str>),
    /// Bytes (`BLOB`, `BYTEA`).
    Bytes(Cow<'a, [u8]>),
}

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<bool> for Value<'_> {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Text(Cow::Borrowed(v))
    }
}

impl From<String> for Value<'_> {
    fn from(v: String) -> Self {
        Value::Text(Cow::Owned(v))
    }
}

impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(v: &'a [u8]) -> Self {
        Value::Bytes(Cow::Borrowed(v))
    }
}

impl<'a, T: Into<Value<'a>>> From<Option<T>> for Value<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

impl From<f64> for Value<'_> {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}

/// One row of a result, read by position (the column lists in `rows.rs` fix the order)
/// straight from the driver's row. Reading a cell of the wrong type, a null where a value
/// must be, or a column the row lacks is a [`StoreError::Database`], never a panic.
pub(crate) trait Row {
    /// An integer that may be null.
    fn opt_int(&self, i: usize) -> StoreResult<Option<i64>>;
    /// Text that may be null.
    fn opt_text(&self, i: usize) -> StoreResult<Option<String>>;
    /// A boolean: PostgreSQL's own, or SQLite's integer.
    fn boolean(&self, i: usize) -> StoreResult<bool>;
    /// A floating-point number that may be null.
    fn opt_real(&self, i: usize) -> StoreResult<Option<f64>>;
    /// Bytes.
    fn bytes(&self, i: usize) -> StoreResult<Vec<u8>>;

    /// An integer.
    fn int(&self, i: usize) -> StoreResult<i64> {
        self.opt_int(i)?.ok_or_else(|| bad(i, "an integer, found null"))
    }

    /// Text.
    fn text(&self, i: usize) -> StoreResult<String> {
        self.opt_text(i)?.ok_or_else(|| bad(i, "text, found null"))
    }
}

/// A stored value this version cannot read: the row is unusable.
pub(crate) fn bad(column: usize, expected: &str) -> StoreError {
    StoreError::Database(format!("column {column} of a row: expected {expected}").into())
}

/// Where the two dialects differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// SQLite: a write transaction holds the file's write lock from its start
    /// (`BEGIN IMMEDIATE`), so writers take turns without row locks.
    #[cfg(feature = "sqlite")]
    Sqlite,
    /// PostgreSQL: writers of many replicas run at once; a row lock orders what must be
    /// ordered.
    #[cfg(feature = "postgres")]
    Postgres,
}

impl Dialect {
    /// The column that numbers a session table's rows in the order of insertion: SQLite's
    /// `rowid`, PostgreSQL's `seq` identity.
    pub(crate) fn insertion_order(self) -> &'static str {
        match self {
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => "rowid",
            #[cfg(feature = "postgres")]
            Dialect::Postgres => "seq",
        }
    }

    /// ` FOR UPDATE` where rows must be locked to order writers (PostgreSQL); nothing where
    /// the transaction already holds the write lock (SQLite).
    pub(crate) fn for_update(self) -> &'static str {
        match self {
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => "",
            #[cfg(feature = "postgres")]
            Dialect::Postgres => " FOR UPDATE",
        }
    }
}

/// A connection or a transaction of a backend.
pub(crate) trait Conn {
    /// The dialect it speaks.
    fn dialect(&self) -> Dialect;
    /// Runs a statement; the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value<'_>]) -> StoreResult<u64>;
    /// Runs a query and calls `row` with each row, in order, until it fails.
    fn each(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
        row: &mut dyn FnMut(&dyn Row) -> StoreResult<()>,
    ) -> StoreResult<()>;
    /// Tells every other handle to the same data that it changed, once this transaction
    /// commits (PostgreSQL's `NOTIFY`); nothing where no other handle can hear (SQLite).
    fn announce(&mut self) -> StoreResult<()>;
}

impl dyn Conn + '_ {
    /// The first row of a query, if any, read by `read`.
    pub(crate) fn first<T>(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
        read: impl FnOnce(&dyn Row) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        let (mut read, mut out) = (Some(read), None);
        self.each(sql, params, &mut |row| {
            if let Some(read) = read.take() {
                out = Some(read(row)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Every row of a query, each read by `read`.
    pub(crate) fn all<T>(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
        mut read: impl FnMut(&dyn Row) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let mut out = Vec::new();
        self.each(sql, params, &mut |row| {
            out.push(read(row)?);
            Ok(())
        })?;
        Ok(out)
    }
}

/// How a backend runs a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Statements on their own, each committed as it runs.
    Single,
    /// Reads that see one snapshot (a count and its page).
    Snapshot,
    /// One transaction that writes: committed when the call returns `Ok`, rolled back
    /// when it returns `Err`.
    Write,
}

/// A database behind the one query set: every type that implements it is a
/// [`Store`](super::Store).
pub(crate) trait Backend: Send + Sync + fmt::Debug {
    /// Runs `f` on a connection in `mode`.
    fn run<T>(&self, mode: Mode, f: impl FnOnce(&mut dyn Conn) -> StoreResult<T>) -> StoreResult<T>;
    /// Whether `e` is a violated unique constraint (a name taken).
    fn is_unique_violation(&self, e: &StoreError) -> bool;
    /// See [`Store::subscribe`](super::Store::subscribe).
    fn subscribe(&self, on_change: ChangeHook) -> StoreResult<()> {
        let _ = on_change;
        Ok(())
    }
}
