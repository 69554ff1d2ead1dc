//! The `sign_in_failures` table: failed wizard sign-ins per admin name and per client
//! address, and until when each must wait. Kept in the database rather than in memory so
//! that servers sharing one PostgreSQL database throttle a guesser together, and a restart
//! does not hand out fresh attempts. The policy (how many failures are free, how long each
//! further one waits) is the caller's: this module only counts.
//!
//! An attempt is counted as a failure before its password is checked, and given back if the
//! password was right. Counting afterwards would let a guesser send many attempts at once
//! that all find the counters as they were, each getting its guess.

use super::{Store, StoreError, now_ms, on_tx};

/// One counter an attempt counts against: its key, and how long, in milliseconds, its
/// `n`-th failure in a row makes the next attempt on it wait.
pub type Counter<'a> = (&'a str, &'a (dyn Fn(i64) -> i64 + Sync));

/// What counting an attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptCount {
    /// The attempt is counted against every counter: check the password.
    Counted(Vec<Counted>),
    /// A counter is waiting until then (unix ms): nothing was counted.
    Waiting {
        /// When the latest of the waits ends.
        until: i64,
    },
}

/// An attempt counted against one counter, as [`Store::give_back_sign_in`] needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    /// The counter's key.
    pub key: String,
    /// Its failures in a row, this attempt included.
    pub failures: i64,
    /// The wait it had before this attempt (over already: else the attempt would wait).
    pub wait_before: i64,
    /// The wait this attempt set.
    pub wait_set: i64,
}

impl Store {
    /// Counts an attempt against each of `counters` and sets the wait its count calls for,
    /// unless one of them is waiting, in which case nothing is counted. A counter that has
    /// not failed since `forget_before` starts again from one; such counters are deleted
    /// on the way.
    pub async fn count_sign_in_attempt(
        &self,
        counters: &[Counter<'_>],
        forget_before: i64,
    ) -> Result<AttemptCount, StoreError> {
        const PURGE: &str = "DELETE FROM sign_in_failures WHERE last_failure_at < $1";
        // The upsert locks the counter's row, so concurrent attempts on one key count one
        // after the other, each seeing the wait the one before set.
        const COUNT: &str = "INSERT INTO sign_in_failures (key, failures, last_failure_at, \
             wait_until) VALUES ($1, 1, $2, 0) ON CONFLICT (key) DO UPDATE SET \
             failures = CASE WHEN sign_in_failures.last_failure_at < $3 THEN 1 \
             ELSE sign_in_failures.failures + 1 END, last_failure_at = $2 \
             RETURNING failures, wait_until";
        const WAIT: &str = "UPDATE sign_in_failures SET wait_until = $1 WHERE key = $2";
        let now = now_ms();
        let mut tx = self.begin().await?;
        on_tx!(tx, conn => {
            sqlx::query(PURGE).bind(forget_before).execute(conn).await.map(|r| r.rows_affected())
        })?;
        let mut counts = Vec::with_capacity(counters.len());
        for (key, _) in counters {
            let count: (i64, i64) = on_tx!(tx, conn => {
                sqlx::query_as(COUNT).bind(*key).bind(now).bind(forget_before)
                    .fetch_one(conn).await
            })?;
            counts.push(count);
        }
        let until = counts.iter().map(|&(_, wait)| wait).max().unwrap_or(0);
        if until > now {
            tx.rollback().await?;
            return Ok(AttemptCount::Waiting { until });
        }
        let mut counted = Vec::with_capacity(counters.len());
        for ((key, wait_ms), (failures, wait_before)) in counters.iter().zip(counts) {
            // No wait is 0, not `now`: an attempt that started a moment earlier must not
            // find it in its future and wait for nothing.
            let wait_set = match wait_ms(failures) {
                0 => 0,
                wait => now.saturating_add(wait),
            };
            on_tx!(tx, conn => {
                sqlx::query(WAIT).bind(wait_set).bind(*key).execute(conn).await
                    .map(|r| r.rows_affected())
            })?;
            counted.push(Counted {
                key: (*key).to_owned(),
                failures,
                wait_before,
                wait_set,
            });
        }
        tx.commit().await?;
        Ok(AttemptCount::Counted(counted))
    }

    /// Records in the audit log that `actor` failed to sign in as `name`, with each
    /// counter's failures in a row.
    pub async fn audit_sign_in_failure(
        &self,
        actor: &str,
        name: &str,
        counted: &[Counted],
    ) -> Result<(), StoreError> {
        let failures: serde_json::Map<String, serde_json::Value> = counted
            .iter()
            .map(|c| (c.key.clone(), c.failures.into()))
            .collect();
        let mut tx = self.begin().await?;
        tx.audit(actor, "admin.sign_in_failed", name, &failures.into())
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Gives back an attempt whose password was right: the counter `clear` (the name's)
    /// is forgotten, and each of `give_back` loses the failure the attempt added, with the
    /// wait it had before unless another attempt has set one since.
    pub async fn give_back_sign_in(
        &self,
        clear: &str,
        give_back: &[&Counted],
    ) -> Result<(), StoreError> {
        const CLEAR: &str = "DELETE FROM sign_in_failures WHERE key = $1";
        const GIVE_BACK: &str = "UPDATE sign_in_failures SET failures = failures - 1, \
             wait_until = CASE WHEN wait_until = $1 THEN $2 ELSE wait_until END \
             WHERE key = $3 AND failures > 0";
        let mut tx = self.begin().await?;
        on_tx!(tx, conn => {
            sqlx::query(CLEAR).bind(clear).execute(conn).await.map(|r| r.rows_affected())
        })?;
        for counted in give_back {
            on_tx!(tx, conn => {
                sqlx::query(GIVE_BACK)
                    .bind(counted.wait_set)
                    .bind(counted.wait_before)
                    .bind(counted.key.as_str())
                    .execute(conn)
                    .await
                    .map(|r| r.rows_affected())
            })?;
        }
        tx.commit().await?;
        Ok(())
    }
}
