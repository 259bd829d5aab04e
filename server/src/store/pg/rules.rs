//! [`RulesTx`] on PostgreSQL.

use super::PgTx;
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
}
