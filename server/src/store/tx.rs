//! The one storage interface both backends implement: the primitive reads and writes of a
//! transaction. The unlock logic ([`super::session`], [`super::Store`]) is written once against
//! it, so SQLite and PostgreSQL run the very same checks in the very same order.
//!
//! Locking contract (what makes "no lost updates" hold on both backends):
//! - [`Tx::live_session`] and [`Tx::read_card`] lock the row they return until the transaction
//!   ends (PostgreSQL: `SELECT ... FOR UPDATE` under READ COMMITTED; SQLite: the whole database
//!   is locked by `BEGIN IMMEDIATE`). A transaction that changes a counter, a flag or a
//!   generation first reads the row through them, so a concurrent change waits, then sees the
//!   committed value.
//! - Lock order is session, then card: no two transactions wait on each other in a cycle.
//! - "Once ever" facts (a used challenge, a denied PUK generation) are primary keys, inserted with
//!   `ON CONFLICT DO NOTHING`: the database decides which of two racing inserts wins.

use super::chain::lanes::LaneTx;
use super::joined::JoinTx;
use super::mac::Table;
use super::mac::{Kind, Val};
use super::ops::OpTx;
use super::readouts::ReadoutTx;
use super::rules::RulesTx;
use super::stmt::{self, sql, Arg, Exec};
pub(crate) use prims::{AuditTx, MacStoreTx};

mod prims;
use super::{AuditNote, CardRecord, Profile, Session};
use crate::ServerError;
use Arg::{Bytes, Flag, Int, OptInt, OptText, Text as T};

/// A row with its card's audit counts ([`Tx::card_audit_counts`]), if there is one.
pub(crate) type Counted<T> = Option<(T, (u32, u32))>;

/// A card's key: profile and lowercase hex identity.
pub(crate) type CardKey<'a> = (Profile, &'a str);

/// The primitive operations of one open transaction.
pub(crate) trait Tx:
    Exec + AuditTx + MacStoreTx + OpTx + ReadoutTx + RulesTx + JoinTx + LaneTx
{
    /// The card, row-locked until the transaction ends; `None` if not enrolled.
    fn read_card(&mut self, card: CardKey<'_>) -> Result<Option<CardRecord>, ServerError>;
    /// Inserts a new card; `false` (and nothing changed) if it already exists.
    fn insert_card(
        &mut self,
        (profile, identity): CardKey<'_>,
        algorithm: &str,
        name: &str,
        email: &str,
        now: i64,
    ) -> Result<bool, ServerError> {
        let args = [
            T(profile.as_str()),
            T(identity),
            T(algorithm),
            T(name),
            T(email),
            Int(now),
        ];
        Ok(self.exec(sql!("INSERT INTO cards (profile, identity, algorithm, user_name, user_email, enrolled_ms)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"), &args)? == 1)
    }
    /// Replaces the user and the admin algorithm of an enrolled card.
    fn update_card_user(
        &mut self,
        (profile, identity): CardKey<'_>,
        algorithm: &str,
        name: &str,
        email: &str,
    ) -> Result<(), ServerError> {
        let args = [
            T(profile.as_str()),
            T(identity),
            T(algorithm),
            T(name),
            T(email),
        ];
        self.exec(
            sql!(
                "UPDATE cards SET algorithm = $3, user_name = $4, user_email = $5
             WHERE profile = $1 AND identity = $2"
            ),
            &args,
        )
        .map(drop)
    }
    /// Sets the wrong-answer counter and the lock.
    /// (`failed` 0 and not locked, a success or a lift, also clears the back-off.)
    fn set_attempts(
        &mut self,
        (profile, identity): CardKey<'_>,
        failed: u32,
        locked: bool,
    ) -> Result<(), ServerError> {
        let (failed, lift) = (Int(i64::from(failed)), Flag(failed == 0 && !locked));
        let args = [T(profile.as_str()), T(identity), failed, Flag(locked), lift];
        self.exec(
            sql!(
                "UPDATE cards SET failed_attempts = $3, locked = $4,
                 backoff_until_ms = CASE WHEN $5 THEN 0 ELSE backoff_until_ms END
             WHERE profile = $1 AND identity = $2"
            ),
            &args,
        )
        .map(drop)
    }
    /// Sets the confirmed and the pending PUK generation.
    fn set_puk_gens(
        &mut self,
        (profile, identity): CardKey<'_>,
        puk_gen: u32,
        pending: Option<u32>,
    ) -> Result<(), ServerError> {
        let (puk_gen, pending) = (Int(i64::from(puk_gen)), OptInt(pending.map(i64::from)));
        let args = [T(profile.as_str()), T(identity), puk_gen, pending];
        self.exec(
            sql!(
                "UPDATE cards SET puk_gen = $3, pending_puk_gen = $4,
                 puk_read_out = CASE WHEN puk_gen = $3 THEN puk_read_out ELSE FALSE END
             WHERE profile = $1 AND identity = $2"
            ),
            &args,
        )
        .map(drop)
    }

    /// Deletes the card's questions.
    fn delete_questions(&mut self, (profile, identity): CardKey<'_>) -> Result<(), ServerError> {
        let args = [T(profile.as_str()), T(identity)];
        self.exec(
            sql!("DELETE FROM questions WHERE profile = $1 AND identity = $2"),
            &args,
        )
        .map(drop)
    }
    /// Adds one question with its answer's PHC string.
    fn insert_question(
        &mut self,
        (profile, identity): CardKey<'_>,
        position: u32,
        question: &str,
        answer_hash: &str,
    ) -> Result<(), ServerError> {
        let position = Int(i64::from(position));
        let args = [
            T(profile.as_str()),
            T(identity),
            position,
            T(question),
            T(answer_hash),
        ];
        self.exec(
            sql!(
                "INSERT INTO questions (profile, identity, position, question, answer_hash)
             VALUES ($1, $2, $3, $4, $5)"
            ),
            &args,
        )
        .map(drop)
    }
    /// The card's (question, answer hash) pairs in order.
    fn questions(
        &mut self,
        (profile, identity): CardKey<'_>,
    ) -> Result<Vec<(String, String)>, ServerError> {
        let stmt = sql!(
            "SELECT question, answer_hash FROM questions WHERE profile = $1 AND identity = $2
             ORDER BY position"
        );
        let key = [
            (Val::text(profile.as_str()), None),
            (Val::text(identity), None),
        ];
        let rows = self.fetch(
            stmt.text_for(self.dialect()),
            &key,
            &[Kind::Text, Kind::Text],
        )?;
        let text = |v: Option<Val>| stmt::text(v).unwrap_or_default();
        Ok(rows
            .into_iter()
            .map(|mut r| {
                let answer_hash = text(r.pop());
                (text(r.pop()), answer_hash)
            })
            .collect())
    }

    /// The PUK generations whose sessions reported "not rotated".
    fn puk_denied(&mut self, (profile, identity): CardKey<'_>) -> Result<Vec<u32>, ServerError> {
        let stmt = sql!("SELECT gen FROM puk_denied WHERE profile = $1 AND identity = $2");
        let key = [
            (Val::text(profile.as_str()), None),
            (Val::text(identity), None),
        ];
        let rows = self.fetch(stmt.text_for(self.dialect()), &key, &[Kind::Int])?;
        rows.into_iter()
            .map(|mut r| stmt::count(r.pop(), 0))
            .collect()
    }
    /// Records a generation reported "not rotated" (once).
    fn deny_puk(
        &mut self,
        (profile, identity): CardKey<'_>,
        generation: u32,
    ) -> Result<(), ServerError> {
        let args = [T(profile.as_str()), T(identity), Int(i64::from(generation))];
        self.exec(
            sql!(
                "INSERT INTO puk_denied (profile, identity, gen) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING"
            ),
            &args,
        )
        .map(drop)
    }
    /// Forgets the reports of generations up to `generation`.
    fn clear_denied_upto(
        &mut self,
        (profile, identity): CardKey<'_>,
        generation: u32,
    ) -> Result<(), ServerError> {
        let args = [T(profile.as_str()), T(identity), Int(i64::from(generation))];
        self.exec(
            sql!("DELETE FROM puk_denied WHERE profile = $1 AND identity = $2 AND gen <= $3"),
            &args,
        )
        .map(drop)
    }

    /// Deletes expired sessions (housekeeping; skips rows another transaction holds).
    fn delete_expired_sessions(&mut self, now: i64) -> Result<(), ServerError>;
    /// Stores a new session.
    fn insert_session(
        &mut self,
        token_hash: &[u8; 32],
        (profile, identity): CardKey<'_>,
        now: i64,
        expires: i64,
    ) -> Result<(), ServerError> {
        let token = Bytes(&token_hash[..]);
        let args = [
            token,
            T(profile.as_str()),
            T(identity),
            Int(now),
            Int(expires),
        ];
        self.exec(
            sql!(
                "INSERT INTO sessions (token_hash, profile, identity, created_ms, expires_ms)
             VALUES ($1, $2, $3, $4, $5)"
            ),
            &args,
        )
        .map(drop)
    }
    /// The session if it is live (not closed, not expired), row-locked until the transaction ends.
    fn live_session(
        &mut self,
        token_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<Session>, ServerError>;
    /// Marks the session verified.
    fn set_session_verified(&mut self, token_hash: &[u8; 32]) -> Result<(), ServerError> {
        self.exec(
            sql!("UPDATE sessions SET verified = TRUE WHERE token_hash = $1"),
            &[Bytes(&token_hash[..])],
        )
        .map(drop)
    }
    /// Records the nonce (hex) the session's PIV card must sign.
    fn set_session_nonce(&mut self, token_hash: &[u8; 32], nonce: &str) -> Result<(), ServerError> {
        let args = [Bytes(&token_hash[..]), T(nonce)];
        self.exec(
            sql!("UPDATE sessions SET nonce = $2 WHERE token_hash = $1"),
            &args,
        )
        .map(drop)
    }
    /// Marks the session's card as having proved its presence.
    fn set_session_proven(&mut self, token_hash: &[u8; 32]) -> Result<(), ServerError> {
        self.exec(
            sql!("UPDATE sessions SET proven = TRUE WHERE token_hash = $1"),
            &[Bytes(&token_hash[..])],
        )
        .map(drop)
    }
    /// Records (or clears) the card's Card Authentication public key (hex SEC1 point).
    fn set_card_auth_key(
        &mut self,
        (profile, identity): CardKey<'_>,
        key: Option<&str>,
    ) -> Result<(), ServerError> {
        let args = [T(profile.as_str()), T(identity), OptText(key)];
        self.exec(
            sql!("UPDATE cards SET card_auth_key = $3 WHERE profile = $1 AND identity = $2"),
            &args,
        )
        .map(drop)
    }
    /// Records (or clears) the name of the workstation ISO profile the card was enrolled with.
    fn set_iso_profile(
        &mut self,
        (profile, identity): CardKey<'_>,
        name: Option<&str>,
    ) -> Result<(), ServerError> {
        let args = [T(profile.as_str()), T(identity), OptText(name)];
        self.exec(
            sql!("UPDATE cards SET iso_profile = $3 WHERE profile = $1 AND identity = $2"),
            &args,
        )
        .map(drop)
    }
    /// Sets the back-off of answers without card proof (ms since the Unix epoch; 0: none).
    fn set_backoff(
        &mut self,
        (profile, identity): CardKey<'_>,
        until: i64,
    ) -> Result<(), ServerError> {
        let args = [T(profile.as_str()), T(identity), Int(until)];
        self.exec(
            sql!("UPDATE cards SET backoff_until_ms = $3 WHERE profile = $1 AND identity = $2"),
            &args,
        )
        .map(drop)
    }
    /// Records the PUK generation this session released.
    fn set_session_puk_next(
        &mut self,
        token_hash: &[u8; 32],
        generation: u32,
    ) -> Result<(), ServerError> {
        let args = [Bytes(&token_hash[..]), Int(i64::from(generation))];
        self.exec(
            sql!("UPDATE sessions SET puk_next_gen = $2 WHERE token_hash = $1"),
            &args,
        )
        .map(drop)
    }
    /// Records (or clears) `R1 || R2` (hex) of the session's GIDS host cryptogram.
    fn set_session_gids(
        &mut self,
        token_hash: &[u8; 32],
        randoms: Option<&str>,
    ) -> Result<(), ServerError> {
        let args = [Bytes(&token_hash[..]), OptText(randoms)];
        self.exec(
            sql!("UPDATE sessions SET gids_randoms = $2 WHERE token_hash = $1"),
            &args,
        )
        .map(drop)
    }
    /// Closes every open session of a card (re-enrolment).
    fn close_card_sessions(&mut self, (profile, identity): CardKey<'_>) -> Result<(), ServerError> {
        let args = [T(profile.as_str()), T(identity)];
        self.exec(sql!("UPDATE sessions SET closed = TRUE WHERE profile = $1 AND identity = $2 AND NOT closed"), &args).map(drop)
    }
    /// Counts one more admin answer in the session.
    fn count_admin_answer(&mut self, token_hash: &[u8; 32]) -> Result<(), ServerError> {
        self.exec(
            sql!("UPDATE sessions SET admin_answers = admin_answers + 1 WHERE token_hash = $1"),
            &[Bytes(&token_hash[..])],
        )
        .map(drop)
    }
    /// Closes the session.
    fn close_session(&mut self, token_hash: &[u8; 32]) -> Result<(), ServerError> {
        self.exec(
            sql!("UPDATE sessions SET closed = TRUE WHERE token_hash = $1"),
            &[Bytes(&token_hash[..])],
        )
        .map(drop)
    }

    /// Records a card challenge as answered; `false` if it already was (ever).
    fn use_challenge(
        &mut self,
        (profile, identity): CardKey<'_>,
        kind: &str,
        value: &str,
        now: i64,
    ) -> Result<bool, ServerError> {
        let args = [
            T(profile.as_str()),
            T(identity),
            T(kind),
            T(value),
            Int(now),
        ];
        Ok(self.exec(
            sql!(
                "INSERT INTO used_challenges (profile, identity, kind, value, used_ms)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
            ),
            &args,
        )? == 1)
    }

    /// Appends an audit row.
    fn insert_audit(&mut self, note: &AuditNote<'_>, now: i64) -> Result<(), ServerError>;

    /// The card (row-locked, as [`Tx::read_card`]) with its audit counts
    /// ([`MacStoreTx::card_audit_counts`]).
    fn read_card_audited(&mut self, card: CardKey<'_>) -> Result<Counted<CardRecord>, ServerError> {
        let Some(record) = self.read_card(card)? else {
            return Ok(None);
        };
        let counts = self.card_audit_counts(card)?;
        Ok(Some((record, counts)))
    }
}

/// `Ok` when a write over a locked row changed it (`changed` is 1); else the row was changed
/// under its lock, outside the server.
pub(crate) fn changed_under_lock(table: &Table, changed: u64) -> Result<(), ServerError> {
    if changed == 1 {
        Ok(())
    } else {
        Err(ServerError::Tampered(format!(
            "a row of table {} changed under its row lock",
            table.name
        )))
    }
}

/// `Ok` when an insert of a new row inserted it (`inserted` is 1).
pub(crate) fn inserted_once(table: &Table, inserted: u64) -> Result<(), ServerError> {
    if inserted == 1 {
        Ok(())
    } else {
        Err(ServerError::Tampered(format!(
            "a new row of table {} was not written ({inserted} rows)",
            table.name
        )))
    }
}
