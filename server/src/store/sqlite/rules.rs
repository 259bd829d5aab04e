//! [`RulesTx`] on SQLite.

use rusqlite::params;

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
}
