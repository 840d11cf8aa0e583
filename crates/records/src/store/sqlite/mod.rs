//! The embedded store: one SQLite file in WAL mode, so that `artifact admin` and `artifact
//! import` write while the server reads. The queries are the shared ones (`store::sql`);
//! this is the connection pool, the schema and the dialect.

mod schema;

use std::path::{Path, PathBuf};

use rusqlite::types::{FromSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, TransactionBehavior, params_from_iter};

use self::schema::migrate;
use super::sql::{Backend, Conn, Dialect, Mode, Row, Value};
use super::{StoreError, StoreResult};

/// Prepared statements kept per connection: more than the store has queries.
const STATEMENTS_KEPT: usize = 128;

/// Connections at most: a bound on the descriptors a busy server holds (each connection
/// keeps the database, its WAL and its shared memory open). A call beyond it waits for one
/// to come back.
const MAX_CONNECTIONS: u32 = 32;

/// How long a call waits for a free connection before the store says it is unavailable.
const WAIT_FOR_CONNECTION: std::time::Duration = std::time::Duration::from_secs(30);

/// SQLite behind [`Store`](super::Store). Each call takes a connection from an `r2d2` pool
/// of at most 32 connections, opened as they are needed and kept while they are used (a busy
/// server holds a bounded number of descriptors; a call beyond the bound waits for one).
#[derive(Debug)]
pub struct SqliteStore {
    pool: r2d2::Pool<Files>,
}

/// How the pool opens a connection: WAL, full sync, foreign keys, a busy timeout, room for
/// every prepared statement.
#[derive(Debug)]
struct Files {
    path: PathBuf,
}

impl r2d2::ManageConnection for Files {
    type Connection = Connection;
    type Error = StoreError;

    fn connect(&self) -> StoreResult<Connection> {
        connect(&self.path)
    }

    fn is_valid(&self, _: &mut Connection) -> StoreResult<()> {
        Ok(())
    }

    fn has_broken(&self, _: &mut Connection) -> bool {
        false
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and runs pending migrations.
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        let mut conn = connect(path)?;
        migrate(&mut conn)?;
        drop(conn);
        let pool = r2d2::Pool::builder()
            .max_size(MAX_CONNECTIONS)
            .min_idle(Some(1))
            .connection_timeout(WAIT_FOR_CONNECTION)
            // No check on every checkout: a local file does not drop connections.
            .test_on_check_out(false)
            .build(Files { path: path.to_owned() })
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(SqliteStore { pool })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = self.pool.get().map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        f(&mut conn)
    }
}

/// A connection to the database at `path`, set up as every one of the store's is.
fn connect(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path).map_err(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(db)?;
    // Every statement is prepared once per connection and kept (the shared queries go
    // through `prepare_cached`): room for all of them, so that none pushes out another.
    conn.set_prepared_statement_cache_capacity(STATEMENTS_KEPT);
    // Switching a fresh file to WAL takes an exclusive lock, and SQLite answers "locked"
    // at once (without its busy handler) when another process is opening it at the same
    // moment: try again for a while, with a growing pause.
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        // `synchronous=FULL`: a commit is on disk when it returns (WAL with `NORMAL`
        // survives a killed process but may lose the last commits to a power cut).
        match conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;") {
            Ok(()) => return Ok(conn),
            Err(e) if is_busy(&e) && started.elapsed() < std::time::Duration::from_secs(10) => {
                std::thread::sleep(pause); // a backoff between attempts, not a synchronisation
                pause = (pause * 2).min(std::time::Duration::from_millis(200));
            }
            Err(e) => return Err(db(e)),
        }
    }
}

pub(super) fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(Box::new(e))
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(v) => ValueRef::Integer(*v),
            Value::Real(v) => ValueRef::Real(*v),
            Value::Bool(v) => ValueRef::Integer(i64::from(*v)),
            Value::Text(v) => ValueRef::Text(v.as_bytes()),
            Value::Bytes(v) => ValueRef::Blob(v),
        }))
    }
}

/// A row as SQLite holds it. A cell of another type is an error (rusqlite converts
/// nothing silently but integers to booleans, which is how SQLite keeps them).
struct SqliteRow<'r, 's>(&'r rusqlite::Row<'s>);

impl SqliteRow<'_, '_> {
    fn get<T: FromSql>(&self, i: usize) -> StoreResult<T> {
        self.0.get(i).map_err(db)
    }
}

impl Row for SqliteRow<'_, '_> {
    fn opt_int(&self, i: usize) -> StoreResult<Option<i64>> {
        self.get(i)
    }
    fn opt_text(&self, i: usize) -> StoreResult<Option<String>> {
        self.get(i)
    }
    fn boolean(&self, i: usize) -> StoreResult<bool> {
        self.get(i)
    }
    fn opt_real(&self, i: usize) -> StoreResult<Option<f64>> {
        self.get(i)
    }
    fn bytes(&self, i: usize) -> StoreResult<Vec<u8>> {
        self.get(i)
    }
}

/// That parameter `i` of `stmt` is the one written `$i` (see `store::sql`): SQLite numbers
/// `$`-parameters in their order of first appearance, so a query that wrote `$2` before
/// `$1` would bind each value to the other's place. Checked in debug builds, which every
/// test runs; free in release builds.
fn debug_assert_numbered_in_order(stmt: &rusqlite::Statement<'_>, sql: &str) {
    if cfg!(debug_assertions) {
        for i in 1..=stmt.parameter_count() {
            let name = stmt.parameter_name(i);
            assert_eq!(name, Some(format!("${i}").as_str()), "parameter {i} of {sql:?}");
        }
    }
}

/// A connection, or a transaction through the connection it derefs to.
struct Sqlite<'a>(&'a Connection);

impl Conn for Sqlite<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[Value<'_>]) -> StoreResult<u64> {
        let mut stmt = self.0.prepare_cached(sql).map_err(db)?;
        debug_assert_numbered_in_order(&stmt, sql);
        stmt.execute(params_from_iter(params)).map(|n| n as u64).map_err(db)
    }

    fn each(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
        row: &mut dyn FnMut(&dyn Row) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let mut stmt = self.0.prepare_cached(sql).map_err(db)?;
        debug_assert_numbered_in_order(&stmt, sql);
        let mut rows = stmt.query(params_from_iter(params)).map_err(db)?;
        while let Some(r) = rows.next().map_err(db)? {
            row(&SqliteRow(r))?;
        }
        Ok(())
    }

    fn announce(&mut self) -> StoreResult<()> {
        Ok(())
    }
}

impl Backend for SqliteStore {
    /// `Write` holds the file's write lock from the start (`BEGIN IMMEDIATE`): writers take
    /// turns, and a read-then-write inside never meets a busy upgrade.
    fn run<T>(&self, mode: Mode, f: impl FnOnce(&mut dyn Conn) -> StoreResult<T>) -> StoreResult<T> {
        self.with(|c| match mode {
            Mode::Single => f(&mut Sqlite(c)),
            Mode::Snapshot | Mode::Write => {
                let behavior = match mode {
                    Mode::Write => TransactionBehavior::Immediate,
                    _ => TransactionBehavior::Deferred,
                };
                let tx = c.transaction_with_behavior(behavior).map_err(db)?;
                let out = f(&mut Sqlite(&tx))?;
                tx.commit().map_err(db)?;
                Ok(out)
            }
        })
    }

    fn is_unique_violation(&self, e: &StoreError) -> bool {
        let StoreError::Database(source) = e else { return false };
        source.downcast_ref::<rusqlite::Error>().is_some_and(is_unique_violation)
    }
}
