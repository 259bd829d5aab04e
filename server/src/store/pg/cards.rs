//! The statements that change a card row (outside the row-MAC primitives).

use super::PgTx;
use crate::store::tx::CardKey;
use crate::ServerError;

impl PgTx<'_> {
    /// [`crate::store::tx::Tx::insert_card`].
    pub(super) fn insert_card_pg(
        &mut self,
        (profile, identity): CardKey<'_>,
        algorithm: &str,
        name: &str,
        email: &str,
        now: i64,
    ) -> Result<bool, ServerError> {
        let n = self.execute(
            "INSERT INTO cards (profile, identity, algorithm, user_name, user_email, enrolled_ms)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[
                &profile.as_str(),
                &identity,
                &algorithm,
                &name,
                &email,
                &now,
            ],
        )?;
        Ok(n == 1)
    }

    /// [`crate::store::tx::Tx::update_card_user`].
    pub(super) fn update_card_user_pg(
        &mut self,
        (profile, identity): CardKey<'_>,
        algorithm: &str,
        name: &str,
        email: &str,
    ) -> Result<(), ServerError> {
        self.execute(
            "UPDATE cards SET algorithm = $3, user_name = $4, user_email = $5
             WHERE profile = $1 AND identity = $2",
            &[&profile.as_str(), &identity, &algorithm, &name, &email],
        )?;
        Ok(())
    }

    /// [`crate::store::tx::Tx::set_attempts`].
    pub(super) fn set_attempts_pg(
        &mut self,
        (profile, identity): CardKey<'_>,
        failed: u32,
        locked: bool,
    ) -> Result<(), ServerError> {
        self.execute(
            "UPDATE cards SET failed_attempts = $3, locked = $4,
                 backoff_until_ms = CASE WHEN $5 THEN 0 ELSE backoff_until_ms END
             WHERE profile = $1 AND identity = $2",
            &[
                &profile.as_str(),
                &identity,
                &i64::from(failed),
                &locked,
                &(failed == 0 && !locked),
            ],
        )?;
        Ok(())
    }

    /// [`crate::store::tx::Tx::set_puk_gens`].
    pub(super) fn set_puk_gens_pg(
        &mut self,
        (profile, identity): CardKey<'_>,
        puk_gen: u32,
        pending: Option<u32>,
    ) -> Result<(), ServerError> {
        self.execute(
            "UPDATE cards SET puk_gen = $3, pending_puk_gen = $4,
                 puk_read_out = CASE WHEN puk_gen = $3 THEN puk_read_out ELSE FALSE END
             WHERE profile = $1 AND identity = $2",
            &[
                &profile.as_str(),
                &identity,
                &i64::from(puk_gen),
                &pending.map(i64::from),
            ],
        )?;
        Ok(())
    }
}
