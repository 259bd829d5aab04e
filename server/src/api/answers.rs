//! `answers`: the security answers of a session, checked against the card's Argon2id hashes;
//! the attempt counter, the lock, and (sessions without card proof) the back-off.

use super::*;

pub(super) fn answers(state: &AppState, req: AnswersRequest) -> Result<Reply, ServerError> {
    // The session, its card and the card's questions in one read (every row's MAC checked);
    // the transaction below reads the session and the card again under their locks.
    let Some(token) = Token::parse(req.session.expose()) else {
        return Ok(invalid_session(Endpoint::Answers));
    };
    let Some(view) = state.store.answer_view(&token.hash, now_ms())? else {
        return Ok(invalid_session(Endpoint::Answers));
    };
    let session = &view.session;
    let given = &req.answers;
    if let Err(wait) = card_rate(
        state,
        (session.profile, &session.identity),
        "answers",
        state.rates.answers_card,
    )? {
        return Ok(too_many("for this card", wait));
    }
    let card = Some((session.profile, session.identity.as_str()));
    let a =
        |outcome: &str, detail: &str| audit(state, card, Some(&token), "answers", outcome, detail);
    if session.profile == Profile::Piv && !session.proven {
        a(
            "card_not_verified",
            "refused: the card did not prove its presence",
        )?;
        return Ok(presence::not_verified());
    }
    if session.verified {
        let Some((record, _)) = &view.card else {
            a("invalid_session", "card no longer enrolled")?;
            return Ok(refusal(ErrorCode::InvalidSession, INVALID_SESSION));
        };
        a("verified", "session already verified")?;
        return Ok(ok(&AnswersReply {
            verified: true,
            user: User {
                name: record.user_name.clone(),
                email: record.user_email.clone(),
            },
        }));
    }
    let hashes = match logic::answer_check(
        view.card.as_ref().map(|(record, _)| record),
        &view.questions,
        (!session.proven).then(now_ms),
    )? {
        AnswerCheck::BackedOff { wait_ms } => {
            a("backed_off", "refused: wrong answers without card proof")?;
            return Ok(presence::backed_off(wait_ms));
        }
        AnswerCheck::UnknownCard => {
            a("invalid_session", "card no longer enrolled")?;
            return Ok(refusal(ErrorCode::InvalidSession, INVALID_SESSION));
        }
        AnswerCheck::Locked => {
            a("locked", "refused: card locked")?;
            return Ok(locked());
        }
        AnswerCheck::Hashes(hashes) => hashes,
    };
    if hashes.is_empty() {
        // Re-enrolled without questions while this session was open: an empty answer list
        // must never verify.
        a("no_questions", "refused: no questions enrolled")?;
        return Ok(refusal(
            ErrorCode::NoQuestions,
            "Online unlock is not available for this card: no security questions are defined. Use offline mode.",
        ));
    }
    if given.len() != hashes.len() {
        let message = format!(
            "Bad request: expected {} answers, got {}.",
            hashes.len(),
            given.len()
        );
        a("bad_request", &message)?;
        return Ok(refusal(ErrorCode::BadRequest, &message));
    }
    // Check every answer (no early exit), then decide.
    let correct = given.iter().zip(&hashes).fold(true, |all, (answer, hash)| {
        verify_answer(answer.expose(), hash) & all
    });
    let now = now_ms();
    state.store.transact(|tx| {
        let a = |tx: &mut dyn Tx, outcome: &str, detail: &str| {
            audit_in(tx, card, Some(&token), "answers", outcome, detail)
        };
        Ok(
            match logic::record_answers(
                tx,
                &token.hash,
                now,
                correct,
                state.max_attempts,
                state.blind,
            )? {
                AnswerOutcome::BackedOff { wait_ms } => {
                    a(
                        tx,
                        "backed_off",
                        "refused: wrong answers without card proof",
                    )?;
                    presence::backed_off(wait_ms)
                }
                AnswerOutcome::SessionGone => {
                    a(tx, "invalid_session", "session ended during the check")?;
                    refusal(ErrorCode::InvalidSession, INVALID_SESSION)
                }
                AnswerOutcome::Verified { name, email } => {
                    a(tx, "verified", "")?;
                    ok(&AnswersReply {
                        verified: true,
                        user: User { name, email },
                    })
                }
                AnswerOutcome::Wrong {
                    attempts_left,
                    backoff_ms,
                    alert,
                } => {
                    let detail = match backoff_ms {
                        Some(ms) => format!(
                            "{attempts_left} attempt(s) left, no card proof: backed off {} s",
                            ms / 1000
                        ),
                        None => format!("{attempts_left} attempt(s) left"),
                    };
                    a(tx, "wrong_answers", &detail)?;
                    if alert {
                        audit_in(
                            tx,
                            card,
                            Some(&token),
                            "alert",
                            "blind_wrong_answers",
                            "wrong answer sets without card proof reached the proven lock count",
                        )?;
                    }
                    refuse_with(ErrorBody {
                        attempts_left: Some(attempts_left),
                        retry_after: backoff_ms.map(presence::ms_to_secs),
                        ..ErrorBody::new(
                            ErrorCode::WrongAnswers,
                            format!(
                                "The answers are not correct. {attempts_left} attempt(s) left."
                            ),
                        )
                    })
                }
                AnswerOutcome::Locked { newly, failed } => {
                    if newly {
                        audit_in(
                            tx,
                            card,
                            Some(&token),
                            "lock",
                            "locked",
                            &format!("after {failed} wrong answer set(s)"),
                        )?;
                        a(tx, "wrong_answers", "0 attempts left")?;
                    } else {
                        a(tx, "locked", "refused: card locked")?;
                    }
                    locked()
                }
            },
        )
    })
}
