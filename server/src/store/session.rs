//! Unlock sessions: start, answers and the attempt counter, one-time challenges, PUK release
//! and rotation, completion. Written once against [`Tx`], for both backends. Every step
//! re-checks the session inside its own transaction (the session row locked, then the card
//! row), so a replayed, expired or completed session can never slip between a check and a
//! change, and two server instances cannot both count from the same old value.

use super::rules::{format_generations, parse_generations, DAY_MS};
use super::tx::{CardKey, Tx};
use super::Profile;
use crate::ServerError;

/// A live session (not completed, not expired).
#[derive(Debug)]
pub(crate) struct Session {
    pub profile: Profile,
    pub identity: String,
    pub verified: bool,
    /// The PUK generation this session told the client to rotate to, once `/puk` answered.
    pub puk_next_gen: Option<u32>,
    /// Admin answers given in this session.
    pub admin_answers: u32,
    /// `R1 || R2` (hex) of this session's last GIDS host cryptogram.
    pub gids_randoms: Option<String>,
    /// PIV: the nonce (hex) the card must sign to prove its presence.
    pub nonce: Option<String>,
    /// PIV: the card signed the nonce with the key recorded at enrollment.
    pub proven: bool,
}

impl Session {
    pub(crate) fn card(&self) -> CardKey<'_> {
        (self.profile, &self.identity)
    }
}

pub(crate) enum StartOutcome {
    UnknownCard,
    Locked,
    NoQuestions,
    Started {
        questions: Vec<String>,
        attempts_left: u32,
        /// ISO admin cards: the workstation ISO profile recorded at enrollment.
        iso_profile: Option<String>,
    },
}

pub(crate) enum AnswerCheck {
    /// The card is gone (never happens with the operator functions of this crate).
    UnknownCard,
    Locked,
    /// A session without card proof, during the back-off of earlier wrong answers.
    BackedOff {
        wait_ms: i64,
    },
    /// The answer hashes, in question order.
    Hashes(Vec<String>),
}

pub(crate) enum AnswerOutcome {
    SessionGone,
    /// Verified; the card holder's name and e-mail, for the reply.
    Verified {
        name: String,
        email: String,
    },
    Wrong {
        attempts_left: u32,
        /// Without card proof: answers are refused for this long.
        backoff_ms: Option<i64>,
        /// Without card proof: this set reached the count that locks a proven card (an alert).
        alert: bool,
    },
    /// Without card proof, during the back-off: nothing counted, nothing checked.
    BackedOff {
        wait_ms: i64,
    },
    /// The card is locked; `newly` when this attempt locked it (after `failed` attempts).
    Locked {
        newly: bool,
        failed: u32,
    },
}

pub(crate) enum ChallengeOutcome {
    NotVerified,
    TooMany,
    Used,
    /// Reserved; the session's remembered GIDS `R1 || R2`, if any.
    Reserved {
        gids_randoms: Option<String>,
    },
}

pub(crate) enum PukOutcome {
    SessionGone,
    NotVerified,
    AlreadyReleased,
    /// The card refused every PUK the server believed it held: nothing is released until it
    /// is enrolled again (the reason recorded).
    Diverged(String),
    /// The card may hold `candidates` PUKs, not fewer than its tries left: trying them all
    /// could block the PUK. Nothing changed.
    AtRisk {
        candidates: usize,
    },
    /// `candidates`: the generations the card may hold, most recent first; `next`: the one to
    /// rotate to (now recorded as pending).
    Released {
        candidates: Vec<u32>,
        next: u32,
    },
}

pub(crate) enum CompleteOutcome {
    SessionGone,
    /// `puk_rotated: true` but this session released no PUK, or the client says the card
    /// refused every candidate and yet rotated: nothing changed.
    NothingReleased,
    /// Closed; `committed` is the PUK generation the card now holds, if the client rotated;
    /// `diverged` names the generations the card refused when it refused every one released
    /// (the card is now marked diverged).
    Closed {
        committed: Option<u32>,
        pending: Option<u32>,
        diverged: Option<Vec<u32>>,
    },
}

/// Opens a session for a GIDS or ISO card that exists, is not locked and has questions (such a
/// card cannot prove its presence: its wrong answers count as [`Blind`]).
pub(crate) fn start_session(
    tx: &mut dyn Tx,
    card: CardKey<'_>,
    token_hash: &[u8; 32],
    now: i64,
    ttl_ms: i64,
    blind: Blind,
) -> Result<StartOutcome, ServerError> {
    tx.delete_expired_sessions(now)?;
    let Some((record, questions)) = super::joined::card_and_questions(tx, card)? else {
        return Ok(StartOutcome::UnknownCard);
    };
    if record.locked {
        return Ok(StartOutcome::Locked);
    }
    let questions: Vec<String> = questions.into_iter().map(|(q, _)| q).collect();
    if questions.is_empty() {
        return Ok(StartOutcome::NoQuestions);
    }
    tx.insert_session(token_hash, card, now, now.saturating_add(ttl_ms))?;
    let attempts_left = blind.max_attempts.saturating_sub(record.failed_attempts);
    let iso_profile = match card.0 {
        Profile::Iso => record.iso_profile.clone(),
        _ => None,
    };
    Ok(StartOutcome::Started {
        questions,
        attempts_left,
        iso_profile,
    })
}

/// Cross-checks the card's attempt counter and lock against the audit log: more wrong answer
/// sets audited since the last success or lift than the counter holds, or a lock audited since
/// the last lift on a card not locked, means the card row was put back to an older state (a
/// valid MAC of the past, which the row MAC alone cannot tell).
pub(crate) fn cross_check(
    record: &super::CardRecord,
    (wrong, locks): (u32, u32),
) -> Result<(), ServerError> {
    if wrong > record.failed_attempts || (locks > 0 && !record.locked) {
        return Err(ServerError::Tampered(format!(
            "table cards: a card's attempt counter ({}) or lock ({}) is behind its audit log \
             ({wrong} wrong answer set(s), {locks} lock(s)): the row was rolled back",
            record.failed_attempts, record.locked
        )));
    }
    Ok(())
}

/// How the audit row of a PUK release names the generation the card rotates to (the text the
/// generation cross-check reads back).
pub(crate) const RELEASED_TO: &str = "rotation pending to generation ";

/// Cross-checks the card's PUK generations against its newest PUK release in the audit log:
/// the card must know of the generation that release handed out (`puk_gen` or
/// `pending_puk_gen` at least as high). A card row put back to before a release would hand the
/// same PUKs out again.
fn generation_cross_check(
    tx: &mut dyn Tx,
    card: CardKey<'_>,
    record: &super::CardRecord,
) -> Result<(), ServerError> {
    let Some(detail) = tx.last_card_audit_detail(card, "puk", "released")? else {
        return Ok(());
    };
    let released = detail
        .split_once(RELEASED_TO)
        .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<u32>().ok());
    let top = record.pending_puk_gen.unwrap_or(0).max(record.puk_gen);
    match released {
        Some(g) if g > top => Err(ServerError::Tampered(format!(
            "table cards: a card's PUK generations (up to {top}) are behind its audit log \
             (generation {g} released): the row was rolled back"
        ))),
        _ => Ok(()),
    }
}

/// How wrong answers from sessions without card proof count: each starts a back-off of
/// `backoff_base_ms * 2^(n-1)`, and the `max_attempts`-th locks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Blind {
    pub max_attempts: u32,
    pub backoff_base_ms: i64,
}

impl Blind {
    /// The back-off after `failures` wrong sets (at least 1).
    fn backoff_ms(self, failures: u32) -> i64 {
        let doublings = failures.saturating_sub(1).min(30);
        self.backoff_base_ms.saturating_mul(1i64 << doublings)
    }
}

/// The card's answer hashes, unless it is locked or (a session without card proof,
/// `blind_now: Some(now)`) backed off; `card` and `questions` as [`super::joined::answer_view`]
/// read (and cross-checked) them.
pub(crate) fn answer_check(
    card: Option<&super::CardRecord>,
    questions: &[(String, String)],
    blind_now: Option<i64>,
) -> Result<AnswerCheck, ServerError> {
    let Some(record) = card else {
        return Ok(AnswerCheck::UnknownCard);
    };
    if record.locked {
        return Ok(AnswerCheck::Locked);
    }
    if let Some(now) = blind_now {
        if record.backoff_until_ms > now {
            return Ok(AnswerCheck::BackedOff {
                wait_ms: record.backoff_until_ms - now,
            });
        }
    }
    Ok(AnswerCheck::Hashes(
        questions.iter().map(|(_, h)| h.clone()).collect(),
    ))
}

/// Records the verdict on a set of answers: success verifies the session and resets the
/// counters; failure counts, and locks the card at `max_attempts` when the session's card
/// proved its presence, else backs off and locks at `blind.max_attempts`. The counters are
/// read under the card's row lock, so concurrent wrong answers (from any instance) each count
/// once.
pub(crate) fn record_answers(
    tx: &mut dyn Tx,
    token_hash: &[u8; 32],
    now: i64,
    correct: bool,
    max_attempts: u32,
    blind: Blind,
) -> Result<AnswerOutcome, ServerError> {
    let Some(session) = tx.live_session(token_hash, now)? else {
        return Ok(AnswerOutcome::SessionGone);
    };
    let Some((card, counts)) = tx.read_card_audited(session.card())? else {
        return Ok(AnswerOutcome::SessionGone);
    };
    cross_check(&card, counts)?;
    if card.locked {
        return Ok(AnswerOutcome::Locked {
            newly: false,
            failed: card.failed_attempts,
        });
    }
    if correct {
        tx.set_attempts(session.card(), 0, false)?;
        tx.set_session_verified(token_hash)?;
        return Ok(AnswerOutcome::Verified {
            name: card.user_name,
            email: card.user_email,
        });
    }
    if !session.proven {
        if card.backoff_until_ms > now {
            return Ok(AnswerOutcome::BackedOff {
                wait_ms: card.backoff_until_ms - now,
            });
        }
        let failures = card.failed_attempts.saturating_add(1);
        if failures >= blind.max_attempts {
            tx.set_attempts(session.card(), failures, true)?;
            return Ok(AnswerOutcome::Locked {
                newly: true,
                failed: failures,
            });
        }
        let backoff = blind.backoff_ms(failures);
        tx.set_attempts(session.card(), failures, false)?;
        // No back-off configured: none recorded (another instance's clock may lag by a ms).
        let until = if backoff > 0 {
            now.saturating_add(backoff)
        } else {
            0
        };
        tx.set_backoff(session.card(), until)?;
        return Ok(AnswerOutcome::Wrong {
            attempts_left: blind.max_attempts - failures,
            backoff_ms: (backoff > 0).then_some(backoff),
            alert: failures == max_attempts,
        });
    }
    let failed = card.failed_attempts.saturating_add(1);
    let lock = failed >= max_attempts;
    tx.set_attempts(session.card(), failed, lock)?;
    Ok(if lock {
        AnswerOutcome::Locked {
            newly: true,
            failed,
        }
    } else {
        AnswerOutcome::Wrong {
            attempts_left: max_attempts - failed,
            backoff_ms: None,
            alert: false,
        }
    })
}

/// Reserves a card challenge for one answer, ever, and (when `counts`) counts it against the
/// session's allowance. `value` must be the challenge in a canonical form (lowercase hex).
/// The check of a GIDS card's cryptogram does not count: it gives nothing the card did not
/// prove, and it needs the session's one host cryptogram.
///
/// `session` is the live session as this transaction read it ([`Tx::live_session`], row
/// locked): the caller reads it once, first, and passes it here.
pub(crate) fn reserve_challenge(
    tx: &mut dyn Tx,
    (token_hash, session): (&[u8; 32], &Session),
    now: i64,
    (kind, value, counts): (&str, &str, bool),
    max_per_session: u32,
) -> Result<ChallengeOutcome, ServerError> {
    if !session.verified {
        return Ok(ChallengeOutcome::NotVerified);
    }
    if counts && session.admin_answers >= max_per_session {
        return Ok(ChallengeOutcome::TooMany);
    }
    if !tx.use_challenge(session.card(), kind, value, now)? {
        return Ok(ChallengeOutcome::Used);
    }
    if counts {
        tx.count_admin_answer(token_hash)?;
    }
    Ok(ChallengeOutcome::Reserved {
        gids_randoms: session.gids_randoms.clone(),
    })
}

/// Releases the card's PUK to a verified session, once: records the pending rotation to the
/// next generation in the same transaction, before the caller answers. Refuses (changing
/// nothing) when the candidates would need every one of the card's `tries` PUK tries: the
/// pending generations never outgrow what a client can try while keeping the last try. When
/// the client could not read the card's PUK tries (`tries_known` false), the card gets at most
/// one unconfirmed candidate besides the confirmed one. A card marked diverged gets nothing.
pub(crate) fn release_puk(
    tx: &mut dyn Tx,
    token_hash: &[u8; 32],
    now: i64,
    (tries, tries_known): (u32, bool),
) -> Result<PukOutcome, ServerError> {
    let Some(session) = tx.live_session(token_hash, now)? else {
        return Ok(PukOutcome::SessionGone);
    };
    if !session.verified {
        return Ok(PukOutcome::NotVerified);
    }
    if session.puk_next_gen.is_some() {
        return Ok(PukOutcome::AlreadyReleased);
    }
    let Some(card) = tx.read_card(session.card())? else {
        return Ok(PukOutcome::SessionGone);
    };
    generation_cross_check(tx, session.card(), &card)?;
    if let Some(reason) = tx.card_diverged(session.card())? {
        return Ok(PukOutcome::Diverged(reason));
    }
    // The card holds the PUK of a generation in puk_gen..=top (top > puk_gen only when
    // an earlier rotation was not confirmed by `complete`).
    let top = card
        .pending_puk_gen
        .unwrap_or(card.puk_gen)
        .max(card.puk_gen);
    let next = top
        .checked_add(1)
        .ok_or_else(|| ServerError::InvalidInput("PUK generation exhausted".into()))?;
    let count = usize::try_from(top - card.puk_gen).map_or(usize::MAX, |n| n.saturating_add(1));
    let most = if tries_known { tries } else { tries.min(3) };
    if u32::try_from(count).map_or(true, |n| n >= most) {
        return Ok(PukOutcome::AtRisk { candidates: count });
    }
    let denied = tx.puk_denied(session.card())?;
    tx.set_puk_gens(session.card(), card.puk_gen, Some(next))?;
    tx.set_session_puk_next(token_hash, next)?;
    // Newest first (a missing `complete` most often follows a rotation that happened);
    // generations whose session reported "not rotated" go last.
    let (mut candidates, reported): (Vec<u32>, Vec<u32>) = (card.puk_gen..=top)
        .rev()
        .partition(|g| !denied.contains(g));
    candidates.extend(reported);
    tx.set_released_puks(
        token_hash,
        &format_generations(&candidates),
        now,
        now.saturating_sub(DAY_MS),
    )?;
    Ok(PukOutcome::Released { candidates, next })
}

/// Closes the session. With `puk_rotated`, commits the generation this session released.
/// Without, that generation stays possible (the client may not know whether a failed
/// CHANGE REFERENCE DATA reached the card) but is offered last from then on.
///
/// `rejected`: how many of the released candidates, in the order given, the card refused as a
/// wrong PUK. All of them: the card holds none of the generations the server has on record
/// (a workstation reported a rotation it did not make, or the card was changed elsewhere);
/// the card is marked diverged and online unlock stops for it until re-enrollment.
///
/// `session` is the live session as this transaction read it ([`Tx::live_session`], row
/// locked): the caller reads it once, first, and passes it here.
pub(crate) fn complete(
    tx: &mut dyn Tx,
    (token_hash, session): (&[u8; 32], &Session),
    now: i64,
    puk_rotated: bool,
    rejected: u32,
) -> Result<CompleteOutcome, ServerError> {
    let mut committed = None;
    let mut pending = None;
    let mut diverged = None;
    let released = tx
        .take_released_puks(token_hash)?
        .map(|g| parse_generations(&g))
        .unwrap_or_default();
    let all_refused =
        !released.is_empty() && usize::try_from(rejected).is_ok_and(|r| r >= released.len());
    match session.puk_next_gen {
        None if puk_rotated => return Ok(CompleteOutcome::NothingReleased),
        None => {}
        Some(_) if puk_rotated && all_refused => return Ok(CompleteOutcome::NothingReleased),
        Some(_) if all_refused => {
            let reason = format!("the card refused every PUK on record (generations {released:?})");
            tx.set_card_diverged(session.card(), &reason, now)?;
            diverged = Some(released);
        }
        Some(next) => {
            let Some(card) = tx.read_card(session.card())? else {
                return Ok(CompleteOutcome::SessionGone);
            };
            let puk_gen = if puk_rotated {
                committed = Some(next);
                card.puk_gen.max(next)
            } else {
                card.puk_gen
            };
            pending = card.pending_puk_gen.filter(|&p| p > puk_gen);
            if !puk_rotated && next > puk_gen {
                tx.deny_puk(session.card(), next)?;
            }
            tx.clear_denied_upto(session.card(), puk_gen)?;
            tx.set_puk_gens(session.card(), puk_gen, pending)?;
        }
    }
    tx.close_session(token_hash)?;
    Ok(CompleteOutcome::Closed {
        committed,
        pending,
        diverged,
    })
}

#[cfg(test)]
mod tests {
    use super::Blind;

    #[test]
    fn the_back_off_doubles_and_never_overflows() {
        let blind = Blind {
            max_attempts: 10,
            backoff_base_ms: 60_000,
        };
        let waits: Vec<i64> = (1..=4).map(|n| blind.backoff_ms(n)).collect();
        assert_eq!(waits, [60_000, 120_000, 240_000, 480_000]);
        // Nine back-offs before the tenth set locks: about 8.5 hours.
        let total: i64 = (1..10).map(|n| blind.backoff_ms(n)).sum();
        assert_eq!(total, 60_000 * 511);
        assert_eq!(blind.backoff_ms(0), 60_000);
        assert!(blind.backoff_ms(u32::MAX) > 0);
        let huge = Blind {
            max_attempts: 10,
            backoff_base_ms: i64::MAX,
        };
        assert_eq!(huge.backoff_ms(5), i64::MAX);
    }
}
