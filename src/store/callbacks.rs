//! Callback attempts (漏接回拨) and each missed call's callback state.
//!
//! A missed call owed a callback is stored with `callback_pending = 1` and no
//! state. An attempt starting makes it `in_progress`; an attempt ending adds
//! one to `callback_attempts` and makes it `done` (answered), `given_up` (the
//! last allowed attempt failed) or `pending` again. An operator marking it
//! called back (`POST /api/v1/calls/{id}/callback`) makes it `done`.

use sqlx::Row;

use super::{Store, StoreError};
use crate::cdr::{CallbackAttempt, CallbackResult};

/// Where the callbacks stand, for `/api/v1/sla` and the metrics.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CallbackSummary {
    /// Missed calls of the last 7 days still owed a callback.
    pub pending: i64,
    /// How long the oldest of them has waited (seconds since its call ended).
    pub oldest_pending_age_s: Option<i64>,
    /// Missed calls of the last 7 days whose limit has passed (ended more than
    /// `callback_within_h` ago): how many were owed a callback…
    pub due: i64,
    /// …how many were called back within the limit…
    pub within_limit: i64,
    /// …and the share (`within_limit / due`; null with none due).
    pub within_limit_share: Option<f64>,
    pub within_h: u32,
}

impl Store {
    /// An attempt to call back missed call `missed` started.
    pub async fn callback_started(&self, missed: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE call_records SET callback_state = 'in_progress' \
             WHERE id = $1 AND callback_pending = 1",
        )
        .bind(missed.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An attempt ended: kept (once: a retried write adds nothing), and the
    /// missed call's state follows.
    pub async fn callback_attempt(
        &self,
        a: &CallbackAttempt,
        max_attempts: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let new = sqlx::query(
            "INSERT INTO callback_attempts (id, missed, agent, number, at_ms, result) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        )
        .bind(a.id.clone())
        .bind(a.missed.clone())
        .bind(a.agent.clone())
        .bind(a.number.clone())
        .bind(a.at_ms)
        .bind(a.result.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if new {
            let answered = i64::from(a.result == CallbackResult::Answered);
            sqlx::query(
                "UPDATE call_records SET \
                   callback_attempts = callback_attempts + 1, \
                   callback_state = CASE \
                     WHEN callback_state = 'done' OR $2 = 1 THEN 'done' \
                     WHEN callback_attempts + 1 >= $3 THEN 'given_up' \
                     ELSE 'pending' END, \
                   callback_pending = CASE \
                     WHEN callback_state = 'done' OR $2 = 1 OR callback_attempts + 1 >= $3 THEN 0 \
                     ELSE callback_pending END, \
                   callback_done_at_ms = CASE \
                     WHEN callback_done_at_ms IS NULL AND $2 = 1 THEN $4 \
                     ELSE callback_done_at_ms END \
                 WHERE id = $1",
            )
            .bind(a.missed.clone())
            .bind(answered)
            .bind(max_attempts)
            .bind(a.at_ms)
            .execute(&mut *tx)
            .await?;
            if answered == 1 {
                // The citizen is called back: every call of theirs still owed
                // one is settled too.
                sqlx::query(
                    "UPDATE call_records SET callback_pending = 0, callback_state = 'done', \
                       callback_done_at_ms = $2 \
                     WHERE callback_pending = 1 \
                       AND caller = (SELECT caller FROM call_records WHERE id = $1)",
                )
                .bind(a.missed.clone())
                .bind(a.at_ms)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The numbers owed a callback (the caller, the missed call's id), of
    /// calls that ended at or after `since_ms`, oldest first, at most `limit`.
    pub async fn pending_callbacks(
        &self,
        since_ms: i64,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT caller, id FROM call_records WHERE callback_pending = 1 AND ended_at_ms >= $1 \
             ORDER BY ended_at_ms, id LIMIT $2",
        )
        .bind(since_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// A call's callback standing: (pending, state, attempts); `None`: no
    /// such call.
    pub async fn callback_of(
        &self,
        id: &str,
    ) -> Result<Option<(bool, Option<String>, i64)>, StoreError> {
        let row = sqlx::query(
            "SELECT callback_pending, callback_state, callback_attempts FROM call_records \
             WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some((
                r.try_get::<i64, _>(0)? != 0,
                r.try_get(1)?,
                r.try_get(2)?,
            ))),
        }
    }

    /// The attempts made for missed call `missed`, oldest first.
    pub async fn callback_attempts(
        &self,
        missed: &str,
    ) -> Result<Vec<CallbackAttempt>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, missed, agent, number, at_ms, result FROM callback_attempts \
             WHERE missed = $1 ORDER BY at_ms, id",
        )
        .bind(missed.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let result: String = r.try_get(5)?;
                let result = CallbackResult::ALL
                    .into_iter()
                    .find(|x| x.as_str() == result)
                    .ok_or_else(|| StoreError::Corrupt(format!("callback result {result:?}")))?;
                Ok(CallbackAttempt {
                    id: r.try_get(0)?,
                    missed: r.try_get(1)?,
                    agent: r.try_get(2)?,
                    number: r.try_get(3)?,
                    at_ms: r.try_get(4)?,
                    result,
                })
            })
            .collect()
    }

    /// Where the callbacks stand at `now_ms`, for a limit of `within_h` hours.
    pub async fn callback_summary(
        &self,
        now_ms: i64,
        within_h: u32,
    ) -> Result<CallbackSummary, StoreError> {
        // Owed callbacks agents can still make (the core's list looks back 7 days).
        let since = now_ms - 7 * 86_400_000;
        let row = sqlx::query(
            "SELECT COUNT(*), MIN(ended_at_ms) FROM call_records \
             WHERE callback_pending = 1 AND ended_at_ms >= $1",
        )
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        let pending: i64 = row.try_get(0)?;
        let oldest: Option<i64> = row.try_get(1)?;
        let within_ms = i64::from(within_h) * 3_600_000;
        let due_before = now_ms - within_ms;
        let row = sqlx::query(
            "SELECT COUNT(*), \
               COALESCE(SUM(CASE WHEN callback_done_at_ms IS NOT NULL \
                 AND callback_done_at_ms - ended_at_ms <= $3 THEN 1 ELSE 0 END), 0) \
             FROM call_records \
             WHERE (callback_pending = 1 OR callback_state IS NOT NULL) \
               AND ended_at_ms >= $1 AND ended_at_ms < $2",
        )
        .bind(since)
        .bind(due_before)
        .bind(within_ms)
        .fetch_one(&self.pool)
        .await?;
        let due: i64 = row.try_get(0)?;
        let within_limit: i64 = row.try_get(1)?;
        Ok(CallbackSummary {
            pending,
            oldest_pending_age_s: oldest.map(|t| ((now_ms - t) / 1000).max(0)),
            due,
            within_limit,
            within_limit_share: (due > 0).then(|| within_limit as f64 / due as f64),
            within_h,
        })
    }
}
