//! What the unlock rules keep in the store, so every instance shares it: per-card token buckets
//! (the `start` and `answers` rate limits), per-card daily counters (the cap on admin answers),
//! the mark of a card whose secrets no longer match the store ("diverged"), and the PUK
//! generations a session released, in the order the client tries them. Both backends implement
//! [`RulesTx`] (`sqlite/rules.rs`, `pg/rules.rs`); every [`super::Tx`] is one.
//!
//! Locking: [`RulesTx::lock_card_bucket`] creates the bucket if needed and locks its row
//! (PostgreSQL `FOR UPDATE`; SQLite's `BEGIN IMMEDIATE` locks everything), so two instances
//! taking a token at once serialise and the second sees the first's count. Daily counters are
//! single upserts that return the new value.

use std::time::Duration;

use super::mac::{Kind, Val};
use super::stmt::{count, sql, text, Arg, Exec};
use super::tx::{CardKey, Tx};
use crate::{Rate, ServerError};
use Arg::{Bytes, Int, Real, Text as T};

/// The rules' primitive operations of one open transaction.
pub(crate) trait RulesTx: Exec {
    /// The card's bucket of `kind` as (tokens, last refill in ms), row-locked until the
    /// transaction ends; created with `full` tokens at `now` if it did not exist.
    fn lock_card_bucket(
        &mut self,
        (profile, identity): CardKey<'_>,
        kind: &str,
        full: f64,
        now: i64,
    ) -> Result<(f64, i64), ServerError> {
        let insert = sql!(
            "INSERT INTO card_buckets (profile, identity, kind, tokens, last_ms)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
        );
        let args = [
            T(profile.as_str()),
            T(identity),
            T(kind),
            Real(full),
            Int(now),
        ];
        self.exec(insert, &args)?;
        let read = sql!(
            pg: "SELECT tokens, last_ms FROM card_buckets
             WHERE profile = $1 AND identity = $2 AND kind = $3 FOR UPDATE",
            sqlite: "SELECT tokens, last_ms FROM card_buckets
             WHERE profile = ?1 AND identity = ?2 AND kind = ?3"
        );
        let key = [profile.as_str(), identity, kind].map(|v| (Val::text(v), None));
        let sql = read.text_for(self.dialect());
        let row = self.fetch(sql, &key, &[Kind::Real, Kind::Int])?.pop();
        match row.as_deref() {
            Some([Val::Int(bits), Val::Int(last_ms)]) => {
                Ok((f64::from_bits(*bits as u64), *last_ms))
            }
            _ => Err(ServerError::InvalidInput("card bucket vanished".into())),
        }
    }
    /// Forgets up to 100 buckets of `kind` untouched since `before` (they are full again, as
    /// good as absent): keeps the table from growing with every identity ever sent. Skips rows
    /// another transaction holds.
    fn forget_full_card_buckets(&mut self, kind: &str, before: i64) -> Result<(), ServerError> {
        // PostgreSQL: SKIP LOCKED, never wait for (or deadlock with) a transaction holding such
        // a row.
        let stmt = sql!(
            pg: "DELETE FROM card_buckets WHERE (profile, identity, kind) IN
                 (SELECT profile, identity, kind FROM card_buckets
                  WHERE kind = $1 AND last_ms < $2 LIMIT 100 FOR UPDATE SKIP LOCKED)",
            sqlite: "DELETE FROM card_buckets WHERE rowid IN
                 (SELECT rowid FROM card_buckets WHERE kind = ?1 AND last_ms < ?2 LIMIT 100)"
        );
        self.exec(stmt, &[T(kind), Int(before)]).map(drop)
    }
    /// Stores the bucket's tokens, refilled up to `now`.
    fn set_card_bucket(
        &mut self,
        (profile, identity): CardKey<'_>,
        kind: &str,
        tokens: f64,
        now: i64,
    ) -> Result<(), ServerError> {
        let stmt = sql!(
            "UPDATE card_buckets SET tokens = $4, last_ms = $5
             WHERE profile = $1 AND identity = $2 AND kind = $3"
        );
        let args = [
            T(profile.as_str()),
            T(identity),
            T(kind),
            Real(tokens),
            Int(now),
        ];
        self.exec(stmt, &args).map(drop)
    }
    /// Adds one to the card's counter of `kind` for `day` (a counter of an earlier day starts
    /// again from one) and returns the new value.
    fn bump_card_daily(
        &mut self,
        (profile, identity): CardKey<'_>,
        kind: &str,
        day: i64,
    ) -> Result<u32, ServerError> {
        let stmt = sql!(
            "INSERT INTO card_daily (profile, identity, kind, day, count)
             VALUES ($1, $2, $3, $4, 1)
             ON CONFLICT (profile, identity, kind) DO UPDATE SET
                 count = CASE WHEN card_daily.day = excluded.day
                         THEN card_daily.count + 1 ELSE 1 END,
                 day = excluded.day
             RETURNING count"
        );
        let args = [T(profile.as_str()), T(identity), T(kind), Int(day)];
        match self.query_one(stmt, &args, Kind::Int)? {
            None => Err(ServerError::InvalidInput("daily counter missing".into())),
            value => count(value, 0),
        }
    }
    /// Why the card's secrets diverged from the store, if they did.
    fn card_diverged(
        &mut self,
        (profile, identity): CardKey<'_>,
    ) -> Result<Option<String>, ServerError> {
        let stmt = sql!("SELECT reason FROM card_diverged WHERE profile = $1 AND identity = $2");
        let args = [T(profile.as_str()), T(identity)];
        Ok(text(self.query_one(stmt, &args, Kind::Text)?))
    }
    /// Marks the card diverged (the first reason stays).
    fn set_card_diverged(
        &mut self,
        (profile, identity): CardKey<'_>,
        reason: &str,
        now: i64,
    ) -> Result<(), ServerError> {
        let stmt = sql!(
            "INSERT INTO card_diverged (profile, identity, reason, since_ms)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
        );
        let args = [T(profile.as_str()), T(identity), T(reason), Int(now)];
        self.exec(stmt, &args).map(drop)
    }
    /// Clears the mark (re-enrollment).
    fn clear_card_diverged(&mut self, (profile, identity): CardKey<'_>) -> Result<(), ServerError> {
        let stmt = sql!("DELETE FROM card_diverged WHERE profile = $1 AND identity = $2");
        self.exec(stmt, &[T(profile.as_str()), T(identity)])
            .map(drop)
    }
    /// Records the PUK generations a session released, in the order given to the client
    /// (comma separated), and forgets records older than `forget_before`.
    fn set_released_puks(
        &mut self,
        token_hash: &[u8; 32],
        generations: &str,
        now: i64,
        forget_before: i64,
    ) -> Result<(), ServerError> {
        let forget = sql!("DELETE FROM released_puks WHERE created_ms < $1");
        self.exec(forget, &[Int(forget_before)])?;
        let stmt = sql!(
            "INSERT INTO released_puks (token_hash, generations, created_ms) VALUES ($1, $2, $3)
             ON CONFLICT (token_hash) DO UPDATE SET generations = excluded.generations"
        );
        let args = [Bytes(&token_hash[..]), T(generations), Int(now)];
        self.exec(stmt, &args).map(drop)
    }
    /// The generations the session released (and forgets them).
    fn take_released_puks(&mut self, token_hash: &[u8; 32]) -> Result<Option<String>, ServerError> {
        let stmt = sql!("DELETE FROM released_puks WHERE token_hash = $1 RETURNING generations");
        let value = self.query_one(stmt, &[Bytes(&token_hash[..])], Kind::Text)?;
        Ok(text(value))
    }
}

/// Takes one token from the card's shared bucket of `kind` (refilled at `rate`); `Ok(Err(wait))`
/// when it is empty. [`Rate::UNLIMITED`] touches nothing.
pub(crate) fn take_card_token(
    tx: &mut dyn Tx,
    card: CardKey<'_>,
    kind: &str,
    rate: Rate,
    now: i64,
) -> Result<Result<(), Duration>, ServerError> {
    if rate == Rate::UNLIMITED {
        return Ok(Ok(()));
    }
    let full = f64::from(rate.burst);
    let per_ms = f64::from(rate.per_minute) / 60_000.0;
    if per_ms > 0.0 {
        // Time an empty bucket takes to fill; a day at most.
        let refill_ms = (full / per_ms).min(DAY_MS as f64) as i64;
        tx.forget_full_card_buckets(kind, now.saturating_sub(refill_ms.saturating_add(1)))?;
    }
    let (tokens, last) = tx.lock_card_bucket(card, kind, full, now)?;
    // Another instance's clock may be ahead: never refill for negative time.
    let elapsed = now.saturating_sub(last).max(0) as f64;
    let mut tokens = (tokens + elapsed * per_ms).min(full);
    let taken = tokens >= 1.0;
    if taken {
        tokens -= 1.0;
    }
    tx.set_card_bucket(card, kind, tokens, now.max(last))?;
    if taken {
        return Ok(Ok(()));
    }
    let wait_secs = if per_ms > 0.0 {
        (1.0 - tokens) / per_ms / 1000.0
    } else {
        3600.0
    };
    Ok(Err(Duration::from_secs_f64(wait_secs.clamp(0.0, 86_400.0))))
}

/// Milliseconds in a UTC day.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// Parses a list of generations as [`RulesTx::set_released_puks`] stores it.
pub(crate) fn parse_generations(text: &str) -> Vec<u32> {
    text.split(',')
        .filter_map(|g| g.trim().parse().ok())
        .collect()
}

/// Formats generations for [`RulesTx::set_released_puks`].
pub(crate) fn format_generations(generations: &[u32]) -> String {
    generations
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
