//! [`RulesTx`] on PostgreSQL.

use super::{small, PgTx};
use crate::store::rules::RulesTx;
use crate::store::tx::CardKey;
use crate::ServerError;

impl RulesTx for PgTx<'_> {
    fn lock_card_bucket(
        &mut self,
        (profile, identity): CardKey<'_>,
        kind: &str,
        full: f64,
        now: i64,
    ) -> Result<(f64, i64), ServerError> {
        let profile = profile.as_str();
        self.execute(
            "INSERT INTO card_buckets (profile, identity, kind, tokens, last_ms)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            &[&profile, &identity, &kind, &full, &now],
        )?;
        let rows = self.query(
            "SELECT tokens, last_ms FROM card_buckets
             WHERE profile = $1 AND identity = $2 AND kind = $3 FOR UPDATE",
            &[&profile, &identity, &kind],
        )?;
        let row = rows
            .first()
            .ok_or_else(|| ServerError::InvalidInput("card bucket vanished".into()))?;
        Ok((row.get(0), row.get(1)))
    }

    fn forget_full_card_buckets(&mut self, kind: &str, before: i64) -> Result<(), ServerError> {
        // SKIP LOCKED: never wait for (or deadlock with) a transaction holding such a row.
        self.execute(
            "DELETE FROM card_buckets WHERE (profile, identity, kind) IN
                 (SELECT profile, identity, kind FROM card_buckets
                  WHERE kind = $1 AND last_ms < $2 LIMIT 100 FOR UPDATE SKIP LOCKED)",
            &[&kind, &before],
        )?;
        Ok(())
    }

    fn bump_card_daily(
        &mut self,
        (profile, identity): CardKey<'_>,
        kind: &str,
        day: i64,
    ) -> Result<u32, ServerError> {
        let rows = self.query(
            "INSERT INTO card_daily (profile, identity, kind, day, count)
             VALUES ($1, $2, $3, $4, 1)
             ON CONFLICT (profile, identity, kind) DO UPDATE SET
                 count = CASE WHEN card_daily.day = excluded.day
                         THEN card_daily.count + 1 ELSE 1 END,
                 day = excluded.day
             RETURNING count",
            &[&profile.as_str(), &identity, &kind, &day],
        )?;
        let count: i64 = rows
            .first()
            .map(|r| r.get(0))
            .ok_or_else(|| ServerError::InvalidInput("daily counter missing".into()))?;
        small(count)
    }

    fn card_diverged(
        &mut self,
        (profile, identity): CardKey<'_>,
    ) -> Result<Option<String>, ServerError> {
        Ok(self
            .query_opt(
                "SELECT reason FROM card_diverged WHERE profile = $1 AND identity = $2",
                &[&profile.as_str(), &identity],
            )?
            .map(|r| r.get(0)))
    }

    fn take_released_puks(&mut self, token_hash: &[u8; 32]) -> Result<Option<String>, ServerError> {
        Ok(self
            .query_opt(
                "DELETE FROM released_puks WHERE token_hash = $1 RETURNING generations",
                &[&&token_hash[..]],
            )?
            .map(|r| r.get(0)))
    }
}
