//! The SQLite store: cards, their questions (answers as Argon2id hashes only), sessions, used
//! challenges and the audit log. Never the master secret, a key, a PUK or a plain answer.
//!
//! One connection behind a mutex, WAL mode, every method synchronous and short: the slow part of
//! a request (Argon2) runs outside the lock. Each multi-step change is one `IMMEDIATE`
//! transaction, so two server processes on one file stay consistent too.

mod schema;
mod session;

use std::fmt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cardunlock_core::crypto::Algorithm;
use cardunlock_core::policy::PinPolicy;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::answers::{hash_answer, normalise_answer, Argon2Params};
use crate::ServerError;

pub(crate) use session::{
    AnswerCheck, AnswerOutcome, ChallengeOutcome, CompleteOutcome, PukOutcome, Session,
    StartOutcome,
};

/// Longest identity accepted, in bytes (FASC-N is 25, a GUID 16, serials shorter).
pub(crate) const MAX_IDENTITY_LEN: usize = 64;
const MAX_QUESTIONS: usize = 16;
const MAX_TEXT: usize = 512;

/// A card profile, as the contract names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Profile {
    Piv,
    Gids,
    Iso,
}

impl Profile {
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "piv" => Some(Self::Piv),
            "gids" => Some(Self::Gids),
            "iso" => Some(Self::Iso),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Piv => "piv",
            Self::Gids => "gids",
            Self::Iso => "iso",
        }
    }

    /// The PIN policy handed to the client: PIV's for PIV cards, GIDS' for GIDS and ISO.
    pub(crate) fn pin_policy(self) -> PinPolicy<'static> {
        match self {
            Self::Piv => PinPolicy::PIV,
            Self::Gids | Self::Iso => PinPolicy::GIDS,
        }
    }
}

/// The contract's name of an algorithm: `3des`, `aes128`, `aes192`, `aes256`.
pub(crate) fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::TripleDes => "3des",
        Algorithm::Aes128 => "aes128",
        Algorithm::Aes192 => "aes192",
        Algorithm::Aes256 => "aes256",
    }
}

/// The algorithm of a contract name.
pub(crate) fn parse_algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "3des" => Some(Algorithm::TripleDes),
        "aes128" => Some(Algorithm::Aes128),
        "aes192" => Some(Algorithm::Aes192),
        "aes256" => Some(Algorithm::Aes256),
        _ => None,
    }
}

/// Checks a card identity (1 to 64 bytes of hex, either case) and returns it in lowercase with
/// its bytes.
pub(crate) fn parse_identity(identity_hex: &str) -> Result<(String, Vec<u8>), ServerError> {
    let bad = |why: &str| ServerError::InvalidInput(format!("card identity: {why}"));
    if identity_hex.is_empty() || identity_hex.len() > 2 * MAX_IDENTITY_LEN {
        return Err(bad("must be 1 to 64 bytes of hex"));
    }
    let bytes = hex::decode(identity_hex).map_err(|_| bad("not an even number of hex digits"))?;
    Ok((identity_hex.to_ascii_lowercase(), bytes))
}

/// Checks a profile name and an identity as the HTTP API and the operator functions take them.
pub(crate) fn parse_card(
    profile: &str,
    identity_hex: &str,
) -> Result<(Profile, String), ServerError> {
    let profile = Profile::parse(profile)
        .ok_or_else(|| ServerError::InvalidInput("profile must be piv, gids or iso".into()))?;
    let (identity, _) = parse_identity(identity_hex)?;
    Ok((profile, identity))
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// What an operator enrols: the user, the card and the security questions.
///
/// `Debug` shows the questions but never the answers. The caller owns the plain answers: drop
/// (or zeroize) the enrolment soon after [`Store::enroll`].
pub struct Enrollment {
    /// The user's name, shown by the client ("Michael Benson").
    pub name: String,
    /// The user's e-mail address.
    pub email: String,
    /// `piv`, `gids` or `iso`.
    pub profile: String,
    /// The card identity as `cardunlock status` prints it (hex; stored lowercase).
    pub identity_hex: String,
    /// The admin-key algorithm (GIDS / ISO); PIV management keys are 3DES per the contract.
    pub algorithm: Algorithm,
    /// (question, plain answer) pairs in the order the client shows them; the answers are
    /// normalised and hashed on the way in. None at all: online unlock is unavailable.
    pub questions: Vec<(String, String)>,
}

impl fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let questions: Vec<&str> = self.questions.iter().map(|(q, _)| q.as_str()).collect();
        f.debug_struct("Enrollment")
            .field("name", &self.name)
            .field("email", &self.email)
            .field("profile", &self.profile)
            .field("identity_hex", &self.identity_hex)
            .field("algorithm", &self.algorithm)
            .field("questions", &questions)
            .finish_non_exhaustive()
    }
}

/// A card as the store knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardRecord {
    /// `piv`, `gids` or `iso`.
    pub profile: String,
    /// Lowercase hex identity.
    pub identity_hex: String,
    /// The admin-key algorithm (3DES for PIV).
    pub algorithm: Algorithm,
    /// Generation of the admin / management key on the card.
    pub key_gen: u32,
    /// Generation of the PUK the card was last confirmed to hold (PIV).
    pub puk_gen: u32,
    /// Set while a PUK rotation was handed out but not confirmed (`complete` missing, or
    /// `puk_rotated: false`): the card holds the PUK of a generation from `puk_gen` to this one.
    pub pending_puk_gen: Option<u32>,
    /// Online unlock locked after too many wrong answer sets.
    pub locked: bool,
    /// Wrong answer sets since the last success or lift.
    pub failed_attempts: u32,
    /// The user's name.
    pub user_name: String,
    /// The user's e-mail address.
    pub user_email: String,
}

/// One audit row: who did what to which card and how it ended. Never secrets or answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The card's profile, when known.
    pub profile: Option<String>,
    /// The card's identity (hex), when known.
    pub identity_hex: Option<String>,
    /// A short reference of the session (a prefix of its token's SHA-256), when any.
    pub session: Option<String>,
    /// What was attempted: `enroll`, `lift_lock`, `start`, `answers`, `lock`, `admin`, `puk`,
    /// `complete`, or `request` (refused before reaching an endpoint's logic).
    pub event: String,
    /// How it ended (`started`, `verified`, `wrong_answers`, `locked`, `answered`,
    /// `challenge_used`, `released`, `unlocked`, `invalid_session`, `bad_request`, ...).
    pub outcome: String,
    /// Free text: counts, generations, kinds; never a secret.
    pub detail: String,
}

/// An audit row about to be written.
pub(crate) struct AuditNote<'a> {
    pub card: Option<(Profile, &'a str)>,
    pub session: Option<&'a str>,
    pub event: &'a str,
    pub outcome: &'a str,
    pub detail: &'a str,
}

/// The SQLite store. Open it once per process and share it (`Arc<Store>`).
pub struct Store {
    conn: Mutex<Connection>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`, in WAL mode.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ServerError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock rolled its transaction back; the connection is fine.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Enrols a card (or re-enrols it: user, algorithm and questions are replaced; generations,
    /// pending rotation and lock are kept). The answers are normalised and hashed with `argon2`
    /// before the database is touched. Returns the record: personalise the card with the
    /// secrets of its `key_gen` and `puk_gen` ([`crate::kdf`]).
    pub fn enroll(&self, e: &Enrollment, argon2: &Argon2Params) -> Result<CardRecord, ServerError> {
        let (profile, identity) = parse_card(&e.profile, &e.identity_hex)?;
        if profile == Profile::Piv && e.algorithm != Algorithm::TripleDes {
            return Err(ServerError::InvalidInput(
                "PIV management keys are 3DES (API.md: piv-mgmt-key)".into(),
            ));
        }
        check_text("name", &e.name, false)?;
        check_text("email", &e.email, true)?;
        if e.questions.len() > MAX_QUESTIONS {
            return Err(ServerError::InvalidInput(format!(
                "at most {MAX_QUESTIONS} questions"
            )));
        }
        let mut rows = Vec::with_capacity(e.questions.len());
        for (question, answer) in &e.questions {
            check_text("question", question, false)?;
            if answer.len() > MAX_TEXT || normalise_answer(answer).is_empty() {
                return Err(ServerError::InvalidInput(format!(
                    "the answer to \"{question}\" must be 1 to {MAX_TEXT} bytes, not only spaces"
                )));
            }
            rows.push((question.as_str(), hash_answer(answer, argon2)?));
        }

        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existed = read_card(&tx, profile, &identity)?.is_some();
        if existed {
            tx.execute(
                "UPDATE cards SET algorithm = ?3, user_name = ?4, user_email = ?5
                 WHERE profile = ?1 AND identity = ?2",
                params![
                    profile.as_str(),
                    identity,
                    algorithm_name(e.algorithm),
                    e.name,
                    e.email
                ],
            )?;
            tx.execute(
                "DELETE FROM questions WHERE profile = ?1 AND identity = ?2",
                params![profile.as_str(), identity],
            )?;
        } else {
            tx.execute(
                "INSERT INTO cards (profile, identity, algorithm, user_name, user_email, enrolled_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![profile.as_str(), identity, algorithm_name(e.algorithm), e.name, e.email, now_ms()],
            )?;
        }
        for (position, (question, hash)) in rows.iter().enumerate() {
            tx.execute(
                "INSERT INTO questions (profile, identity, position, question, answer_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![profile.as_str(), identity, position as i64, question, hash],
            )?;
        }
        let detail = format!(
            "{} question(s), admin algorithm {}",
            rows.len(),
            algorithm_name(e.algorithm)
        );
        insert_audit(
            &tx,
            &AuditNote {
                card: Some((profile, &identity)),
                session: None,
                event: "enroll",
                outcome: if existed { "re-enrolled" } else { "enrolled" },
                detail: &detail,
            },
        )?;
        let record = read_card(&tx, profile, &identity)?.ok_or(ServerError::UnknownCard)?;
        tx.commit()?;
        Ok(record)
    }

    /// Clears a card's lock and attempt counter (audited). [`ServerError::UnknownCard`] if it is
    /// not enrolled.
    pub fn lift_lock(&self, profile: &str, identity_hex: &str) -> Result<(), ServerError> {
        let (profile, identity) = parse_card(profile, identity_hex)?;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let card = read_card(&tx, profile, &identity)?.ok_or(ServerError::UnknownCard)?;
        tx.execute(
            "UPDATE cards SET locked = 0, failed_attempts = 0 WHERE profile = ?1 AND identity = ?2",
            params![profile.as_str(), identity],
        )?;
        let detail = format!(
            "was {}, {} failed attempt(s)",
            if card.locked { "locked" } else { "not locked" },
            card.failed_attempts
        );
        insert_audit(
            &tx,
            &AuditNote {
                card: Some((profile, &identity)),
                session: None,
                event: "lift_lock",
                outcome: "lifted",
                detail: &detail,
            },
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The card's record, or `None` if it is not enrolled.
    pub fn card(
        &self,
        profile: &str,
        identity_hex: &str,
    ) -> Result<Option<CardRecord>, ServerError> {
        let (profile, identity) = parse_card(profile, identity_hex)?;
        read_card(&self.lock(), profile, &identity)
    }

    /// The whole audit log, oldest first.
    pub fn audit(&self) -> Result<Vec<AuditEntry>, ServerError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT time_ms, profile, identity, session, event, outcome, detail
             FROM audit ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(AuditEntry {
                time_ms: r.get(0)?,
                profile: r.get(1)?,
                identity_hex: r.get(2)?,
                session: r.get(3)?,
                event: r.get(4)?,
                outcome: r.get(5)?,
                detail: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Writes one audit row on its own.
    pub(crate) fn record(&self, note: &AuditNote<'_>) -> Result<(), ServerError> {
        insert_audit(&self.lock(), note)
    }
}

fn check_text(what: &str, text: &str, may_be_empty: bool) -> Result<(), ServerError> {
    if text.len() > MAX_TEXT || (!may_be_empty && text.trim().is_empty()) {
        return Err(ServerError::InvalidInput(format!(
            "{what} must be {} to {MAX_TEXT} bytes",
            u8::from(!may_be_empty)
        )));
    }
    Ok(())
}

pub(crate) fn insert_audit(conn: &Connection, note: &AuditNote<'_>) -> Result<(), ServerError> {
    conn.execute(
        "INSERT INTO audit (time_ms, profile, identity, session, event, outcome, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            now_ms(),
            note.card.map(|(p, _)| p.as_str()),
            note.card.map(|(_, i)| i),
            note.session,
            note.event,
            note.outcome,
            note.detail
        ],
    )?;
    Ok(())
}

pub(crate) fn read_card(
    conn: &Connection,
    profile: Profile,
    identity: &str,
) -> Result<Option<CardRecord>, ServerError> {
    let row = conn
        .query_row(
            "SELECT algorithm, key_gen, puk_gen, pending_puk_gen, locked, failed_attempts,
                    user_name, user_email
             FROM cards WHERE profile = ?1 AND identity = ?2",
            params![profile.as_str(), identity],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, Option<u32>>(3)?,
                    r.get::<_, bool>(4)?,
                    r.get::<_, u32>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                ))
            },
        )
        .optional()?;
    let Some((
        alg,
        key_gen,
        puk_gen,
        pending_puk_gen,
        locked,
        failed_attempts,
        user_name,
        user_email,
    )) = row
    else {
        return Ok(None);
    };
    let algorithm = parse_algorithm(&alg)
        .ok_or_else(|| ServerError::InvalidInput(format!("stored algorithm {alg:?} unknown")))?;
    Ok(Some(CardRecord {
        profile: profile.as_str().to_owned(),
        identity_hex: identity.to_owned(),
        algorithm,
        key_gen,
        puk_gen,
        pending_puk_gen,
        locked,
        failed_attempts,
        user_name,
        user_email,
    }))
}
