//! Schema migrations: numbered SQL files per backend, embedded in the binary,
//! each applied once in its own transaction and recorded in `schema_migrations`.

use super::{Backend, Store, StoreError};

/// (version, SQLite text, PostgreSQL text), in order.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        include_str!("../../migrations/sqlite/0001_calls.sql"),
        include_str!("../../migrations/postgres/0001_calls.sql"),
    ),
    (
        2,
        include_str!("../../migrations/sqlite/0002_tickets.sql"),
        include_str!("../../migrations/postgres/0002_tickets.sql"),
    ),
    (
        3,
        include_str!("../../migrations/sqlite/0003_reports.sql"),
        include_str!("../../migrations/postgres/0003_reports.sql"),
    ),
    (
        4,
        include_str!("../../migrations/sqlite/0004_cluster.sql"),
        include_str!("../../migrations/postgres/0004_cluster.sql"),
    ),
    (
        5,
        include_str!("../../migrations/sqlite/0005_handover.sql"),
        include_str!("../../migrations/postgres/0005_handover.sql"),
    ),
    (
        6,
        include_str!("../../migrations/sqlite/0006_call_trunk.sql"),
        include_str!("../../migrations/postgres/0006_call_trunk.sql"),
    ),
    (
        7,
        include_str!("../../migrations/sqlite/0007_callbacks.sql"),
        include_str!("../../migrations/postgres/0007_callbacks.sql"),
    ),
];

/// Applies every migration the database has not seen yet.
pub(super) async fn run(store: &Store) -> Result<(), StoreError> {
    // One transaction for the whole run. On PostgreSQL an advisory lock comes
    // first, so two nodes starting together on an empty database take turns (even
    // `CREATE TABLE IF NOT EXISTS` races there otherwise).
    let mut tx = store.pool.begin().await?;
    if store.backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(12345)")
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations \
         (version BIGINT PRIMARY KEY, applied_at_ms BIGINT NOT NULL)",
    )
    .execute(&mut *tx)
    .await?;
    for &(version, sqlite, postgres) in MIGRATIONS {
        let done: Option<(i64,)> =
            sqlx::query_as("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
        if done.is_some() {
            continue;
        }
        let text = match store.backend {
            Backend::Sqlite => sqlite,
            Backend::Postgres => postgres,
        };
        // Comments first: one may hold a `;`.
        let text = strip_comments(text);
        for statement in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            sqlx::query(statement)
                .execute(&mut *tx)
                .await
                .map_err(|source| StoreError::Migration { version, source })?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, applied_at_ms) VALUES ($1, $2)")
            .bind(version)
            .bind(crate::util::time::unix_ms())
            .execute(&mut *tx)
            .await?;
        tracing::info!(
            version,
            backend = store.backend.as_str(),
            "database migrated"
        );
    }
    tx.commit().await?;
    Ok(())
}

/// A statement without its `--` comment lines.
fn strip_comments(s: &str) -> String {
    s.lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}
