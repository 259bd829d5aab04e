//! `/v1/unlock/admin`: the admin key's answers for GIDS and ISO cards, each card challenge
//! answered once, ever.

use cardunlock_core::crypto::{AdminKey, Algorithm};
use cardunlock_protocol::{AdminAnswer, AdminBody, AdminRequest, ErrorBody, ErrorCode, Secret};
use rand::RngCore;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{
    audit_in, diverged, invalid_session, ok, refusal, refuse_with, AppState, Endpoint, Reply,
    Token, INVALID_SESSION, MAX_ADMIN_ANSWERS_PER_SESSION, NOT_VERIFIED,
};
use crate::store::joined;
use crate::store::rules::DAY_MS;
use crate::store::{algorithm_name, now_ms, session as logic, ChallengeOutcome, Profile, Tx};
use crate::{kdf, ServerError};

/// What to compute once the challenge is reserved.
enum AdminOp {
    Encrypt(Zeroizing<Vec<u8>>),
    /// `data` = R2 || R1 (Z1 is added), `randoms` = R1 || R2, remembered for the card's answer.
    GidsCryptogram {
        data: Zeroizing<Vec<u8>>,
        randoms: Zeroizing<Vec<u8>>,
    },
    GidsCardCryptogram(Zeroizing<Vec<u8>>),
}

/// The outcome of the computation.
enum Computed {
    Answer(Zeroizing<Vec<u8>>),
    /// The card's cryptogram does not hold this session's R1 || R2.
    CardNotAuthenticated,
    /// No `gids_cryptogram` in this session yet.
    NoHostCryptogram,
}

/// Why an admin request does not fit the card (a `bad_request`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Misfit {
    /// PIV cards unlock with the PUK.
    Piv,
    /// GIDS cards get no raw block encryption.
    GidsEncrypt,
    /// GIDS cryptograms on a card that is not GIDS with a 3DES key.
    NotGids3Des,
    /// Not the card's admin-key algorithm.
    Algorithm(Algorithm),
    /// A block that is not one block of the card's algorithm (its length in bytes).
    BlockLength(usize),
}

impl core::fmt::Display for Misfit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Piv => {
                f.write_str("admin answers are for GIDS and ISO cards; PIV unlocks with the PUK")
            }
            Self::GidsEncrypt => f.write_str(
                "GIDS cards authenticate with gids_cryptogram; raw encryption is for ISO cards",
            ),
            Self::NotGids3Des => {
                f.write_str("GIDS cryptograms are for GIDS cards with a 3DES admin key")
            }
            Self::Algorithm(a) => write!(f, "the card's admin key is {}", algorithm_name(*a)),
            Self::BlockLength(len) => write!(f, "block must be {} hex digits", 2 * len),
        }
    }
}

/// Checks an admin request against the card; returns the challenge kind and canonical value to
/// reserve, and the operation.
fn admin_op(
    profile: Profile,
    card_alg: Algorithm,
    req: &AdminRequest,
) -> Result<(&'static str, String, AdminOp), Misfit> {
    if profile == Profile::Piv {
        return Err(Misfit::Piv);
    }
    // GIDS authenticates mutually: a raw block encryption would let a client rebuild the CBC
    // cryptogram from ECB calls around the once-per-challenge rule.
    if profile == Profile::Gids && matches!(req, AdminRequest::Encrypt { .. }) {
        return Err(Misfit::GidsEncrypt);
    }
    let gids_3des = || {
        if profile != Profile::Gids || card_alg != Algorithm::TripleDes {
            Err(Misfit::NotGids3Des)
        } else {
            Ok(())
        }
    };
    match req {
        AdminRequest::Encrypt { algorithm, block } => {
            let alg = algorithm.algorithm();
            if alg != card_alg {
                return Err(Misfit::Algorithm(card_alg));
            }
            if block.as_bytes().len() != alg.block_len() {
                return Err(Misfit::BlockLength(alg.block_len()));
            }
            let value = block.to_hex();
            Ok((
                "encrypt",
                value,
                AdminOp::Encrypt(Zeroizing::new(block.as_bytes().to_vec())),
            ))
        }
        AdminRequest::GidsCryptogram { r1, r2 } => {
            gids_3des()?;
            let (r1, r2) = (r1.as_bytes(), r2.as_bytes());
            let mut data = Zeroizing::new(Vec::with_capacity(40));
            data.extend_from_slice(r2);
            data.extend_from_slice(r1);
            let mut randoms = Zeroizing::new(Vec::with_capacity(32));
            randoms.extend_from_slice(r1);
            randoms.extend_from_slice(r2);
            Ok((
                "gids_r2",
                hex::encode(r2),
                AdminOp::GidsCryptogram { data, randoms },
            ))
        }
        AdminRequest::GidsCardCryptogram { cryptogram } => {
            gids_3des()?;
            Ok((
                "gids_card_cryptogram",
                cryptogram.to_hex(),
                AdminOp::GidsCardCryptogram(Zeroizing::new(cryptogram.as_bytes().to_vec())),
            ))
        }
    }
}

pub(super) fn admin(state: &AppState, req: AdminBody) -> Result<Reply, ServerError> {
    let Some(token) = Token::parse(req.session.expose()) else {
        return Ok(invalid_session(Endpoint::Admin));
    };
    let now = now_ms();
    let cap = state.admin_answers_per_day;
    // One transaction reads the session (row-locked) and the card once, reserves the
    // challenge, computes the answer and writes its audit row: an answer is never given
    // without its challenge recorded as used, nor recorded without its audit row.
    state.store.transact(|tx| {
        let Some(session) = tx.live_session(&token.hash, now)? else {
            return Ok(invalid_session(Endpoint::Admin));
        };
        let card_key = (session.profile, session.identity.as_str());
        let card_ref = Some(card_key);
        let a = |tx: &mut dyn Tx, outcome: &str, detail: &str| {
            audit_in(tx, card_ref, Some(&token), "admin", outcome, detail)
        };
        if !session.verified {
            a(tx, "not_verified", "")?;
            return Ok(refusal(ErrorCode::NotVerified, NOT_VERIFIED));
        }
        // The card row (locked) with its diverged mark, in one read.
        let Some((card, diverged_because)) = joined::card_and_diverged(tx, card_key)? else {
            a(tx, "invalid_session", "card no longer enrolled")?;
            return Ok(refusal(ErrorCode::InvalidSession, INVALID_SESSION));
        };
        let (kind, value, op) = match admin_op(session.profile, card.algorithm, &req.request) {
            Ok(parsed) => parsed,
            Err(why) => {
                let message = format!("Bad request: {why}.");
                a(tx, "bad_request", &message)?;
                return Ok(refusal(ErrorCode::BadRequest, &message));
            }
        };
        let identity = hex::decode(&session.identity)
            .map_err(|_| ServerError::InvalidInput("stored identity".into()))?;
        let key = kdf::admin_key(
            &state.master,
            session.profile.as_str(),
            &identity,
            card.algorithm,
            card.key_gen,
        );
        // Only what hands out the admin key's work counts; the check of a GIDS card's own
        // cryptogram does not.
        let counts = !matches!(op, AdminOp::GidsCardCryptogram(_));
        if let Some(reason) = &diverged_because {
            a(tx, "card_diverged", &format!("refused: {reason}"))?;
            return Ok(diverged());
        }
        let gids_randoms = match logic::reserve_challenge(
            tx,
            (&token.hash, &session),
            now,
            (kind, &value, counts),
            MAX_ADMIN_ANSWERS_PER_SESSION,
        )? {
            ChallengeOutcome::NotVerified => {
                a(tx, "not_verified", "")?;
                return Ok(refusal(ErrorCode::NotVerified, NOT_VERIFIED));
            }
            ChallengeOutcome::TooMany => {
                a(
                    tx,
                    "too_many_requests",
                    &format!("more than {MAX_ADMIN_ANSWERS_PER_SESSION} admin answers"),
                )?;
                return Ok(refusal(
                    ErrorCode::TooManyRequests,
                    "Too many admin answers in this session. Start a new session.",
                ));
            }
            ChallengeOutcome::Used => {
                a(tx, "challenge_used", kind)?;
                return Ok(refusal(
                    ErrorCode::ChallengeUsed,
                    "This challenge was already answered. Ask the card for a new one.",
                ));
            }
            ChallengeOutcome::Reserved { gids_randoms } => gids_randoms,
        };
        if counts && cap != u32::MAX {
            let today = tx.bump_card_daily(card_key, "admin_answers", now.div_euclid(DAY_MS))?;
            if today > cap {
                a(
                    tx,
                    "alert",
                    &format!("refused: daily cap of {cap} admin answers for this card reached"),
                )?;
                let day_left = DAY_MS - now.rem_euclid(DAY_MS);
                return Ok(refuse_with(ErrorBody {
                    retry_after: Some(u64::try_from(day_left / 1000 + 1).unwrap_or(86_400)),
                    ..ErrorBody::new(
                        ErrorCode::CapReached,
                        format!(
                            "This card was given its {cap} online unlocks for today. Try again tomorrow or contact your administrator."
                        ),
                    )
                }));
            }
        }
        let answer = match compute(&key, &op, gids_randoms.as_deref()) {
            Ok(Computed::Answer(answer)) => answer,
            Ok(Computed::CardNotAuthenticated) => {
                tx.set_session_gids(&token.hash, None)?;
                a(tx, "card_not_authenticated", "card cryptogram does not match R1 || R2")?;
                // The card holds another admin key than the one on record (changed elsewhere,
                // or another card): stop online unlock for it until re-enrollment.
                let reason = format!(
                    "the card's cryptogram did not prove admin key generation {}",
                    card.key_gen
                );
                tx.set_card_diverged(card_key, &reason, now)?;
                audit_in(tx, card_ref, Some(&token), "diverged", "alert", &reason)?;
                return Ok(refusal(
                    ErrorCode::CardNotAuthenticated,
                    "The card's cryptogram does not prove it holds the admin key: this is not the enrolled card. Nothing was changed.",
                ));
            }
            Ok(Computed::NoHostCryptogram) => {
                let why = "Bad request: ask for gids_cryptogram before gids_card_cryptogram.";
                a(tx, "bad_request", why)?;
                return Ok(refusal(ErrorCode::BadRequest, why));
            }
            Err(why) => {
                a(tx, "bad_request", why)?;
                return Ok(refusal(ErrorCode::BadRequest, why));
            }
        };
        match &op {
            AdminOp::GidsCryptogram { randoms, .. } => {
                let randoms = Zeroizing::new(hex::encode(&randoms[..]));
                tx.set_session_gids(&token.hash, Some(&randoms))?;
            }
            AdminOp::GidsCardCryptogram(_) => tx.set_session_gids(&token.hash, None)?,
            AdminOp::Encrypt(_) => {}
        }
        a(
            tx,
            "answered",
            &format!(
                "{kind}, {} key generation {}",
                algorithm_name(card.algorithm),
                card.key_gen
            ),
        )?;
        Ok(ok(&AdminAnswer {
            answer: Secret::new(hex::encode(&*answer)),
        }))
    })
}

/// The answer (the transaction calling it may run twice: `op` is only read). For the card's
/// GIDS cryptogram the server decrypts and checks it against the session's `R1 || R2`
/// (`randoms`, hex) in constant time, and answers only `R1 || R2 || 00.. 80`: what the client's
/// own check needs, never the card's Z2 (so it is no decryption service).
fn compute(key: &AdminKey, op: &AdminOp, randoms: Option<&str>) -> Result<Computed, &'static str> {
    let failed = |_| "Bad request: the data does not fit the card's admin key.";
    match op {
        AdminOp::Encrypt(block) => {
            let mut block = block.clone();
            key.encrypt_ecb(&mut block).map_err(failed)?;
            Ok(Computed::Answer(block))
        }
        AdminOp::GidsCryptogram { data, .. } => {
            let mut data = data.clone();
            let mut z1 = Zeroizing::new([0u8; 8]);
            rand::rngs::OsRng
                .try_fill_bytes(&mut z1[..7])
                .map_err(|_| "The server's random generator failed.")?;
            z1[7] = 0x80;
            data.extend_from_slice(&z1[..]);
            key.cbc_encrypt(&[0; 8], &mut data).map_err(failed)?;
            Ok(Computed::Answer(data))
        }
        AdminOp::GidsCardCryptogram(data) => {
            let Some(randoms) = randoms.and_then(|r| hex::decode(r).ok()) else {
                return Ok(Computed::NoHostCryptogram);
            };
            let randoms = Zeroizing::new(randoms);
            let mut plain = data.clone();
            key.cbc_decrypt(&[0; 8], &mut plain).map_err(failed)?;
            let matches = plain.len() == 40
                && randoms.len() == 32
                && bool::from(plain[..32].ct_eq(&randoms[..]) & plain[39].ct_eq(&0x80));
            if !matches {
                return Ok(Computed::CardNotAuthenticated);
            }
            let mut answer = Zeroizing::new(vec![0u8; 40]);
            answer[..32].copy_from_slice(&randoms);
            answer[39] = 0x80;
            Ok(Computed::Answer(answer))
        }
    }
}
