//! Call records: batched, idempotent inserts (with their interval increments in
//! the same transaction) and filtered reads.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::filter::Filter;
use super::intervals::{self, IntervalRow};
use super::{Store, StoreError};
use crate::cdr::{CallRecord, Event};

const COLUMNS: &str = "id, sip_call_id, caller, called, original, line, mode, department, \
    queue, agent, answered_by, transferred_to, outcome, reason, final_code, received_at_ms, \
    offered_at_ms, answered_at_ms, ended_at_ms, survey, recording, callback_pending, events, trunk";
const NCOLS: usize = 24;
/// What a read returns: the written columns and the callback's state, kept
/// by the callback writes (`store/callbacks.rs`).
const SELECT_COLUMNS: &str = "id, sip_call_id, caller, called, original, line, mode, department, \
    queue, agent, answered_by, transferred_to, outcome, reason, final_code, received_at_ms, \
    offered_at_ms, answered_at_ms, ended_at_ms, survey, recording, callback_pending, events, trunk, \
    callback_state, callback_done_at_ms";
/// Records per INSERT statement: 24 × 400 parameters stays under SQLite's 32,766.
const CHUNK: usize = 400;
/// SQLite gets slower per row as a statement grows (`benches/store_writer.rs`, 1 000
/// records per transaction: 400 rows per statement 4,200 records/s, 50 rows 20,500,
/// 10 rows 37,400, 1 row 16,800): small statements, one transaction.
const SQLITE_CHUNK: usize = 10;

/// A finished call to keep: its record, the interval increments it brings, and
/// its work-order stub's final revision. All three go in one transaction.
#[derive(Debug, Clone)]
pub struct CallWrite {
    pub record: CallRecord,
    pub intervals: Vec<IntervalRow>,
    pub ticket: Option<super::tickets::TicketWrite>,
}

/// Which calls to read. Every field narrows; none set means the latest calls.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    /// Ended at or after (Unix ms).
    pub from_ms: Option<i64>,
    /// Ended before (Unix ms).
    pub to_ms: Option<i64>,
    pub line: Option<String>,
    pub mode: Option<String>,
    pub queue: Option<String>,
    pub outcome: Option<String>,
    /// The trunk the calls came in over.
    pub trunk: Option<String>,
    pub callback_pending: Option<bool>,
    /// At most this many, newest first (oldest first when `ascending`).
    pub limit: i64,
    pub ascending: bool,
    /// Only calls after this one (its `ended_at_ms` and id) in the order asked:
    /// the next page of a long read, with no overlap and no gap.
    pub after: Option<(i64, String)>,
}

impl Store {
    /// Writes finished calls and the interval increments each one brings, in one
    /// transaction. A record whose id is already stored is skipped together with its
    /// increments, so a batch retried after an unclear failure counts nothing twice.
    /// Returns how many records were new.
    pub async fn insert_calls(&self, batch: &[CallWrite]) -> Result<usize, StoreError> {
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await?;
        let mut inserted = std::collections::HashSet::new();
        let rows_per_statement = match self.backend {
            super::Backend::Sqlite => SQLITE_CHUNK,
            super::Backend::Postgres => CHUNK,
        };
        for chunk in batch.chunks(rows_per_statement) {
            let sql = insert_sql(chunk.len());
            let mut q = sqlx::query(&sql);
            for CallWrite { record: r, .. } in chunk {
                let events = serde_json::to_string(&r.events)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                q = q
                    .bind(r.id.clone())
                    .bind(r.sip_call_id.clone())
                    .bind(r.caller.clone())
                    .bind(r.called.clone())
                    .bind(r.original.clone())
                    .bind(r.line.clone())
                    .bind(r.mode.clone())
                    .bind(r.department.clone())
                    .bind(r.queue.clone())
                    .bind(r.agent.clone())
                    .bind(r.answered_by.clone())
                    .bind(r.transferred_to.clone())
                    .bind(r.outcome.clone())
                    .bind(r.reason.clone())
                    .bind(i64::from(r.final_code))
                    .bind(r.received_at_ms)
                    .bind(r.offered_at_ms)
                    .bind(r.answered_at_ms)
                    .bind(r.ended_at_ms)
                    .bind(r.survey.map(i64::from))
                    .bind(r.recording.clone())
                    .bind(i64::from(r.callback_pending))
                    .bind(events)
                    .bind(r.trunk.clone());
            }
            for row in q.fetch_all(&mut *tx).await? {
                inserted.insert(row.try_get::<String, _>(0)?);
            }
        }
        let rows: Vec<&IntervalRow> = batch
            .iter()
            .filter(|w| inserted.contains(&w.record.id))
            .flat_map(|w| &w.intervals)
            .collect();
        intervals::add(&mut tx, &rows).await?;
        // Stubs in id order, as the delivery loop locks them.
        let mut stubs: Vec<&super::tickets::TicketWrite> = batch
            .iter()
            .filter(|w| inserted.contains(&w.record.id))
            .filter_map(|w| w.ticket.as_ref())
            .collect();
        stubs.sort_by(|a, b| a.id.cmp(&b.id));
        for t in stubs {
            super::tickets::write(&mut tx, t).await?;
        }
        // The calls are over: no longer in progress on any node.
        for chunk in batch.chunks(CHUNK) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!("DELETE FROM live_calls WHERE id IN ({})", marks.join(", "));
            let mut q = sqlx::query(&sql);
            for w in chunk {
                q = q.bind(w.record.id.clone());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        conn.ended_cleanly();
        Ok(inserted.len())
    }

    /// Calls matching `filter`.
    pub async fn calls(&self, f: &CallFilter) -> Result<Vec<CallRecord>, StoreError> {
        let mut q = Filter::new(format!(
            "SELECT {SELECT_COLUMNS} FROM call_records WHERE 1 = 1"
        ));
        q.int("ended_at_ms >=", f.from_ms);
        q.int("ended_at_ms <", f.to_ms);
        q.text("line =", &f.line);
        q.text("mode =", &f.mode);
        q.text("queue =", &f.queue);
        q.text("outcome =", &f.outcome);
        q.text("trunk =", &f.trunk);
        q.int("callback_pending =", f.callback_pending.map(i64::from));
        if let Some((ended_at_ms, id)) = &f.after {
            q.after(*ended_at_ms, id, f.ascending);
        }
        let dir = if f.ascending { "ASC" } else { "DESC" };
        let order = format!("ended_at_ms {dir}, id {dir}");
        let rows = q.fetch(&self.pool, &order, f.limit).await?;
        rows.iter().map(from_row).collect()
    }

    /// Calls first offered in `[from_ms, to_ms)`, in order of first offer (then
    /// id), after the given (offered_at_ms, id): one page of a report's read.
    /// Only the columns reports use are read ([`REPORT_COLUMNS`]); the others
    /// are left empty.
    pub async fn calls_offered(
        &self,
        from_ms: i64,
        to_ms: i64,
        after: Option<&(i64, String)>,
        limit: i64,
    ) -> Result<Vec<CallRecord>, StoreError> {
        let page = match after {
            None => "",
            // The bound on offered_at_ms alone lets the index seek to the page
            // (an OR on its own would scan from the range's start every page).
            Some(_) => " AND offered_at_ms >= $3 AND (offered_at_ms > $3 OR id > $4)",
        };
        let sql = format!(
            "SELECT {REPORT_COLUMNS} FROM call_records WHERE offered_at_ms >= $1 AND offered_at_ms < $2{page} \
             ORDER BY offered_at_ms, id LIMIT ${}",
            if after.is_some() { 5 } else { 3 }
        );
        let mut q = sqlx::query(&sql).bind(from_ms).bind(to_ms);
        if let Some((at, id)) = after {
            q = q.bind(*at).bind(id.clone());
        }
        let rows = q.bind(limit.max(0)).fetch_all(&self.pool).await?;
        rows.iter().map(from_report_row).collect()
    }

    /// How many calls are stored.
    pub async fn count_calls(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM call_records")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Marks a missed call as called back. Returns false when no such call waits.
    pub async fn clear_callback(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE call_records SET callback_pending = 0, callback_state = 'done', \
             callback_done_at_ms = $2 WHERE id = $1 AND callback_pending = 1",
        )
        .bind(id.to_string())
        .bind(crate::util::time::unix_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// What a report reads of a call (each column read costs, over millions).
const REPORT_COLUMNS: &str = "id, caller, line, mode, department, answered_by, transferred_to, \
    reason, offered_at_ms, ended_at_ms, survey, callback_pending, callback_state, \
    callback_done_at_ms, events";

fn from_report_row(row: &AnyRow) -> Result<CallRecord, StoreError> {
    let events: String = row.try_get("events")?;
    let events: Vec<Event> =
        serde_json::from_str(&events).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(CallRecord {
        id: row.try_get("id")?,
        sip_call_id: String::new(),
        caller: row.try_get("caller")?,
        called: String::new(),
        original: None,
        line: row.try_get("line")?,
        mode: row.try_get("mode")?,
        department: row.try_get("department")?,
        trunk: None,
        queue: None,
        agent: None,
        answered_by: row.try_get("answered_by")?,
        transferred_to: row.try_get("transferred_to")?,
        outcome: None,
        reason: row.try_get("reason")?,
        final_code: 0,
        received_at_ms: 0,
        offered_at_ms: row.try_get("offered_at_ms")?,
        answered_at_ms: None,
        ended_at_ms: row.try_get("ended_at_ms")?,
        survey: row
            .try_get::<Option<i64>, _>("survey")?
            .and_then(|v| u8::try_from(v).ok()),
        recording: None,
        callback_pending: row.try_get::<i64, _>("callback_pending")? != 0,
        callback_state: row.try_get("callback_state")?,
        callback_done_at_ms: row.try_get("callback_done_at_ms")?,
        events,
    })
}

fn insert_sql(rows: usize) -> String {
    let mut sql = format!("INSERT INTO call_records ({COLUMNS}) VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..NCOLS {
            if c > 0 {
                sql.push(',');
            }
            sql += &format!("${}", r * NCOLS + c + 1);
        }
        sql.push(')');
    }
    sql += " ON CONFLICT (id) DO NOTHING RETURNING id";
    sql
}

fn from_row(row: &AnyRow) -> Result<CallRecord, StoreError> {
    let events: String = row.try_get("events")?;
    let events: Vec<Event> =
        serde_json::from_str(&events).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let small = |v: Option<i64>| v.and_then(|v| u8::try_from(v).ok());
    Ok(CallRecord {
        id: row.try_get("id")?,
        sip_call_id: row.try_get("sip_call_id")?,
        caller: row.try_get("caller")?,
        called: row.try_get("called")?,
        original: row.try_get("original")?,
        line: row.try_get("line")?,
        mode: row.try_get("mode")?,
        department: row.try_get("department")?,
        trunk: row.try_get("trunk")?,
        queue: row.try_get("queue")?,
        agent: row.try_get("agent")?,
        answered_by: row.try_get("answered_by")?,
        transferred_to: row.try_get("transferred_to")?,
        outcome: row.try_get("outcome")?,
        reason: row.try_get("reason")?,
        final_code: u16::try_from(row.try_get::<i64, _>("final_code")?).unwrap_or_default(),
        received_at_ms: row.try_get("received_at_ms")?,
        offered_at_ms: row.try_get("offered_at_ms")?,
        answered_at_ms: row.try_get("answered_at_ms")?,
        ended_at_ms: row.try_get("ended_at_ms")?,
        survey: small(row.try_get("survey")?),
        recording: row.try_get("recording")?,
        callback_pending: row.try_get::<i64, _>("callback_pending")? != 0,
        callback_state: row.try_get("callback_state")?,
        callback_done_at_ms: row.try_get("callback_done_at_ms")?,
        events,
    })
}
