//! The operator API (`/v1/operator/*`, `server/API.md`, "Operator API"): the people who enrol
//! cards, answer offline challenges, lift locks, read the audit and manage other operators.
//!
//! Every call but sign-in carries the session token as `Authorization: Bearer <token>`. The
//! server checks the operator's roles on every call (403 `forbidden` otherwise) and writes an
//! audit row naming the operator, the role that allowed the call and the client address.
//! Secrets (passwords, TOTP codes, session tokens, PUKs, admin keys, answers, offline
//! responses, `otpauth://` URIs) are [`Secret`] / [`SessionToken`]: `Debug` prints `***`, the
//! memory is wiped on drop.

use serde::{Deserialize, Serialize};

use crate::bytes::{CardAuthKey, Challenge};
use crate::messages::{CardRef, Secret, SessionToken, User};
use crate::names::{AlgorithmName, ParseNameError};

/// Longest operator name, in bytes.
pub const MAX_OPERATOR_NAME: usize = 64;
/// Longest reason of a lift-lock and longest `identity_checked` note, in bytes.
pub const MAX_NOTE: usize = 500;
/// Shortest operator password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest operator password, in bytes.
pub const MAX_PASSWORD: usize = 256;
/// Most audit rows one query returns (and the default `limit`).
pub const MAX_AUDIT_ROWS: u32 = 1000;

/// What an operator may do. An operator holds one or more roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Search cards, see a card, lift a lock, answer an offline challenge, read out a PIV PUK.
    Helpdesk,
    /// Enrol (personalise) cards: receives a card's current and next secrets.
    Enroller,
    /// Read the audit log (JSON and CSV) and see cards; changes nothing.
    Auditor,
    /// Manage operators (add, disable, reset TOTP, set password); also everything an auditor may.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Self; 4] = [Self::Helpdesk, Self::Enroller, Self::Auditor, Self::Admin];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Helpdesk => "helpdesk",
            Self::Enroller => "enroller",
            Self::Auditor => "auditor",
            Self::Admin => "admin",
        }
    }
}

impl core::fmt::Display for Role {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for Role {
    type Err = ParseNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(ParseNameError {
                what: "role",
                expected: "helpdesk, enroller, auditor or admin",
            })
    }
}

/// Why an operator name is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadOperatorName;

impl core::fmt::Display for BadOperatorName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "an operator name is 1 to {MAX_OPERATOR_NAME} characters: lowercase letters, digits, \
             '.', '_' or '-', starting with a letter or digit"
        )
    }
}

impl std::error::Error for BadOperatorName {}

/// Checks an operator name: 1 to 64 of `a-z 0-9 . _ -`, starting with a letter or a digit (so
/// it goes into a URL path and a TOTP label as it is).
pub fn check_operator_name(name: &str) -> Result<(), BadOperatorName> {
    let ok_char = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(&c);
    let bytes = name.as_bytes();
    match bytes.first() {
        Some(first)
            if bytes.len() <= MAX_OPERATOR_NAME
                && (first.is_ascii_lowercase() || first.is_ascii_digit())
                && bytes.iter().all(|&c| ok_char(c)) =>
        {
            Ok(())
        }
        _ => Err(BadOperatorName),
    }
}

/// `POST /v1/operator/session`: sign in with password and the current TOTP code.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SignInRequest {
    /// The operator name.
    pub name: String,
    /// The password.
    pub password: Secret,
    /// The 6-digit code of the operator's authenticator app (each code is accepted once).
    pub totp: Secret,
}

/// An operator as others see it (never the password hash or the TOTP seed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorInfo {
    /// The name.
    pub name: String,
    /// The roles, sorted.
    pub roles: Vec<Role>,
    /// A disabled operator cannot sign in and its sessions end.
    pub disabled: bool,
    /// When the account was made, ms since the Unix epoch.
    #[serde(default)]
    pub created_ms: i64,
}

/// 200 reply of sign-in.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SignInReply {
    /// The bearer token of the new operator session (64 hex digits).
    pub token: SessionToken,
    /// Who signed in.
    pub operator: OperatorInfo,
    /// The session ends after this many seconds without a call.
    pub idle_timeout_s: u64,
    /// The session ends this many seconds after sign-in, whatever happens.
    pub expires_in_s: u64,
}

/// `GET /v1/operator/search?q=`: query string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchQuery {
    /// Matched, case-insensitively, as a substring of the user's name, e-mail or the card
    /// identity (hex). 1 to 128 bytes.
    pub q: String,
}

/// One card in a search result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardSummary {
    /// The card.
    pub card: CardRef,
    /// Its holder.
    pub user: User,
    /// Online unlock is locked (too many wrong answer sets).
    pub locked: bool,
    /// When the card was first enrolled, ms since the Unix epoch.
    pub enrolled_ms: i64,
}

/// 200 reply of search: at most 100 cards, by user name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchReply {
    /// The matching cards.
    pub cards: Vec<CardSummary>,
}

/// One audit row. Never a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The operator who acted (`None`: a card holder's online unlock, or a refused sign-in of
    /// an unknown name, which is in `detail`).
    pub operator: Option<String>,
    /// The role that allowed the action.
    pub role: Option<Role>,
    /// The client's IP address, when the action came over the network.
    pub address: Option<String>,
    /// The card, when the action concerned one.
    pub card: Option<CardRef>,
    /// A short reference of the unlock session (a prefix of its token's SHA-256), when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// What was attempted (`sign_in`, `lift_lock`, `offline_response`, `puk_readout`,
    /// `enroll_begin`, `enroll`, `add_operator`, `start`, `answers`, ...).
    pub event: String,
    /// How it ended (`ok`, `refused`, `alert`, `wrong_password`, `enrolled`, `unlocked`, ...).
    pub outcome: String,
    /// Free text: reasons, counts, generations; never a secret.
    pub detail: String,
}

/// `GET /v1/operator/cards/{profile}/{identity}` 200 reply.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CardDetail {
    /// The card.
    pub card: CardRef,
    /// Its holder.
    pub user: User,
    /// The admin-key algorithm (3DES for PIV's management key).
    pub algorithm: AlgorithmName,
    /// Online unlock is locked.
    pub locked: bool,
    /// Answer sets left before the lock.
    pub attempts_left: u32,
    /// Generation of the admin / management key the card was last confirmed to hold.
    pub key_generation: u32,
    /// A key generation handed to an enrollment never reported done (the card may hold it).
    #[serde(default)]
    pub pending_key_generation: Option<u32>,
    /// Generation of the PUK the card was last confirmed to hold (PIV).
    pub puk_generation: u32,
    /// A PUK generation handed out and not confirmed (PIV).
    #[serde(default)]
    pub pending_puk_generation: Option<u32>,
    /// The current PUK was read out to a person by an operator (PIV): it is known outside the
    /// server until the next rotation.
    pub puk_read_out: bool,
    /// Why online unlock is stopped for the card, when it no longer holds the secrets on
    /// record (a PIV card refused every PUK on record, a GIDS card failed its admin-key check):
    /// until it is enrolled again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diverged: Option<String>,
    /// The security questions, in order (never the answers).
    pub questions: Vec<String>,
    /// When the card was first enrolled, ms since the Unix epoch.
    pub enrolled_ms: i64,
    /// The card's latest audit rows, newest first (at most 50).
    pub timeline: Vec<AuditRecord>,
}

/// `POST /v1/operator/cards/{profile}/{identity}/lift-lock`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiftLockRequest {
    /// Why (goes to the audit): 1 to [`MAX_NOTE`] bytes, not only spaces.
    pub reason: String,
}

/// `POST /v1/operator/cards/{profile}/{identity}/offline-response` (ISO cards).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineRequest {
    /// The card's challenge as the user reads it, hex (spaces allowed on input, compact
    /// lowercase hex when written), checked when the request is parsed: 8 bytes are answered
    /// with 3DES-ECB, 16 bytes with AES-ECB, under the card's admin key at its current key
    /// generation; the server checks the length fits the card's algorithm.
    pub challenge: Challenge,
    /// How the caller was identified (goes to the audit): 1 to [`MAX_NOTE`] bytes.
    pub identity_checked: String,
}

/// 200 reply of offline-response.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OfflineReply {
    /// `E_K(challenge)`, uppercase hex, as the user types it.
    pub response: Secret,
    /// The same in groups of four for reading aloud ("B5A8 5C0F 0207 FCF1").
    pub grouped: Secret,
}

/// `POST /v1/operator/cards/{profile}/{identity}/puk-readout` (PIV).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PukReadoutRequest {
    /// How the caller was identified (goes to the audit): 1 to [`MAX_NOTE`] bytes.
    pub identity_checked: String,
}

/// 200 reply of puk-readout: the PUK of the card's confirmed generation. The card is marked
/// `puk_read_out` until its next rotation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PukReadoutReply {
    /// The PUK, 8 digits.
    pub puk: Secret,
    /// Its generation.
    pub generation: u32,
    /// Another PUK the card may hold (a rotation handed out and not confirmed), to try only if
    /// `puk` is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alternative: Option<Secret>,
}

/// 202 reply of puk-readout when the server wants a second operator ("four eyes"): no PUK yet.
/// Another `helpdesk` operator approves the request ([`paths::PUK_READOUT_APPROVE`]), then the
/// requester collects the PUK once ([`paths::PUK_READOUT_COLLECT`]) before `expires_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PukReadoutPending {
    /// The request's id (32 hex digits).
    pub request: String,
    /// The card.
    pub card: CardRef,
    /// When the request lapses (Unix ms) if not collected.
    pub expires_ms: i64,
}

/// A PUK read-out waiting for approval or collection (four eyes), as listed to approvers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PukReadoutSummary {
    /// The request's id (32 hex digits).
    pub request: String,
    /// The card.
    pub card: CardRef,
    /// The card's holder.
    pub user: User,
    /// The operator who asked.
    pub requester: String,
    /// How the requester identified the caller.
    pub identity_checked: String,
    /// When it was asked (Unix ms).
    pub created_ms: i64,
    /// When it lapses (Unix ms).
    pub expires_ms: i64,
    /// The operator who approved it, once approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
}

/// `GET /v1/operator/puk-readouts`: the read-outs not yet collected nor lapsed, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PukReadoutList {
    /// The requests.
    pub requests: Vec<PukReadoutSummary>,
}

/// A security question with its answer, as enrolled.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct QuestionAnswer {
    /// The question, shown to the user.
    pub question: String,
    /// The answer (hashed with Argon2id by the server, never stored plain).
    pub answer: Secret,
}

/// `POST /v1/operator/enrollments` (role `enroller`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The card, as it reports itself.
    pub card: CardRef,
    /// The admin-key algorithm the card takes (3DES for PIV's management key).
    pub algorithm: AlgorithmName,
    /// The card holder.
    pub user: User,
    /// The security questions (none: online unlock unavailable, offline only).
    pub questions: Vec<QuestionAnswer>,
}

/// The longest ISO profile name an enrollment may record.
pub const MAX_ISO_PROFILE_NAME: usize = 64;

/// Whether `name` can name an ISO profile: 1 to [`MAX_ISO_PROFILE_NAME`] ASCII letters, digits,
/// `.`, `_`, `-`.
pub fn valid_iso_profile_name(name: &str) -> bool {
    (1..=MAX_ISO_PROFILE_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The server-derived secrets of a card at one generation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CardSecrets {
    /// Admin-key algorithm.
    pub algorithm: AlgorithmName,
    /// Generation of `admin_key`.
    pub key_generation: u32,
    /// The admin key (GIDS / ISO) or the management key 9B (PIV), hex.
    pub admin_key: Secret,
    /// Generation of `puk` (PIV).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub puk_generation: Option<u32>,
    /// The PUK, 8 digits (PIV only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub puk: Option<Secret>,
}

/// 200 reply of an enrollment's start.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnrollReply {
    /// The enrollment's id (32 hex digits), for [`EnrollDone`].
    pub enrollment: String,
    /// The secrets the card may hold now, most likely first: the generation the server last
    /// confirmed, then generations handed out and never confirmed. Empty for a card the server
    /// never enrolled and never handed secrets for (it holds its factory secrets).
    pub current: Vec<CardSecrets>,
    /// What to personalise the card with.
    pub next: CardSecrets,
}

/// `POST /v1/operator/enrollments/{id}`: the enrollment station reports the card's
/// personalisation. Only `personalised: true` records the card (user, questions, the new
/// generations); `false` closes the enrollment and the server keeps the old generations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollDone {
    /// The card now holds the `next` secrets.
    pub personalised: bool,
    /// PIV: the card's Card Authentication public key (9E), an uncompressed P-256 point
    /// (`04 || X || Y`, 130 hex digits), read from its certificate, recovered from its
    /// signatures or generated into an empty slot. Recorded with the card; without it the card
    /// cannot prove its presence and online unlock answers `card_not_verified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_auth_key: Option<CardAuthKey>,
    /// ISO admin cards: the name of the workstation ISO profile the card answered on (1 to
    /// [`MAX_ISO_PROFILE_NAME`] ASCII letters, digits, `.`, `_`, `-`), recorded with the card and
    /// returned in [`crate::StartReply::iso_profile`]. Absent for PIV and GIDS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iso_profile: Option<String>,
}

/// `GET /v1/operator/audit` and `/v1/operator/audit.csv`: query string (every filter optional,
/// all of them must match).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// Card identity (hex), exact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<String>,
    /// A substring of the card holder's name or e-mail (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Operator name, exact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// Event name, exact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Rows at or after this time (ms since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<i64>,
    /// Rows before this time (ms since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<i64>,
    /// At most this many rows, newest first (default and cap [`MAX_AUDIT_ROWS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// 200 reply of the audit query.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReply {
    /// The rows, newest first.
    pub entries: Vec<AuditRecord>,
}

/// `GET /v1/operator/operators` 200 reply (role `admin`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorList {
    /// Every operator, by name.
    pub operators: Vec<OperatorInfo>,
}

/// `POST /v1/operator/operators` (role `admin`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AddOperatorRequest {
    /// The new operator's name ([`check_operator_name`]).
    pub name: String,
    /// At least one role.
    pub roles: Vec<Role>,
    /// The initial password: [`MIN_PASSWORD_CHARS`] characters to [`MAX_PASSWORD`] bytes.
    pub password: Secret,
}

/// Reply of adding an operator and of resetting its TOTP: the authenticator-app enrolment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TotpEnrollment {
    /// `otpauth://totp/cardunlock:NAME?secret=BASE32&issuer=cardunlock&algorithm=SHA1&digits=6&period=30`
    /// (it carries the seed: show it to the operator once, as a QR code).
    pub totp_uri: Secret,
}

/// `POST /v1/operator/operators/{name}/password` (role `admin`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetPasswordRequest {
    /// The new password: [`MIN_PASSWORD_CHARS`] characters to [`MAX_PASSWORD`] bytes.
    pub password: Secret,
}

/// 200 reply of calls that only change something: `{}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {}

/// Groups hex digits by four, uppercase, for reading aloud ("B5A8 5C0F 0207 FCF1").
pub fn group_for_reading(hex: &str) -> Secret {
    let mut out = String::with_capacity(hex.len() + hex.len() / 4);
    for (i, c) in hex.chars().filter(|c| !c.is_whitespace()).enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_uppercase());
    }
    Secret::from(out)
}

/// The operator endpoint paths. Patterns name their parameters `{like_this}` (axum's syntax);
/// the functions fill them in (profile, identity and operator names need no escaping: they are
/// checked to be `[a-z0-9._-]`).
pub mod paths {
    /// `POST` [`super::SignInRequest`] -> [`super::SignInReply`]; `DELETE` signs out.
    pub const SESSION: &str = "/v1/operator/session";
    /// `GET ?q=` -> [`super::SearchReply`].
    pub const SEARCH: &str = "/v1/operator/search";
    /// `GET` -> [`super::CardDetail`].
    pub const CARD: &str = "/v1/operator/cards/{profile}/{identity}";
    /// `POST` [`super::LiftLockRequest`] -> [`super::Done`].
    pub const LIFT_LOCK: &str = "/v1/operator/cards/{profile}/{identity}/lift-lock";
    /// `POST` [`super::OfflineRequest`] -> [`super::OfflineReply`].
    pub const OFFLINE_RESPONSE: &str = "/v1/operator/cards/{profile}/{identity}/offline-response";
    /// `POST` [`super::PukReadoutRequest`] -> [`super::PukReadoutReply`], or with four eyes
    /// on, 202 [`super::PukReadoutPending`].
    pub const PUK_READOUT: &str = "/v1/operator/cards/{profile}/{identity}/puk-readout";
    /// `GET` -> [`super::PukReadoutList`] (four eyes).
    pub const PUK_READOUTS: &str = "/v1/operator/puk-readouts";
    /// `POST` (no body) -> [`super::Done`]: another helpdesk operator approves (four eyes).
    pub const PUK_READOUT_APPROVE: &str = "/v1/operator/puk-readouts/{id}/approve";
    /// `POST` (no body) -> [`super::PukReadoutReply`]: the requester collects, once.
    pub const PUK_READOUT_COLLECT: &str = "/v1/operator/puk-readouts/{id}/collect";
    /// `POST` [`super::EnrollRequest`] -> [`super::EnrollReply`].
    pub const ENROLLMENTS: &str = "/v1/operator/enrollments";
    /// `POST` [`super::EnrollDone`] -> [`super::Done`].
    pub const ENROLLMENT: &str = "/v1/operator/enrollments/{id}";
    /// `GET` [`super::AuditQuery`] -> [`super::AuditReply`].
    pub const AUDIT: &str = "/v1/operator/audit";
    /// `GET` [`super::AuditQuery`] -> `text/csv`.
    pub const AUDIT_CSV: &str = "/v1/operator/audit.csv";
    /// `GET` -> [`super::OperatorList`]; `POST` [`super::AddOperatorRequest`] ->
    /// [`super::TotpEnrollment`].
    pub const OPERATORS: &str = "/v1/operator/operators";
    /// `POST` (no body) -> [`super::Done`].
    pub const OPERATOR_DISABLE: &str = "/v1/operator/operators/{name}/disable";
    /// `POST` (no body) -> [`super::TotpEnrollment`].
    pub const OPERATOR_RESET_TOTP: &str = "/v1/operator/operators/{name}/reset-totp";
    /// `POST` [`super::SetPasswordRequest`] -> [`super::Done`].
    pub const OPERATOR_PASSWORD: &str = "/v1/operator/operators/{name}/password";
    /// `GET`: the OpenAPI 3.1 document of the whole server.
    pub const OPENAPI: &str = "/v1/openapi.json";

    /// `pattern` with each `{name}` replaced by its value, in order.
    pub fn fill(pattern: &str, values: &[&str]) -> String {
        let mut out = String::with_capacity(pattern.len() + 64);
        let mut rest = pattern;
        let mut values = values.iter();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open..];
            let close = after.find('}').map_or(after.len(), |c| c + 1);
            match values.next() {
                Some(v) => out.push_str(v),
                None => out.push_str(&after[..close]),
            }
            rest = &after[close..];
        }
        out.push_str(rest);
        out
    }

    /// [`CARD`] for one card.
    pub fn card(profile: crate::Profile, identity: &str) -> String {
        fill(CARD, &[profile.as_str(), identity])
    }

    /// [`LIFT_LOCK`] for one card.
    pub fn lift_lock(profile: crate::Profile, identity: &str) -> String {
        fill(LIFT_LOCK, &[profile.as_str(), identity])
    }

    /// [`OFFLINE_RESPONSE`] for one card.
    pub fn offline_response(profile: crate::Profile, identity: &str) -> String {
        fill(OFFLINE_RESPONSE, &[profile.as_str(), identity])
    }

    /// [`PUK_READOUT`] for one card.
    pub fn puk_readout(profile: crate::Profile, identity: &str) -> String {
        fill(PUK_READOUT, &[profile.as_str(), identity])
    }

    /// [`PUK_READOUT_APPROVE`] for one request id.
    pub fn puk_readout_approve(id: &str) -> String {
        fill(PUK_READOUT_APPROVE, &[id])
    }

    /// [`PUK_READOUT_COLLECT`] for one request id.
    pub fn puk_readout_collect(id: &str) -> String {
        fill(PUK_READOUT_COLLECT, &[id])
    }

    /// [`ENROLLMENT`] for one enrollment id.
    pub fn enrollment(id: &str) -> String {
        fill(ENROLLMENT, &[id])
    }

    /// [`OPERATOR_DISABLE`] for one operator.
    pub fn operator_disable(name: &str) -> String {
        fill(OPERATOR_DISABLE, &[name])
    }

    /// [`OPERATOR_RESET_TOTP`] for one operator.
    pub fn operator_reset_totp(name: &str) -> String {
        fill(OPERATOR_RESET_TOTP, &[name])
    }

    /// [`OPERATOR_PASSWORD`] for one operator.
    pub fn operator_password(name: &str) -> String {
        fill(OPERATOR_PASSWORD, &[name])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Profile;

    #[test]
    fn roles_round_trip() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{r}\""));
        }
        assert!("root".parse::<Role>().is_err());
        assert!("Admin".parse::<Role>().is_err());
    }

    #[test]
    fn operator_names() {
        for ok in ["alice", "a", "bob.smith-2", "9lives", &"a".repeat(64)] {
            assert_eq!(check_operator_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "Alice", "-x", ".x", "a b", "a/b", "é", &"a".repeat(65)] {
            assert!(check_operator_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let req = SignInRequest {
            name: "alice".into(),
            password: Secret::new("correct horse battery"),
            totp: Secret::new("287082"),
        };
        let shown = format!("{req:?}");
        assert!(
            !shown.contains("horse") && !shown.contains("287082"),
            "{shown}"
        );
        let reply = OfflineReply {
            response: Secret::new("B5A85C0F0207FCF1"),
            grouped: group_for_reading("b5a85c0f0207fcf1"),
        };
        let shown = format!("{reply:?}");
        assert!(!shown.contains("B5A8"), "{shown}");
        let json = serde_json::to_value(&reply).unwrap();
        assert_eq!(json["grouped"], "B5A8 5C0F 0207 FCF1");
    }

    /// Proves the offline request's challenge is decoded when the request is parsed: a
    /// malformed one fails the parse (so it is a bad request whatever the caller's roles), a
    /// good one round-trips as compact hex.
    #[test]
    fn offline_request_checks_its_challenge() {
        let req: OfflineRequest = serde_json::from_str(
            r#"{"challenge":"D4BD 9B1D A5D2 6CDA","identity_checked":"badge"}"#,
        )
        .unwrap();
        assert_eq!(req.challenge.to_hex(), "d4bd9b1da5d26cda");
        let json = serde_json::to_string(&req).unwrap();
        assert_eq!(
            json,
            r#"{"challenge":"d4bd9b1da5d26cda","identity_checked":"badge"}"#
        );
        assert_eq!(serde_json::from_str::<OfflineRequest>(&json).unwrap(), req);
        for bad in ["D4BD 9B1D A5D2", "nothexnothexnoth", "", "00"] {
            let text = format!(r#"{{"challenge":"{bad}","identity_checked":"badge"}}"#);
            assert!(
                serde_json::from_str::<OfflineRequest>(&text).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn paths_fill_in() {
        assert_eq!(
            paths::offline_response(Profile::Iso, "0a0b"),
            "/v1/operator/cards/iso/0a0b/offline-response"
        );
        assert_eq!(
            paths::operator_reset_totp("bob"),
            "/v1/operator/operators/bob/reset-totp"
        );
        assert_eq!(paths::enrollment("ff"), "/v1/operator/enrollments/ff");
        assert_eq!(
            paths::fill(paths::CARD, &["piv"]),
            "/v1/operator/cards/piv/{identity}"
        );
    }

    #[test]
    fn audit_query_fields_are_optional() {
        let q: AuditQuery = serde_json::from_str(r#"{"operator":"alice","limit":5}"#).unwrap();
        assert_eq!(q.operator.as_deref(), Some("alice"));
        assert_eq!(q.limit, Some(5));
        assert_eq!(q.card, None);
        let none: AuditQuery = serde_json::from_str("{}").unwrap();
        assert_eq!(none, AuditQuery::default());
    }
}
