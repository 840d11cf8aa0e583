//! PostgreSQL behind [`Store`](super::Store): the records of many stateless replicas in one database.
//! The queries are the shared ones (`store::sql`); this is the pool, the schema, the
//! listener and the dialect.
//!
//! The same semantics as the SQLite store, query for query: every consistent change is one
//! transaction, and the compare-and-set on `lock_version` is an `UPDATE ... WHERE
//! lock_version = $n` whose row lock makes a second writer re-check the condition after the
//! first commits, so two replicas retrying one job at once make exactly one new job.
//! Migrations run under a transaction-scoped advisory lock: replicas that start at once
//! take turns, and each applies only what the ones before it did not.

mod schema;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{GenericClient, NoTls};
use r2d2_postgres::PostgresConnectionManager;

use self::schema::MIGRATIONS;
use super::sql::{Backend, Conn, Dialect, Mode, Row, Value};
use super::{ChangeHook, StoreError, StoreResult};

/// Connections a replica keeps at most.
const POOL_SIZE: u32 = 16;
/// The channel every change is announced on (`NOTIFY`, delivered at commit).
const CHANNEL: &str = "artifact_changes";
/// How often a listener looks up from waiting (to notice that its store is gone).
const LISTEN_POLL: Duration = Duration::from_millis(250);

/// The advisory lock migrations run under (any constant the application owns).
const MIGRATION_LOCK: i64 = 0x6172_7469_6661_6374; // "artifact"

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

/// PostgreSQL behind [`Store`](super::Store), over a pool of connections.
#[derive(Debug)]
pub struct PostgresStore {
    /// `Some` until dropped.
    pool: Option<Pool>,
    /// For the listener's own connection.
    config: postgres::Config,
    /// Tells listeners that the store is gone.
    closed: Arc<AtomicBool>,
}

impl Drop for PostgresStore {
    /// Closing a connection of the synchronous client blocks on its own runtime, which a
    /// thread that drives async tasks may not do: the pool is dropped on a thread of its own.
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Some(pool) = self.pool.take() {
            let _ = std::thread::spawn(move || drop(pool)).join();
        }
    }
}

/// A failure as the store reports it: the database unreachable (a connection that closed or
/// could not be had, an I/O error) is [`StoreError::Unavailable`], anything else
/// [`StoreError::Database`].
fn db(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
    let unreachable = boxed.is::<r2d2::Error>()
        || boxed.downcast_ref::<postgres::Error>().is_some_and(|pg| {
            use std::error::Error as _;
            pg.is_closed() || pg.source().is_some_and(|s| s.is::<std::io::Error>())
        });
    if unreachable { StoreError::Unavailable(boxed) } else { StoreError::Database(boxed) }
}

fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:pass@host:port/db`) and runs pending migrations.
    pub fn open(url: &str) -> StoreResult<PostgresStore> {
        let config: postgres::Config = url.parse().map_err(|e| StoreError::Database(Box::new(e)))?;
        let manager = PostgresConnectionManager::new(config.clone(), NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            // A database that is down is a prompt 503, not a long wait.
            .connection_timeout(Duration::from_secs(2))
            .build(manager)
            .map_err(db)?;
        let store = PostgresStore { pool: Some(pool), config, closed: Arc::default() };
        store.migrate()?;
        Ok(store)
    }

    /// A connection from the pool.
    fn conn(&self) -> StoreResult<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>> {
        self.pool.as_ref().expect("present until dropped").get().map_err(db)
    }

    fn with<T>(&self, f: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error>) -> StoreResult<T> {
        let mut conn = self.conn()?;
        f(&mut conn).map_err(db)
    }

    /// Applies the pending migrations in one transaction under the advisory lock.
    fn migrate(&self) -> StoreResult<()> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
            tx.batch_execute("CREATE TABLE IF NOT EXISTS artifact_schema (version BIGINT NOT NULL)")?;
            let done: i64 = tx.query_one("SELECT COALESCE(MAX(version), 0) FROM artifact_schema", &[])?.get(0);
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(done.max(0) as usize) {
                tx.batch_execute(sql)?;
                tx.execute("INSERT INTO artifact_schema (version) VALUES ($1)", &[&(i as i64 + 1)])?;
            }
            tx.commit()
        })
    }
}

/// Announces a change to every replica's listener (on commit of `tx`).
fn notify(c: &mut impl GenericClient) -> StoreResult<()> {
    c.batch_execute(&format!("NOTIFY {CHANNEL}")).map_err(db)
}

/// A replica's listener: its own connection, `LISTEN`, and `on_change` for every
/// notification. After a lost connection it reconnects and calls `on_change` once, since
/// notifications may have been missed meanwhile. Ends when the store is dropped.
fn listen(config: postgres::Config, closed: Arc<AtomicBool>, on_change: ChangeHook) {
    let mut retry = Duration::from_millis(100);
    while !closed.load(Ordering::SeqCst) {
        let mut client = match config.connect(NoTls) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "change listener: cannot connect; retrying");
                std::thread::sleep(retry); // a backoff between attempts, not a synchronisation
                retry = (retry * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if client.batch_execute(&format!("LISTEN {CHANNEL}")).is_err() {
            continue;
        }
        retry = Duration::from_millis(100);
        on_change();
        while !closed.load(Ordering::SeqCst) {
            let next = client.notifications().timeout_iter(LISTEN_POLL).next();
            match next {
                Ok(Some(_)) => on_change(),
                Ok(None) if !client.is_closed() => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
}

impl ToSql for Value<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        /// `v` if its type is one `ty` takes: a mismatch is an error, never bytes of
        /// another type.
        fn put<T: ToSql>(
            v: &T,
            ty: &Type,
            out: &mut BytesMut,
        ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
            if !T::accepts(ty) {
                return Err(
                    format!("a {} cannot be written to a column of type {ty}", std::any::type_name::<T>()).into()
                );
            }
            v.to_sql(ty, out)
        }
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) if *ty == Type::INT4 => put(&i32::try_from(*v)?, ty, out),
            Value::Int(v) => put(v, ty, out),
            Value::Real(v) => put(v, ty, out),
            Value::Bool(v) => put(v, ty, out),
            Value::Text(v) => put(&&**v, ty, out),
            Value::Bytes(v) => put(&&**v, ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A row as PostgreSQL sends it. A cell of another type is an error (the client checks
/// the column's type before it converts).
struct PostgresRow<'r>(&'r postgres::Row);

impl PostgresRow<'_> {
    fn get<'a, T: postgres::types::FromSql<'a>>(&'a self, i: usize) -> StoreResult<T> {
        self.0.try_get(i).map_err(db)
    }
}

impl Row for PostgresRow<'_> {
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

/// A connection or a transaction.
struct Postgres<'a, C: GenericClient>(&'a mut C);

impl<C: GenericClient> Conn for Postgres<'_, C> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[Value<'_>]) -> StoreResult<u64> {
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        self.0.execute(sql, &params).map_err(db)
    }

    fn each(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
        row: &mut dyn FnMut(&dyn Row) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        for r in self.0.query(sql, &params).map_err(db)? {
            row(&PostgresRow(&r))?;
        }
        Ok(())
    }

    fn announce(&mut self) -> StoreResult<()> {
        notify(self.0)
    }
}

impl Backend for PostgresStore {
    /// `Snapshot` is a repeatable-read transaction; `Write` one at read committed, whose
    /// row locks order the writers of every replica.
    fn run<T>(&self, mode: Mode, f: impl FnOnce(&mut dyn Conn) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = self.conn()?;
        match mode {
            Mode::Single => f(&mut Postgres(&mut *conn)),
            Mode::Snapshot | Mode::Write => {
                let mut tx = match mode {
                    Mode::Snapshot => conn
                        .build_transaction()
                        .isolation_level(postgres::IsolationLevel::RepeatableRead)
                        .read_only(true)
                        .start(),
                    _ => conn.transaction(),
                }
                .map_err(db)?;
                let out = f(&mut Postgres(&mut tx))?;
                tx.commit().map_err(db)?;
                Ok(out)
            }
        }
    }

    fn is_unique_violation(&self, e: &StoreError) -> bool {
        let StoreError::Database(source) = e else { return false };
        source.downcast_ref::<postgres::Error>().is_some_and(is_unique_violation)
    }

    /// A listener thread with its own connection (`LISTEN artifact_changes`); every change
    /// this store makes is announced with `NOTIFY` in its own transaction, so a replica
    /// hears of another's change as soon as it commits.
    fn subscribe(&self, on_change: ChangeHook) -> StoreResult<()> {
        let (config, closed) = (self.config.clone(), self.closed.clone());
        std::thread::Builder::new()
            .name("artifact-pg-listen".into())
            .spawn(move || listen(config, closed, on_change))
            .map(drop)
            .map_err(db)
    }
}
