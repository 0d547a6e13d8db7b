//! Work-order stubs and their delivery outbox. A stub revision and its outbox
//! entry go in one transaction (also the call record's, at the end of a call);
//! the outbox is read in revision order per stub.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::filter::Filter;
use super::{Store, StoreError};

/// One stub revision to keep: plain data; the stub is its JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketWrite {
    pub id: String,
    pub line: Option<String>,
    pub state: String,
    pub revision: i64,
    pub at_ms: i64,
    pub stub: String,
    /// Queue it for delivery (a ticket URL is configured); else it stays local.
    pub deliver: bool,
}

/// An outbox entry due for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub ticket_id: String,
    pub revision: i64,
    pub body: String,
    pub attempts: i64,
}

/// The result of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub ticket_id: String,
    pub revision: i64,
    pub delivered: bool,
    /// The receiver's status, when it answered.
    pub status: Option<i64>,
    pub error: Option<String>,
    /// When to try again; `None` (and not delivered): dead-lettered.
    pub next_at_ms: Option<i64>,
    pub at_ms: i64,
}

/// A stub as the API shows it: its latest revision and how its delivery stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRow {
    pub id: String,
    pub line: Option<String>,
    pub state: String,
    pub revision: i64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// `local`, `pending`, `delivered` or `dead`.
    pub delivery: String,
    pub stub: String,
    /// Of the latest outbox entry, when there is one.
    pub attempts: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
}

/// Which stubs to list. Every field narrows.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub state: Option<String>,
    pub line: Option<String>,
    pub delivery: Option<String>,
    /// Updated at or after (Unix ms).
    pub from_ms: Option<i64>,
    /// Updated before (Unix ms).
    pub to_ms: Option<i64>,
    pub limit: i64,
}

/// Writes a stub revision (kept only if newer than the stored one) and, when it
/// is to be delivered, its outbox entry. Returns whether the revision was new.
pub(super) async fn write(
    tx: &mut Transaction<'_, Any>,
    t: &TicketWrite,
) -> Result<bool, StoreError> {
    let delivery = if t.deliver { "pending" } else { "local" };
    let done = sqlx::query(
        "INSERT INTO tickets (id, line, state, revision, created_at_ms, updated_at_ms, delivery, stub) \
         VALUES ($1, $2, $3, $4, $5, $5, $6, $7) \
         ON CONFLICT (id) DO UPDATE SET line = excluded.line, state = excluded.state, \
         revision = excluded.revision, updated_at_ms = excluded.updated_at_ms, \
         delivery = excluded.delivery, stub = excluded.stub \
         WHERE tickets.revision < excluded.revision",
    )
    .bind(t.id.clone())
    .bind(t.line.clone())
    .bind(t.state.clone())
    .bind(t.revision)
    .bind(t.at_ms)
    .bind(delivery)
    .bind(t.stub.clone())
    .execute(&mut **tx)
    .await?;
    let new = done.rows_affected() > 0;
    if new && t.deliver {
        // Revisions go out in order: behind one still pending, this one waits
        // (BLOCKED) until that one is delivered or dead-lettered.
        let latest: Option<(String,)> = sqlx::query_as(
            "SELECT state FROM ticket_outbox WHERE ticket_id = $1 ORDER BY revision DESC LIMIT 1",
        )
        .bind(t.id.clone())
        .fetch_optional(&mut **tx)
        .await?;
        let next_at = match latest {
            Some((state,)) if state == "pending" => BLOCKED,
            _ => t.at_ms,
        };
        sqlx::query(
            "INSERT INTO ticket_outbox (ticket_id, revision, body, state, attempts, next_at_ms, created_at_ms) \
             VALUES ($1, $2, $3, 'pending', 0, $4, $5) ON CONFLICT (ticket_id, revision) DO NOTHING",
        )
        .bind(t.id.clone())
        .bind(t.revision)
        .bind(t.stub.clone())
        .bind(next_at)
        .bind(t.at_ms)
        .execute(&mut **tx)
        .await?;
    }
    Ok(new)
}

/// `next_at_ms` of a revision waiting for an earlier one of the same stub.
const BLOCKED: i64 = i64::MAX;

const TICKET_COLUMNS: &str = "t.id, t.line, t.state, t.revision, t.created_at_ms, t.updated_at_ms, \
    t.delivery, t.stub, o.attempts, o.last_status, o.last_error";
/// The stub's latest outbox entry, for its delivery details.
const LATEST_OUTBOX: &str = "LEFT JOIN ticket_outbox o ON o.ticket_id = t.id AND o.revision = \
    (SELECT MAX(x.revision) FROM ticket_outbox x WHERE x.ticket_id = t.id)";

impl Store {
    /// Keeps newly opened stubs (and their outbox entries) in one transaction.
    /// Returns how many were new.
    pub async fn open_tickets(&self, stubs: &[TicketWrite]) -> Result<usize, StoreError> {
        let mut stubs: Vec<&TicketWrite> = stubs.iter().collect();
        stubs.sort_by(|a, b| (&a.id, a.revision).cmp(&(&b.id, b.revision)));
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await?;
        let mut n = 0;
        for t in stubs {
            n += usize::from(write(&mut tx, t).await?);
        }
        tx.commit().await?;
        conn.ended_cleanly();
        Ok(n)
    }

    /// Outbox entries due at `now_ms`, oldest first. A later revision of a stub is
    /// never due while an earlier one is pending (see `BLOCKED`), so updates
    /// arrive in order.
    pub async fn due_outbox(&self, now_ms: i64, limit: i64) -> Result<Vec<OutboxItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT ticket_id, revision, body, attempts FROM ticket_outbox \
             WHERE state = 'pending' AND next_at_ms <= $1 \
             ORDER BY next_at_ms, ticket_id, revision LIMIT $2",
        )
        .bind(now_ms.min(BLOCKED - 1))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxItem {
                    ticket_id: r.try_get(0)?,
                    revision: r.try_get(1)?,
                    body: r.try_get(2)?,
                    attempts: r.try_get(3)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Records a round of delivery attempts in one transaction.
    pub async fn outbox_attempts(&self, attempts: &[Attempt]) -> Result<(), StoreError> {
        // Stubs in id order (as `open_tickets` and the call writer lock them): no
        // deadlock between the delivery loop and the writer.
        let mut attempts: Vec<&Attempt> = attempts.iter().collect();
        attempts.sort_by(|a, b| (&a.ticket_id, a.revision).cmp(&(&b.ticket_id, b.revision)));
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await?;
        for a in attempts {
            // Lock the stub first: a revision the writer is adding right now is then
            // seen (and unblocked) below, not missed.
            lock(&mut tx, &a.ticket_id).await?;
            match a.next_at_ms {
                _ if a.delivered => {
                    sqlx::query(
                        "UPDATE ticket_outbox SET state = 'delivered', attempts = attempts + 1, \
                         last_status = $3, last_error = NULL, delivered_at_ms = $4 \
                         WHERE ticket_id = $1 AND revision = $2",
                    )
                    .bind(a.ticket_id.clone())
                    .bind(a.revision)
                    .bind(a.status)
                    .bind(a.at_ms)
                    .execute(&mut *tx)
                    .await?;
                    unblock_next(&mut tx, &a.ticket_id, a.revision, a.at_ms).await?;
                    summarise(&mut tx, &a.ticket_id).await?;
                }
                next => {
                    let state = if next.is_some() { "pending" } else { "dead" };
                    sqlx::query(
                        "UPDATE ticket_outbox SET state = $3, attempts = attempts + 1, last_status = $4, \
                         last_error = $5, next_at_ms = COALESCE($6, next_at_ms) \
                         WHERE ticket_id = $1 AND revision = $2",
                    )
                    .bind(a.ticket_id.clone())
                    .bind(a.revision)
                    .bind(state)
                    .bind(a.status)
                    .bind(a.error.clone())
                    .bind(next)
                    .execute(&mut *tx)
                    .await?;
                    if next.is_none() {
                        // The next revision is a full snapshot: it goes anyway.
                        unblock_next(&mut tx, &a.ticket_id, a.revision, a.at_ms).await?;
                        summarise(&mut tx, &a.ticket_id).await?;
                    }
                }
            }
        }
        tx.commit().await?;
        conn.ended_cleanly();
        Ok(())
    }

    /// The receiver took an entry.
    pub async fn outbox_delivered(
        &self,
        id: &str,
        revision: i64,
        status: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.outbox_attempts(&[Attempt {
            ticket_id: id.to_string(),
            revision,
            delivered: true,
            status: Some(status),
            error: None,
            next_at_ms: None,
            at_ms: now_ms,
        }])
        .await
    }

    /// An attempt failed: try again at `next_at_ms`, or give up (`dead`).
    pub async fn outbox_failed(
        &self,
        id: &str,
        revision: i64,
        status: Option<i64>,
        error: &str,
        next_at_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        self.outbox_attempts(&[Attempt {
            ticket_id: id.to_string(),
            revision,
            delivered: false,
            status,
            error: Some(error.to_string()),
            next_at_ms,
            at_ms: 0,
        }])
        .await
    }

    /// Re-drives a stub: its latest revision, if dead-lettered, goes back in the
    /// outbox (attempts reset). Each revision is a full snapshot, so older dead
    /// ones are marked `superseded` rather than sent after a newer one. Returns how
    /// many revisions changed.
    pub async fn redrive(&self, id: &str, now_ms: i64) -> Result<u64, StoreError> {
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await?;
        let latest: Option<(i64, String)> = sqlx::query_as(
            "SELECT revision, state FROM ticket_outbox WHERE ticket_id = $1 \
             ORDER BY revision DESC LIMIT 1",
        )
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((latest, state)) = latest else {
            tx.rollback().await?;
            conn.ended_cleanly();
            return Ok(0);
        };
        let mut changed = sqlx::query(
            "UPDATE ticket_outbox SET state = 'superseded' \
             WHERE ticket_id = $1 AND state = 'dead' AND revision < $2",
        )
        .bind(id.to_string())
        .bind(latest)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if state == "dead" {
            changed += sqlx::query(
                "UPDATE ticket_outbox SET state = 'pending', attempts = 0, next_at_ms = $3 \
                 WHERE ticket_id = $1 AND revision = $2",
            )
            .bind(id.to_string())
            .bind(latest)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        summarise(&mut tx, id).await?;
        tx.commit().await?;
        conn.ended_cleanly();
        Ok(changed)
    }

    /// Stubs matching `f`, most recently updated first.
    pub async fn tickets(&self, f: &TicketFilter) -> Result<Vec<TicketRow>, StoreError> {
        let mut q = Filter::new(format!(
            "SELECT {TICKET_COLUMNS} FROM tickets t {LATEST_OUTBOX} WHERE 1 = 1"
        ));
        q.text("t.state =", &f.state);
        q.text("t.line =", &f.line);
        q.text("t.delivery =", &f.delivery);
        q.int("t.updated_at_ms >=", f.from_ms);
        q.int("t.updated_at_ms <", f.to_ms);
        let rows = q
            .fetch(&self.pool, "t.updated_at_ms DESC, t.id DESC", f.limit)
            .await?;
        rows.iter().map(ticket_row).collect()
    }

    /// One stub by id.
    pub async fn ticket(&self, id: &str) -> Result<Option<TicketRow>, StoreError> {
        let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets t {LATEST_OUTBOX} WHERE t.id = $1");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(ticket_row).transpose()
    }

    /// Stubs still open (their call has not ended), oldest first, as (id, stub).
    pub async fn open_stubs(&self, limit: i64) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, stub FROM tickets WHERE state = 'open' ORDER BY created_at_ms LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Outbox entries by state: (pending, dead).
    pub async fn outbox_counts(&self) -> Result<(i64, i64), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) FILTER (WHERE state = 'pending'), \
             COUNT(*) FILTER (WHERE state = 'dead') FROM ticket_outbox",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }
}

/// Takes the stub's row lock for the rest of the transaction (PostgreSQL; SQLite
/// runs one writer at a time anyway).
async fn lock(tx: &mut Transaction<'_, Any>, id: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE tickets SET delivery = delivery WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Sets a delivered stub's summary from its latest revision's outbox state
/// (`pending`, `delivered` or `dead`); local stubs stay `local`.
async fn summarise(tx: &mut Transaction<'_, Any>, id: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE tickets SET delivery = COALESCE((SELECT state FROM ticket_outbox \
         WHERE ticket_id = $1 ORDER BY revision DESC LIMIT 1), delivery) \
         WHERE id = $1 AND delivery <> 'local'",
    )
    .bind(id.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Makes the revision after `revision` due, if it was waiting.
async fn unblock_next(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    revision: i64,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE ticket_outbox SET next_at_ms = $3 WHERE ticket_id = $1 AND next_at_ms = $4 \
         AND revision = (SELECT MIN(revision) FROM ticket_outbox WHERE ticket_id = $1 AND revision > $2)",
    )
    .bind(id.to_string())
    .bind(revision)
    .bind(now_ms)
    .bind(BLOCKED)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn ticket_row(r: &AnyRow) -> Result<TicketRow, StoreError> {
    Ok(TicketRow {
        id: r.try_get(0)?,
        line: r.try_get(1)?,
        state: r.try_get(2)?,
        revision: r.try_get(3)?,
        created_at_ms: r.try_get(4)?,
        updated_at_ms: r.try_get(5)?,
        delivery: r.try_get(6)?,
        stub: r.try_get(7)?,
        attempts: r.try_get(8)?,
        last_status: r.try_get(9)?,
        last_error: r.try_get(10)?,
    })
}
