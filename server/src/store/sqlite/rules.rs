//! [`RulesTx`] on SQLite.

use rusqlite::{params, OptionalExtension};

use super::SqliteTx;
use crate::store::rules::RulesTx;
use crate::store::tx::CardKey;
use crate::ServerError;

impl RulesTx for SqliteTx<'_> {
    fn lock_card_bucket(
        &mut self,
        (profile, identity): CardKey<'_>,
        kind: &str,
        full: f64,
        now: i64,
    ) -> Result<(f64, i64), ServerError> {
        self.0.execute(
            "INSERT INTO card_buckets (profile, identity, kind, tokens, last_ms)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            params![profile.as_str(), identity, kind, full, now],
        )?;
        Ok(self.0.query_row(
            "SELECT tokens, last_ms FROM card_buckets
             WHERE profile = ?1 AND identity = ?2 AND kind = ?3",
            params![profile.as_str(), identity, kind],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    fn forget_full_card_buckets(&mut self, kind: &str, before: i64) -> Result<(), ServerError> {
        self.0.execute(
            "DELETE FROM card_buckets WHERE rowid IN
                 (SELECT rowid FROM card_buckets WHERE kind = ?1 AND last_ms < ?2 LIMIT 100)",
            params![kind, before],
        )?;
        Ok(())
    }

    fn bump_card_daily(
        &mut self,
        (profile, identity): CardKey<'_>,
        kind: &str,
        day: i64,
    ) -> Result<u32, ServerError> {
        let count: i64 = self.0.query_row(
            "INSERT INTO card_daily (profile, identity, kind, day, count)
             VALUES (?1, ?2, ?3, ?4, 1)
             ON CONFLICT (profile, identity, kind) DO UPDATE SET
                 count = CASE WHEN card_daily.day = excluded.day
                         THEN card_daily.count + 1 ELSE 1 END,
                 day = excluded.day
             RETURNING count",
            params![profile.as_str(), identity, kind, day],
            |r| r.get(0),
        )?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    fn card_diverged(
        &mut self,
        (profile, identity): CardKey<'_>,
    ) -> Result<Option<String>, ServerError> {
        Ok(self
            .0
            .query_row(
                "SELECT reason FROM card_diverged WHERE profile = ?1 AND identity = ?2",
                params![profile.as_str(), identity],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn take_released_puks(&mut self, token_hash: &[u8; 32]) -> Result<Option<String>, ServerError> {
        Ok(self
            .0
            .query_row(
                "DELETE FROM released_puks WHERE token_hash = ?1 RETURNING generations",
                params![&token_hash[..]],
                |r| r.get(0),
            )
            .optional()?)
    }
}
