//! What nodes of one hotline share in the database (issue 16): the ACD lease,
//! node heartbeats, calls in progress and agents' registrations. The lease and
//! heartbeats use PostgreSQL's clock; the rest works on SQLite too (a single
//! node's own live calls).

use sqlx::Row;

use super::{Backend, Store, StoreError};

/// The database's clock in Unix milliseconds (PostgreSQL).
const DB_NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

/// A call in progress, as its node wrote it when the call was offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCall {
    pub id: String,
    pub node: String,
    pub at_ms: i64,
    /// The offer's JSON.
    pub offer: String,
    /// Once answered: the agent, who answered (`12345`, `legacy`, `direct`), when.
    pub agent: Option<String>,
    pub answered_by: Option<String>,
    pub answered_at_ms: Option<i64>,
}

/// One stored registration (see `registrar::Binding`).
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrationRow {
    pub aor: String,
    pub contact: String,
    /// `udp` or `tcp`.
    pub transport: String,
    /// `IP:port` the REGISTER came from.
    pub source: String,
    /// The Path entries joined by `\n` (empty: none).
    pub path: String,
    pub q: Option<String>,
    pub call_id: String,
    pub cseq: i64,
    pub expires_at_ms: i64,
}

/// One heartbeat of a node (see [`Store::heartbeat`]).
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat<'a> {
    pub node: &'a str,
    pub role: &'a str,
    pub plan_version: &'a str,
    pub started_at_ms: i64,
    /// `ip:port` where the other nodes reach this one for SIP.
    pub sip_addr: &'a str,
}

impl Store {
    fn require_postgres(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Postgres => Ok(()),
            Backend::Sqlite => Err(StoreError::Url(
                "a cluster needs PostgreSQL (store.database = \"postgres://…\")".into(),
            )),
        }
    }

    /// Takes or renews lease `name` for `node` for `ttl_ms` (database clock):
    /// granted when nobody holds it, `node` holds it (even lapsed), or the
    /// holder's time has run out. Returns the epoch held, which grows whenever
    /// the holder changes; `None`: another node holds it.
    pub async fn acquire_lease(
        &self,
        name: &str,
        node: &str,
        ttl_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.require_postgres()?;
        let sql = format!(
            "INSERT INTO cluster_lease AS l (name, holder, epoch, expires_at_ms) \
             VALUES ($1, $2, 1, {DB_NOW_MS} + $3) \
             ON CONFLICT (name) DO UPDATE SET \
               epoch = CASE WHEN l.holder = EXCLUDED.holder THEN l.epoch ELSE l.epoch + 1 END, \
               holder = EXCLUDED.holder, expires_at_ms = EXCLUDED.expires_at_ms \
             WHERE l.holder = EXCLUDED.holder OR l.expires_at_ms < {DB_NOW_MS} \
             RETURNING epoch"
        );
        let row = sqlx::query(&sql)
            .bind(name.to_string())
            .bind(node.to_string())
            .bind(ttl_ms)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    /// Gives lease `name` up at once when `node` still holds it at `epoch`, so
    /// that another node may take it without waiting for it to lapse.
    pub async fn release_lease(
        &self,
        name: &str,
        node: &str,
        epoch: i64,
    ) -> Result<bool, StoreError> {
        self.require_postgres()?;
        let done = sqlx::query(
            "UPDATE cluster_lease SET expires_at_ms = 0 WHERE name = $1 AND holder = $2 AND epoch = $3",
        )
        .bind(name.to_string())
        .bind(node.to_string())
        .bind(epoch)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Writes `node`'s heartbeat: its role, dialplan version, start time and
    /// the address its peers reach it at for SIP.
    pub async fn heartbeat(&self, beat: &Heartbeat<'_>) -> Result<(), StoreError> {
        self.require_postgres()?;
        let sql = format!(
            "INSERT INTO cluster_nodes (node, seen_at_ms, role, plan_version, started_at_ms, sip_addr) \
             VALUES ($1, {DB_NOW_MS}, $2, $3, $4, $5) \
             ON CONFLICT (node) DO UPDATE SET seen_at_ms = EXCLUDED.seen_at_ms, \
               role = EXCLUDED.role, plan_version = EXCLUDED.plan_version, \
               started_at_ms = EXCLUDED.started_at_ms, sip_addr = EXCLUDED.sip_addr"
        );
        sqlx::query(&sql)
            .bind(beat.node.to_string())
            .bind(beat.role.to_string())
            .bind(beat.plan_version.to_string())
            .bind(beat.started_at_ms)
            .bind(beat.sip_addr.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The SIP addresses of the other nodes whose heartbeat is at most
    /// `fresh_ms` old (database clock), in node order.
    pub async fn peer_addrs(&self, node: &str, fresh_ms: i64) -> Result<Vec<String>, StoreError> {
        self.require_postgres()?;
        let sql = format!(
            "SELECT sip_addr FROM cluster_nodes \
             WHERE node <> $1 AND sip_addr <> '' AND seen_at_ms >= {DB_NOW_MS} - $2 ORDER BY node"
        );
        let rows: Vec<(String,)> = sqlx::query_as(&sql)
            .bind(node.to_string())
            .bind(fresh_ms)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(a,)| a).collect())
    }

    /// The node holding lease `name` now (its time not run out) and its SIP
    /// address, when it is not `node`.
    pub async fn other_holder(
        &self,
        name: &str,
        node: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        self.require_postgres()?;
        let sql = format!(
            "SELECT l.holder, n.sip_addr FROM cluster_lease l \
             JOIN cluster_nodes n ON n.node = l.holder \
             WHERE l.name = $1 AND l.holder <> $2 AND l.expires_at_ms > {DB_NOW_MS}"
        );
        let row: Option<(String, String)> = sqlx::query_as(&sql)
            .bind(name.to_string())
            .bind(node.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.filter(|(_, addr)| !addr.is_empty()))
    }

    /// Stores the active node's copy of an API view (`agents`, `queues`).
    pub async fn put_view(
        &self,
        name: &str,
        node: &str,
        at_ms: i64,
        body: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO cluster_views (name, node, at_ms, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET node = EXCLUDED.node, at_ms = EXCLUDED.at_ms, body = EXCLUDED.body",
        )
        .bind(name.to_string())
        .bind(node.to_string())
        .bind(at_ms)
        .bind(body.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The latest copy of an API view: (node, at_ms, body).
    pub async fn view(&self, name: &str) -> Result<Option<(String, i64, String)>, StoreError> {
        let row = sqlx::query("SELECT node, at_ms, body FROM cluster_views WHERE name = $1")
            .bind(name.to_string())
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))),
        }
    }

    /// The dialplan reload generation (0 before the first reload).
    pub async fn plan_generation(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT generation FROM cluster_plan WHERE name = 'dialplan'")
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => r.try_get(0)?,
            None => 0,
        })
    }

    /// `node` reloaded its dialplan: the others should too. Returns the new
    /// generation.
    pub async fn bump_plan_generation(&self, node: &str) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO cluster_plan AS p (name, generation, by_node) VALUES ('dialplan', 1, $1) \
             ON CONFLICT (name) DO UPDATE SET generation = p.generation + 1, by_node = EXCLUDED.by_node \
             RETURNING generation",
        )
        .bind(node.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Writes calls just offered (idempotent), a few hundred rows per statement.
    /// A call another node handed over (same id) becomes this node's.
    pub async fn open_live(&self, calls: &[LiveCall]) -> Result<(), StoreError> {
        // One row per id: an upsert may not touch a row twice in one statement.
        let mut seen = std::collections::HashSet::new();
        let calls: Vec<&LiveCall> = calls
            .iter()
            .rev()
            .filter(|c| seen.insert(c.id.as_str()))
            .collect();
        /// 4 parameters a row: far under SQLite's 32,766.
        const ROWS: usize = 400;
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await?;
        for chunk in calls.chunks(ROWS) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    format!(
                        "(${}, ${}, ${}, ${})",
                        4 * i + 1,
                        4 * i + 2,
                        4 * i + 3,
                        4 * i + 4
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO live_calls (id, node, at_ms, offer) VALUES {} ON CONFLICT (id) DO UPDATE SET node = excluded.node",
                values.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for c in chunk {
                q = q
                    .bind(c.id.clone())
                    .bind(c.node.clone())
                    .bind(c.at_ms)
                    .bind(c.offer.clone());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        conn.ended_cleanly();
        Ok(())
    }

    /// Live calls of the nodes `stale` selects: `node` itself (its previous
    /// run), or, with `others_older_than_ms`, every other node whose heartbeat
    /// is older than that (or that never beat). Oldest first, at most `limit`.
    pub async fn orphaned_live(
        &self,
        node: &str,
        others_older_than_ms: Option<i64>,
        limit: i64,
    ) -> Result<Vec<LiveCall>, StoreError> {
        let sql = match others_older_than_ms {
            None => "SELECT id, node, at_ms, offer, agent, answered_by, answered_at_ms \
                     FROM live_calls WHERE node = $1 ORDER BY at_ms LIMIT $2"
                .to_string(),
            Some(_) => format!(
                "SELECT c.id, c.node, c.at_ms, c.offer, c.agent, c.answered_by, c.answered_at_ms \
                 FROM live_calls c \
                 LEFT JOIN cluster_nodes n ON n.node = c.node \
                 WHERE c.node <> $1 AND (n.node IS NULL OR n.seen_at_ms < {DB_NOW_MS} - $3) \
                 ORDER BY c.at_ms LIMIT $2"
            ),
        };
        let mut q = sqlx::query(&sql).bind(node.to_string()).bind(limit);
        if let Some(age) = others_older_than_ms {
            self.require_postgres()?;
            q = q.bind(age);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(LiveCall {
                    id: r.try_get(0)?,
                    node: r.try_get(1)?,
                    at_ms: r.try_get(2)?,
                    offer: r.try_get(3)?,
                    agent: r.try_get(4)?,
                    answered_by: r.try_get(5)?,
                    answered_at_ms: r.try_get(6)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Notes answers on calls in progress: `(id, agent, answered_by, at_ms)`.
    pub async fn answer_live(
        &self,
        answers: &[(String, Option<String>, String, i64)],
    ) -> Result<(), StoreError> {
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await?;
        for (id, agent, by, at) in answers {
            sqlx::query(
                "UPDATE live_calls SET agent = $2, answered_by = $3, answered_at_ms = $4 WHERE id = $1",
            )
            .bind(id.clone())
            .bind(agent.clone())
            .bind(by.clone())
            .bind(*at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        conn.ended_cleanly();
        Ok(())
    }

    /// Agents on a call that a node other than `node` holds.
    pub async fn agents_busy_elsewhere(&self, node: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT agent FROM live_calls WHERE node <> $1 AND agent IS NOT NULL",
        )
        .bind(node.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Deletes live rows that cannot be read (logged by the caller).
    pub async fn forget_live(&self, ids: &[String]) -> Result<(), StoreError> {
        for id in ids {
            sqlx::query("DELETE FROM live_calls WHERE id = $1")
                .bind(id.clone())
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Replaces the stored registrations of `aor` with `rows` (none: removed).
    pub async fn put_registrations(
        &self,
        aor: &str,
        rows: &[RegistrationRow],
    ) -> Result<(), StoreError> {
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await?;
        sqlx::query("DELETE FROM registrations WHERE aor = $1")
            .bind(aor.to_string())
            .execute(&mut *tx)
            .await?;
        for r in rows {
            sqlx::query(
                "INSERT INTO registrations (aor, contact, transport, source, path, q, call_id, \
                 cseq, expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(r.aor.clone())
            .bind(r.contact.clone())
            .bind(r.transport.clone())
            .bind(r.source.clone())
            .bind(r.path.clone())
            .bind(r.q.clone())
            .bind(r.call_id.clone())
            .bind(r.cseq)
            .bind(r.expires_at_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        conn.ended_cleanly();
        Ok(())
    }

    /// Registrations that have not expired by `now_ms`.
    pub async fn registrations(&self, now_ms: i64) -> Result<Vec<RegistrationRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT aor, contact, transport, source, path, q, call_id, cseq, expires_at_ms \
             FROM registrations WHERE expires_at_ms > $1 ORDER BY aor, contact",
        )
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RegistrationRow {
                    aor: r.try_get(0)?,
                    contact: r.try_get(1)?,
                    transport: r.try_get(2)?,
                    source: r.try_get(3)?,
                    path: r.try_get(4)?,
                    q: r.try_get(5)?,
                    call_id: r.try_get(6)?,
                    cseq: r.try_get(7)?,
                    expires_at_ms: r.try_get(8)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
