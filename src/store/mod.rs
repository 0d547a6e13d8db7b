//! The store: the only module that imports sqlx. SQLite by default (a file under
//! `data/`, WAL), PostgreSQL when the gateway runs as several nodes.
//!
//! It owns the schema (`migrations/sqlite`, `migrations/postgres`) and the SQL, and
//! nothing else: what a record means, and which interval rows a call adds to, is
//! decided by `sla/` and the reporting service. The same SQL text serves both
//! databases (`$N` placeholders, `ON CONFLICT`, `RETURNING`), through sqlx's `Any`
//! driver.

mod callbacks;
mod calls;
mod cluster;
mod filter;
mod intervals;
mod migrate;
#[cfg(test)]
mod tests;
mod tickets;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

pub use callbacks::CallbackSummary;
pub use calls::{CallFilter, CallWrite};
pub use cluster::{Heartbeat, LiveCall, RegistrationRow};
pub use intervals::{AlertRow, IntervalRow};
pub use tickets::{Attempt, OutboxItem, TicketFilter, TicketRow, TicketWrite};

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Why the store failed. `Unavailable` is worth retrying; `Refused` is not.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?}: use sqlite:PATH or postgres://…")]
    Url(String),
    #[error("cannot create the folder for {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database refused the request: {0}")]
    Refused(#[source] sqlx::Error),
    #[error("migration {version} failed: {source}")]
    Migration {
        version: i64,
        #[source]
        source: sqlx::Error,
    },
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_) => StoreError::Unavailable(e),
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                let sqlite = db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some();
                let transient = (sqlite && sqlite_transient(&code))
                    // PostgreSQL: connection, operator intervention (shutdown),
                    // insufficient resources (disk full), serialization, deadlock.
                    || code.starts_with("08")
                    || code.starts_with("57")
                    || code.starts_with("53")
                    || code == "40001"
                    || code == "40P01";
                if transient {
                    StoreError::Unavailable(e)
                } else {
                    StoreError::Refused(e)
                }
            }
            _ => StoreError::Refused(e),
        }
    }
}

/// SQLite result codes worth retrying, by primary code (the low byte of the
/// extended code sqlx reports): BUSY, LOCKED, and the disk's troubles, which an
/// operator fixes without touching the records: READONLY (8), IOERR (10), FULL
/// (13). Records wait in the backlog meanwhile (`503 store.backlog` once full).
fn sqlite_transient(code: &str) -> bool {
    const BUSY: i64 = 5;
    const LOCKED: i64 = 6;
    const READONLY: i64 = 8;
    const IOERR: i64 = 10;
    const FULL: i64 = 13;
    code.parse::<i64>()
        .is_ok_and(|c| matches!(c & 0xff, BUSY | LOCKED | READONLY | IOERR | FULL))
}

impl StoreError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// A pooled connection for one write transaction, closed instead of going back
/// to the pool unless the transaction committed.
///
/// Why: SQLite may roll a transaction back by itself when a write fails with
/// FULL or IOERR; sqlx's own ROLLBACK then fails, and it goes on believing the
/// connection is inside a transaction: its next BEGIN becomes a SAVEPOINT that
/// never commits and keeps the write lock (every later write: "database is
/// locked", rows never visible). A fresh connection after a failure avoids that.
pub(crate) struct WriteConn {
    conn: sqlx::pool::PoolConnection<sqlx::Any>,
    committed: bool,
}

impl WriteConn {
    pub(crate) async fn begin(&mut self) -> Result<sqlx::Transaction<'_, sqlx::Any>, StoreError> {
        use sqlx::Connection;
        Ok(self.conn.begin().await?)
    }

    /// The transaction committed or rolled back without error: the connection
    /// may be reused.
    pub(crate) fn ended_cleanly(mut self) {
        self.committed = true;
    }
}

impl Drop for WriteConn {
    fn drop(&mut self) {
        if !self.committed {
            self.conn.close_on_drop();
        }
    }
}

/// A connection pool with the schema migrated.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `url`:
    /// `sqlite:PATH` (or `sqlite://PATH`) or `postgres://…`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalise(url)?;
        let opts = AnyConnectOptions::from_str(&url)
            .map_err(|_| StoreError::Url(url.clone()))?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        let store = Store { pool, backend };
        migrate::run(&store).await?;
        Ok(store)
    }

    /// A connection for one write transaction (see [`WriteConn`]).
    pub(crate) async fn write_conn(&self) -> Result<WriteConn, StoreError> {
        Ok(WriteConn {
            conn: self.pool.acquire().await?,
            committed: false,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection (waits for those in use).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A cheap round trip, for health checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Recognises the backend and, for SQLite, creates the file's folder and asks
/// for the file to be created.
fn normalise(url: &str) -> Result<(Backend, String), StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_string()));
    }
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Err(StoreError::Url(url.to_string()));
    };
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() {
        return Err(StoreError::Url(url.to_string()));
    }
    if path != ":memory:"
        && let Some(dir) = Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Folder {
            path: path.to_string(),
            source,
        })?;
    }
    // sqlx reads the URL's path as a URL: a relative path with `..` loses parts.
    let path = match path {
        ":memory:" => path.to_string(),
        p => std::path::absolute(p)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| p.to_string()),
    };
    let query = if query.is_empty() {
        "mode=rwc".to_string()
    } else {
        query.to_string()
    };
    Ok((Backend::Sqlite, format!("sqlite://{path}?{query}")))
}
