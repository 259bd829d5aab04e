//! Unlock sessions: start, answers and the attempt counter, one-time challenges, PUK release
//! and rotation, completion. Every step re-checks the session inside its own transaction, so a
//! replayed, expired or completed session can never slip between a check and a change.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{read_card, CardRecord, Profile, Store};
use crate::ServerError;

/// A live session (not completed, not expired).
#[derive(Debug)]
pub(crate) struct Session {
    pub profile: Profile,
    pub identity: String,
    pub verified: bool,
    /// The PUK generation this session told the client to rotate to, once `/puk` answered.
    pub puk_next_gen: Option<u32>,
}

pub(crate) enum StartOutcome {
    UnknownCard,
    Locked,
    NoQuestions,
    Started {
        card: CardRecord,
        questions: Vec<String>,
        attempts_left: u32,
    },
}

pub(crate) enum AnswerCheck {
    /// The card is gone (never happens with the operator functions of this crate).
    UnknownCard,
    Locked,
    /// The answer hashes, in question order.
    Hashes(Vec<String>),
}

pub(crate) enum AnswerOutcome {
    SessionGone,
    Verified,
    Wrong {
        attempts_left: u32,
    },
    /// The card is locked; `newly` when this attempt locked it (after `failed` attempts).
    Locked {
        newly: bool,
        failed: u32,
    },
}

pub(crate) enum ChallengeOutcome {
    SessionGone,
    NotVerified,
    TooMany,
    Used,
    Reserved,
}

pub(crate) enum PukOutcome {
    SessionGone,
    NotVerified,
    AlreadyReleased,
    /// `candidates`: the generations the card may hold, most recent first; `next`: the one to
    /// rotate to (now recorded as pending).
    Released {
        candidates: Vec<u32>,
        next: u32,
    },
}

pub(crate) enum CompleteOutcome {
    SessionGone,
    /// `puk_rotated: true` but this session released no PUK: nothing changed.
    NothingReleased,
    /// Closed; `committed` is the PUK generation the card now holds, if the client rotated.
    Closed {
        committed: Option<u32>,
        pending: Option<u32>,
    },
}

fn live_session(
    conn: &Connection,
    token_hash: &[u8; 32],
    now: i64,
) -> Result<Option<Session>, ServerError> {
    let row = conn
        .query_row(
            "SELECT profile, identity, verified, puk_next_gen FROM sessions
             WHERE token_hash = ?1 AND closed = 0 AND expires_ms > ?2",
            params![&token_hash[..], now],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, Option<u32>>(3)?,
                ))
            },
        )
        .optional()?;
    Ok(row.and_then(|(profile, identity, verified, puk_next_gen)| {
        Some(Session {
            profile: Profile::parse(&profile)?,
            identity,
            verified,
            puk_next_gen,
        })
    }))
}

impl Store {
    /// Opens a session for a card that exists, is not locked and has questions.
    pub(crate) fn start_session(
        &self,
        profile: Profile,
        identity: &str,
        token_hash: &[u8; 32],
        now: i64,
        ttl_ms: i64,
        max_attempts: u32,
    ) -> Result<StartOutcome, ServerError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM sessions WHERE expires_ms <= ?1", params![now])?;
        let Some(card) = read_card(&tx, profile, identity)? else {
            return Ok(StartOutcome::UnknownCard);
        };
        if card.locked {
            return Ok(StartOutcome::Locked);
        }
        let questions = {
            let mut stmt = tx.prepare(
                "SELECT question FROM questions WHERE profile = ?1 AND identity = ?2
                 ORDER BY position",
            )?;
            let rows = stmt.query_map(params![profile.as_str(), identity], |r| r.get(0))?;
            rows.collect::<Result<Vec<String>, _>>()?
        };
        if questions.is_empty() {
            return Ok(StartOutcome::NoQuestions);
        }
        tx.execute(
            "INSERT INTO sessions (token_hash, profile, identity, created_ms, expires_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                &token_hash[..],
                profile.as_str(),
                identity,
                now,
                now.saturating_add(ttl_ms)
            ],
        )?;
        tx.commit()?;
        let attempts_left = max_attempts.saturating_sub(card.failed_attempts);
        Ok(StartOutcome::Started {
            card,
            questions,
            attempts_left,
        })
    }

    /// The session, if it is live.
    pub(crate) fn session(
        &self,
        token_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<Session>, ServerError> {
        live_session(&self.lock(), token_hash, now)
    }

    /// The card's answer hashes, unless it is locked.
    pub(crate) fn answer_check(
        &self,
        profile: Profile,
        identity: &str,
    ) -> Result<AnswerCheck, ServerError> {
        let conn = self.lock();
        let Some(card) = read_card(&conn, profile, identity)? else {
            return Ok(AnswerCheck::UnknownCard);
        };
        if card.locked {
            return Ok(AnswerCheck::Locked);
        }
        let mut stmt = conn.prepare(
            "SELECT answer_hash FROM questions WHERE profile = ?1 AND identity = ?2
             ORDER BY position",
        )?;
        let rows = stmt.query_map(params![profile.as_str(), identity], |r| r.get(0))?;
        Ok(AnswerCheck::Hashes(rows.collect::<Result<_, _>>()?))
    }

    /// Records the verdict on a set of answers: success verifies the session and resets the
    /// counter; failure counts, and locks the card at `max_attempts`.
    pub(crate) fn record_answers(
        &self,
        token_hash: &[u8; 32],
        now: i64,
        correct: bool,
        max_attempts: u32,
    ) -> Result<AnswerOutcome, ServerError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(session) = live_session(&tx, token_hash, now)? else {
            return Ok(AnswerOutcome::SessionGone);
        };
        let Some(card) = read_card(&tx, session.profile, &session.identity)? else {
            return Ok(AnswerOutcome::SessionGone);
        };
        if card.locked {
            return Ok(AnswerOutcome::Locked {
                newly: false,
                failed: card.failed_attempts,
            });
        }
        let key = params![session.profile.as_str(), session.identity];
        let outcome = if correct {
            tx.execute(
                "UPDATE cards SET failed_attempts = 0 WHERE profile = ?1 AND identity = ?2",
                key,
            )?;
            tx.execute(
                "UPDATE sessions SET verified = 1 WHERE token_hash = ?1",
                params![&token_hash[..]],
            )?;
            AnswerOutcome::Verified
        } else {
            let failed = card.failed_attempts.saturating_add(1);
            let lock = failed >= max_attempts;
            tx.execute(
                "UPDATE cards SET failed_attempts = ?3, locked = ?4 WHERE profile = ?1 AND identity = ?2",
                params![session.profile.as_str(), session.identity, failed, lock],
            )?;
            if lock {
                AnswerOutcome::Locked {
                    newly: true,
                    failed,
                }
            } else {
                AnswerOutcome::Wrong {
                    attempts_left: max_attempts - failed,
                }
            }
        };
        tx.commit()?;
        Ok(outcome)
    }

    /// Reserves a card challenge for one answer, ever, and counts it against the session's
    /// allowance. `value` must be the challenge in a canonical form (lowercase hex).
    pub(crate) fn reserve_challenge(
        &self,
        token_hash: &[u8; 32],
        now: i64,
        kind: &str,
        value: &str,
        max_per_session: u32,
    ) -> Result<ChallengeOutcome, ServerError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(session) = live_session(&tx, token_hash, now)? else {
            return Ok(ChallengeOutcome::SessionGone);
        };
        if !session.verified {
            return Ok(ChallengeOutcome::NotVerified);
        }
        let answered: u32 = tx.query_row(
            "SELECT admin_answers FROM sessions WHERE token_hash = ?1",
            params![&token_hash[..]],
            |r| r.get(0),
        )?;
        if answered >= max_per_session {
            return Ok(ChallengeOutcome::TooMany);
        }
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO used_challenges (profile, identity, kind, value, used_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![session.profile.as_str(), session.identity, kind, value, now],
        )?;
        if inserted == 0 {
            return Ok(ChallengeOutcome::Used);
        }
        tx.execute(
            "UPDATE sessions SET admin_answers = admin_answers + 1 WHERE token_hash = ?1",
            params![&token_hash[..]],
        )?;
        tx.commit()?;
        Ok(ChallengeOutcome::Reserved)
    }

    /// Releases the card's PUK to a verified session, once: records the pending rotation to the
    /// next generation *before* the caller answers.
    pub(crate) fn release_puk(
        &self,
        token_hash: &[u8; 32],
        now: i64,
    ) -> Result<PukOutcome, ServerError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(session) = live_session(&tx, token_hash, now)? else {
            return Ok(PukOutcome::SessionGone);
        };
        if !session.verified {
            return Ok(PukOutcome::NotVerified);
        }
        if session.puk_next_gen.is_some() {
            return Ok(PukOutcome::AlreadyReleased);
        }
        let Some(card) = read_card(&tx, session.profile, &session.identity)? else {
            return Ok(PukOutcome::SessionGone);
        };
        // The card holds the PUK of a generation in puk_gen..=top (top > puk_gen only when
        // an earlier rotation was not confirmed by `complete`).
        let top = card
            .pending_puk_gen
            .unwrap_or(card.puk_gen)
            .max(card.puk_gen);
        let next = top
            .checked_add(1)
            .ok_or_else(|| ServerError::InvalidInput("PUK generation exhausted".into()))?;
        let denied: Vec<u32> = {
            let mut stmt =
                tx.prepare("SELECT gen FROM puk_denied WHERE profile = ?1 AND identity = ?2")?;
            let rows = stmt
                .query_map(params![session.profile.as_str(), session.identity], |r| {
                    r.get(0)
                })?;
            rows.collect::<Result<_, _>>()?
        };
        tx.execute(
            "UPDATE cards SET pending_puk_gen = ?3 WHERE profile = ?1 AND identity = ?2",
            params![session.profile.as_str(), session.identity, next],
        )?;
        tx.execute(
            "UPDATE sessions SET puk_next_gen = ?2 WHERE token_hash = ?1",
            params![&token_hash[..], next],
        )?;
        tx.commit()?;
        // Newest first (a missing `complete` most often follows a rotation that happened);
        // generations whose session reported "not rotated" go last.
        let (mut candidates, reported): (Vec<u32>, Vec<u32>) = (card.puk_gen..=top)
            .rev()
            .partition(|g| !denied.contains(g));
        candidates.extend(reported);
        Ok(PukOutcome::Released { candidates, next })
    }

    /// Closes the session. With `puk_rotated`, commits the generation this session released.
    /// Without, that generation stays possible (the client may not know whether a failed
    /// CHANGE REFERENCE DATA reached the card) but is offered last from then on.
    pub(crate) fn complete(
        &self,
        token_hash: &[u8; 32],
        now: i64,
        puk_rotated: bool,
    ) -> Result<CompleteOutcome, ServerError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(session) = live_session(&tx, token_hash, now)? else {
            return Ok(CompleteOutcome::SessionGone);
        };
        let mut committed = None;
        let mut pending = None;
        match session.puk_next_gen {
            None if puk_rotated => return Ok(CompleteOutcome::NothingReleased),
            None => {}
            Some(next) => {
                let Some(card) = read_card(&tx, session.profile, &session.identity)? else {
                    return Ok(CompleteOutcome::SessionGone);
                };
                let key = (session.profile.as_str(), session.identity.as_str());
                let puk_gen = if puk_rotated {
                    committed = Some(next);
                    card.puk_gen.max(next)
                } else {
                    card.puk_gen
                };
                pending = card.pending_puk_gen.filter(|&p| p > puk_gen);
                if !puk_rotated && next > puk_gen {
                    tx.execute(
                        "INSERT OR IGNORE INTO puk_denied (profile, identity, gen) VALUES (?1, ?2, ?3)",
                        params![key.0, key.1, next],
                    )?;
                }
                tx.execute(
                    "DELETE FROM puk_denied WHERE profile = ?1 AND identity = ?2 AND gen <= ?3",
                    params![key.0, key.1, puk_gen],
                )?;
                tx.execute(
                    "UPDATE cards SET puk_gen = ?3, pending_puk_gen = ?4
                     WHERE profile = ?1 AND identity = ?2",
                    params![key.0, key.1, puk_gen, pending],
                )?;
            }
        }
        tx.execute(
            "UPDATE sessions SET closed = 1 WHERE token_hash = ?1",
            params![&token_hash[..]],
        )?;
        tx.commit()?;
        Ok(CompleteOutcome::Closed { committed, pending })
    }
}
