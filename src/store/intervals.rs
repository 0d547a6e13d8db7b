//! Persisted 15-minute SLA intervals (increments upserted with each batch of
//! calls, rebuilt from the calls by a recompute) and the breach/recovery alerts.

use sqlx::{Any, Row, Transaction};

use super::{Store, StoreError};

/// The counters one interval holds for one (dimension, key). Plain data: which
/// rows a call adds to is `sla/`'s business.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntervalRow {
    pub start_ms: i64,
    pub dimension: String,
    pub key: String,
    pub offered: i64,
    pub answered: i64,
    pub answered_within: i64,
    pub abandoned: i64,
    pub short_abandoned: i64,
    pub transferred_out: i64,
    pub failed: i64,
    pub overflowed: i64,
}

/// A breach or recovery, as kept for export.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub at_ms: i64,
    pub kind: String,
    pub dimension: String,
    pub key: String,
    pub window: String,
    pub answer_rate: Option<f64>,
    pub offered: i64,
    pub target: f64,
}

const COUNTERS: [&str; 8] = [
    "offered",
    "answered",
    "answered_within",
    "abandoned",
    "short_abandoned",
    "transferred_out",
    "failed",
    "overflowed",
];
/// Rows per upsert statement (11 parameters each).
const CHUNK: usize = 500;

impl IntervalRow {
    fn counters(&self) -> [i64; 8] {
        [
            self.offered,
            self.answered,
            self.answered_within,
            self.abandoned,
            self.short_abandoned,
            self.transferred_out,
            self.failed,
            self.overflowed,
        ]
    }

    fn add(&mut self, other: &IntervalRow) {
        self.offered += other.offered;
        self.answered += other.answered;
        self.answered_within += other.answered_within;
        self.abandoned += other.abandoned;
        self.short_abandoned += other.short_abandoned;
        self.transferred_out += other.transferred_out;
        self.failed += other.failed;
        self.overflowed += other.overflowed;
    }
}

/// Adds increments to the stored intervals, merging rows of the same interval
/// first (an upsert may not touch one row twice).
pub(super) async fn add(
    tx: &mut Transaction<'_, Any>,
    rows: &[&IntervalRow],
) -> Result<(), StoreError> {
    let mut merged: Vec<IntervalRow> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for r in rows {
        let k = (r.start_ms, r.dimension.clone(), r.key.clone());
        match index.get(&k) {
            Some(&i) => IntervalRow::add(&mut merged[i], r),
            None => {
                index.insert(k, merged.len());
                merged.push((*r).clone());
            }
        }
    }
    for chunk in merged.chunks(CHUNK) {
        let mut sql = String::from(
            "INSERT INTO sla_intervals (start_ms, dimension, key, offered, answered, \
             answered_within, abandoned, short_abandoned, transferred_out, failed, overflowed) VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            let b = i * 11;
            let ph: Vec<String> = (1..=11).map(|c| format!("${}", b + c)).collect();
            sql += &format!("({})", ph.join(","));
        }
        sql += " ON CONFLICT (start_ms, dimension, key) DO UPDATE SET ";
        let sets: Vec<String> = COUNTERS
            .iter()
            .map(|c| format!("{c} = sla_intervals.{c} + excluded.{c}"))
            .collect();
        sql += &sets.join(", ");
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(r.start_ms)
                .bind(r.dimension.clone())
                .bind(r.key.clone());
            for v in r.counters() {
                q = q.bind(v);
            }
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

impl Store {
    /// Stored intervals starting in `[from_ms, to_ms)`, optionally of one dimension,
    /// oldest first.
    pub async fn intervals(
        &self,
        from_ms: i64,
        to_ms: i64,
        dimension: Option<&str>,
    ) -> Result<Vec<IntervalRow>, StoreError> {
        let mut sql = format!(
            "SELECT start_ms, dimension, key, {} FROM sla_intervals \
             WHERE start_ms >= $1 AND start_ms < $2",
            COUNTERS.join(", ")
        );
        if dimension.is_some() {
            sql += " AND dimension = $3";
        }
        sql += " ORDER BY start_ms, dimension, key";
        let mut q = sqlx::query(&sql).bind(from_ms).bind(to_ms);
        if let Some(d) = dimension {
            q = q.bind(d.to_string());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(IntervalRow {
                    start_ms: row.try_get(0)?,
                    dimension: row.try_get(1)?,
                    key: row.try_get(2)?,
                    offered: row.try_get(3)?,
                    answered: row.try_get(4)?,
                    answered_within: row.try_get(5)?,
                    abandoned: row.try_get(6)?,
                    short_abandoned: row.try_get(7)?,
                    transferred_out: row.try_get(8)?,
                    failed: row.try_get(9)?,
                    overflowed: row.try_get(10)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Replaces the intervals starting in `[from_ms, to_ms)` with `rows` (a
    /// recompute from the raw events), in one transaction.
    pub async fn replace_intervals(
        &self,
        from_ms: i64,
        to_ms: i64,
        rows: &[IntervalRow],
    ) -> Result<(), StoreError> {
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await?;
        sqlx::query("DELETE FROM sla_intervals WHERE start_ms >= $1 AND start_ms < $2")
            .bind(from_ms)
            .bind(to_ms)
            .execute(&mut *tx)
            .await?;
        let refs: Vec<&IntervalRow> = rows.iter().collect();
        add(&mut tx, &refs).await?;
        tx.commit().await?;
        conn.ended_cleanly();
        Ok(())
    }

    /// Keeps a breach or recovery.
    pub async fn insert_alert(&self, a: &AlertRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sla_alerts (at_ms, kind, dimension, key, sla_window, answer_rate, \
             offered, target) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(a.at_ms)
        .bind(a.kind.clone())
        .bind(a.dimension.clone())
        .bind(a.key.clone())
        .bind(a.window.clone())
        .bind(a.answer_rate)
        .bind(a.offered)
        .bind(a.target)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Alerts at or after `from_ms`, oldest first.
    pub async fn alerts(&self, from_ms: i64) -> Result<Vec<AlertRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT at_ms, kind, dimension, key, sla_window, answer_rate, offered, target \
             FROM sla_alerts WHERE at_ms >= $1 ORDER BY at_ms",
        )
        .bind(from_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AlertRow {
                    at_ms: row.try_get(0)?,
                    kind: row.try_get(1)?,
                    dimension: row.try_get(2)?,
                    key: row.try_get(3)?,
                    window: row.try_get(4)?,
                    answer_rate: row.try_get(5)?,
                    offered: row.try_get(6)?,
                    target: row.try_get(7)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
