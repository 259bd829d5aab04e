//! The unlock rules' pieces the endpoints share: per-card rate limits kept in the store, and the
//! refusal for a card whose secrets diverged from the store.

use cardunlock_protocol::ErrorCode;

use super::{refusal, AppState, Reply};
use crate::store::{now_ms, Profile};
use crate::{Rate, ServerError};

/// The refusal for a card marked diverged.
pub(super) fn diverged() -> Reply {
    refusal(
        ErrorCode::CardDiverged,
        "This card no longer holds the secrets the unlock server has on record, so online \
         unlock is stopped for it until it is enrolled again. Nothing was changed on the card. \
         Contact your administrator.",
    )
}

/// Takes a token from the card's shared bucket of `kind` (its own transaction, before the
/// endpoint's); `Err(wait)` when the card's budget is spent.
pub(super) fn card_rate(
    state: &AppState,
    card: (Profile, &str),
    kind: &str,
    rate: Rate,
) -> Result<Result<(), std::time::Duration>, ServerError> {
    if rate == Rate::UNLIMITED {
        return Ok(Ok(()));
    }
    let now = now_ms();
    state
        .store
        .transact(|tx| crate::store::rules::take_card_token(tx, card, kind, rate, now))
}
