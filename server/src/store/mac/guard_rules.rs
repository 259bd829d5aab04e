//! [`MacTx`] for the unlock rules' primitives ([`RulesTx`]).

use super::fused::Fields;
use super::guard::{card_f, token_f, Filter, MacTx};
use super::{Val, CARD_BUCKETS, CARD_DAILY, CARD_DIVERGED, RELEASED_PUKS};
use crate::store::rules::RulesTx;
use crate::store::tx::CardKey;
use crate::ServerError;

fn kind_f(card: CardKey<'_>, kind: &str) -> Filter {
    let mut f = card_f(card);
    f.push(("kind", Val::text(kind)));
    f
}

impl RulesTx for MacTx<'_> {
    fn lock_card_bucket(
        &mut self,
        card: CardKey<'_>,
        kind: &str,
        full: f64,
        now: i64,
    ) -> Result<(f64, i64), ServerError> {
        let filter = kind_f(card, kind);
        let existed = !self.check(&CARD_BUCKETS, &filter)?.is_empty();
        let bucket = self.inner.lock_card_bucket(card, kind, full, now)?;
        if !existed {
            self.stamp(&CARD_BUCKETS, &filter)?;
        }
        Ok(bucket)
    }

    fn forget_full_card_buckets(&mut self, kind: &str, before: i64) -> Result<(), ServerError> {
        self.inner.forget_full_card_buckets(kind, before)
    }

    fn set_card_bucket(
        &mut self,
        card: CardKey<'_>,
        kind: &str,
        tokens: f64,
        now: i64,
    ) -> Result<(), ServerError> {
        self.write(&CARD_BUCKETS, &kind_f(card, kind), |tx| {
            tx.set_card_bucket(card, kind, tokens, now)
        })
    }

    fn bump_card_daily(
        &mut self,
        card: CardKey<'_>,
        kind: &str,
        day: i64,
    ) -> Result<u32, ServerError> {
        self.write(&CARD_DAILY, &kind_f(card, kind), |tx| {
            tx.bump_card_daily(card, kind, day)
        })
    }

    fn card_diverged(&mut self, card: CardKey<'_>) -> Result<Option<String>, ServerError> {
        match self.check(&CARD_DIVERGED, &card_f(card))?.first() {
            Some(row) => Fields {
                table: &CARD_DIVERGED,
                values: &row.values,
            }
            .text("reason")
            .map(Some),
            None => Ok(None),
        }
    }

    fn set_card_diverged(
        &mut self,
        card: CardKey<'_>,
        reason: &str,
        now: i64,
    ) -> Result<(), ServerError> {
        self.write(&CARD_DIVERGED, &card_f(card), |tx| {
            tx.set_card_diverged(card, reason, now)
        })
    }

    fn clear_card_diverged(&mut self, card: CardKey<'_>) -> Result<(), ServerError> {
        self.inner.clear_card_diverged(card)
    }

    fn set_released_puks(
        &mut self,
        token_hash: &[u8; 32],
        generations: &str,
        now: i64,
        forget_before: i64,
    ) -> Result<(), ServerError> {
        self.write(&RELEASED_PUKS, &token_f(token_hash), |tx| {
            tx.set_released_puks(token_hash, generations, now, forget_before)
        })
    }

    fn take_released_puks(&mut self, token_hash: &[u8; 32]) -> Result<Option<String>, ServerError> {
        // Checked as the row goes (a failed check rolls the delete back): the candidates
        // handed back must be the server's.
        match self.take(&RELEASED_PUKS, &token_f(token_hash))?.first() {
            Some(row) => Fields {
                table: &RELEASED_PUKS,
                values: &row.values,
            }
            .text("generations")
            .map(Some),
            None => Ok(None),
        }
    }
}
