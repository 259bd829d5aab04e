//! The operator's client of the unlock server (`/v1/operator/*`, `server/API.md`, "Operator
//! API"): sign in with name, password and TOTP code, then enroll cards, lift locks, answer an
//! ISO card's offline challenge and read out a PIV card's PUK, each call carrying the session
//! token as `Authorization: Bearer`. Every body is a `cardunlock_protocol::operator` type; the
//! transport is the pinned HTTPS client of [`crate::api`].
//!
//! The token can be kept between commands in an owner-only file ([`session_file`]), so one
//! sign-in serves several commands; signing out ends the session on the server and deletes it.

pub mod session_file;

use cardunlock_protocol::operator::{
    paths, CardDetail, Done, EnrollDone, EnrollReply, EnrollRequest, LiftLockRequest, OfflineReply,
    OfflineRequest, PukReadoutReply, PukReadoutRequest, SignInReply, SignInRequest,
};
use cardunlock_protocol::{
    CardAuthKey, CardIdentity, CardRef, Challenge, Profile, Secret, SessionToken,
};
use zeroize::Zeroizing;

use crate::api::{Api, ApiError, Method};
use crate::failure::{Failure, Kind};

/// What an operator types to sign in. `Debug` shows the name only.
pub struct Credentials {
    /// The operator name.
    pub name: String,
    /// The password.
    pub password: Zeroizing<String>,
    /// The current code of the operator's authenticator app (6 digits).
    pub totp: Zeroizing<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A signed-in operator: the server's client and the session's bearer token.
pub struct Operator {
    api: Api,
    token: SessionToken,
    name: Option<String>,
}

impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator")
            .field("server", &self.api.base_url())
            .field("name", &self.name)
            .field("token", &self.token)
            .finish()
    }
}

/// The reply of a PUK read-out: the PUK ([`PukReadoutReply`]), or with four eyes on, a request
/// ([`cardunlock_protocol::operator::PukReadoutPending`]). Read straight into [`Secret`]s (no
/// untagged buffering of the PUK).
#[derive(serde::Deserialize)]
struct ReadoutBody {
    #[serde(default)]
    puk: Option<Secret>,
    #[serde(default)]
    generation: Option<u32>,
    #[serde(default)]
    alternative: Option<Secret>,
    #[serde(default)]
    request: Option<String>,
}

/// What `subject` failing on the server means for the operator.
fn failed(subject: &str, e: &ApiError) -> Failure {
    let f = e.failure();
    match e {
        ApiError::Refused(body) if f.kind == Kind::Unauthorized => {
            let why = if body.message.is_empty() {
                "refused"
            } else {
                body.message.as_str()
            };
            Failure::new(
                Kind::Unauthorized,
                format!("{subject}: {why} (not signed in: sign in again)"),
            )
        }
        _ => f.about(subject),
    }
}

/// A card as the operator names it: its profile and its identity (hex, spaces and case as
/// typed), checked and normalised once here (lowercase hex, as paths carry it).
pub fn card_ref(profile: Profile, identity: &str) -> Result<CardRef, Failure> {
    let bytes = crate::hex::parse(identity).map_err(|e| Failure::usage("card identity", e))?;
    if bytes.is_empty() {
        return Err(Failure::usage("card identity", "it is empty"));
    }
    let identity = CardIdentity::new(bytes).map_err(|e| Failure::usage("card identity", e))?;
    Ok(CardRef { profile, identity })
}

impl Operator {
    /// Signs in (`POST /v1/operator/session`): a new session on the server.
    pub fn sign_in(api: Api, credentials: &Credentials) -> Result<Operator, Failure> {
        cardunlock_protocol::operator::check_operator_name(&credentials.name)
            .map_err(|e| Failure::usage("operator name", e))?;
        let request = SignInRequest {
            name: credentials.name.clone(),
            password: Secret::new(credentials.password.as_str()),
            totp: Secret::new(credentials.totp.trim()),
        };
        let reply: SignInReply = api
            .call(Method::Post, paths::SESSION, None, Some(&request))
            .map_err(|e| failed("sign-in", &e))?;
        Ok(Operator {
            api,
            token: reply.token.clone(),
            name: Some(reply.operator.name.clone()),
        })
    }

    /// An operator session signed in before (a token from [`session_file`]); nothing is sent.
    /// A call answered `unauthorized` means it ended: sign in again.
    pub fn resume(api: Api, token: SessionToken, name: Option<String>) -> Operator {
        Operator { api, token, name }
    }

    /// The session's bearer token (to keep it with [`session_file::save`]).
    pub fn token(&self) -> &SessionToken {
        &self.token
    }

    /// The operator's name, when known.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The server's client.
    pub fn api(&self) -> &Api {
        &self.api
    }

    fn post<B: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        subject: &str,
        path: &str,
        body: &B,
    ) -> Result<T, Failure> {
        self.api
            .call(Method::Post, path, Some(&self.token), Some(body))
            .map_err(|e| failed(subject, &e))
    }

    /// Signs out (`DELETE /v1/operator/session`): the token stops working on the server.
    pub fn sign_out(self) -> Result<(), Failure> {
        let _: Done = self
            .api
            .call::<(), _>(Method::Delete, paths::SESSION, Some(&self.token), None)
            .map_err(|e| failed("sign-out", &e))?;
        Ok(())
    }

    /// One card as the server knows it (`GET /v1/operator/cards/{profile}/{identity}`): its
    /// holder, generations, lock and latest audit rows.
    pub fn card(&self, card: &CardRef) -> Result<CardDetail, Failure> {
        self.api
            .call::<(), _>(
                Method::Get,
                &paths::card(card.profile, &card.identity.to_hex()),
                Some(&self.token),
                None,
            )
            .map_err(|e| failed("card", &e))
    }

    /// Starts an enrollment (role `enroller`): the card's current secrets (if the server
    /// handed any out before) and the ones to personalise it with.
    pub fn enroll_begin(&self, request: &EnrollRequest) -> Result<EnrollReply, Failure> {
        self.post("enrollment", paths::ENROLLMENTS, request)
    }

    /// Ends an enrollment: `personalised` says whether the card now holds the `next` secrets
    /// (only then does the server record the card, its user and questions).
    /// `card_auth_key`: a PIV card's Card Authentication public key, for the server to record.
    pub fn enroll_done(
        &self,
        enrollment: &str,
        personalised: bool,
        card_auth_key: Option<&[u8]>,
        iso_profile: Option<&str>,
    ) -> Result<(), Failure> {
        if enrollment.is_empty() || !enrollment.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Failure::new(
                Kind::Server,
                "enrollment: the server's enrollment id is not hex",
            ));
        }
        let card_auth_key = card_auth_key
            .map(CardAuthKey::new)
            .transpose()
            .map_err(|e| Failure::new(Kind::Communication, format!("card: {e}")))?;
        let _: Done = self.post(
            "enrollment",
            &paths::enrollment(&enrollment.to_ascii_lowercase()),
            &EnrollDone {
                personalised,
                card_auth_key,
                iso_profile: iso_profile.map(str::to_string),
            },
        )?;
        Ok(())
    }

    /// Lifts the online-unlock lock of `card` (role `helpdesk`); `reason` goes to the audit.
    pub fn lift_lock(&self, card: &CardRef, reason: &str) -> Result<(), Failure> {
        let reason = note("reason", reason)?;
        let _: Done = self.post(
            "lift-lock",
            &paths::lift_lock(card.profile, &card.identity.to_hex()),
            &LiftLockRequest { reason },
        )?;
        Ok(())
    }

    /// The response to an ISO card's offline challenge (role `helpdesk`), computed by the
    /// server; `identity_checked` (how the caller was identified) goes to the audit.
    pub fn offline_response(
        &self,
        card: &CardRef,
        challenge: &str,
        identity_checked: &str,
    ) -> Result<OfflineReply, Failure> {
        let bytes = crate::hex::parse(challenge).map_err(|e| Failure::usage("challenge", e))?;
        let challenge =
            Challenge::new(bytes).map_err(|e| Failure::new(Kind::Usage, e.to_string()))?;
        let request = OfflineRequest {
            challenge,
            identity_checked: note("identity check", identity_checked)?,
        };
        self.post(
            "offline response",
            &paths::offline_response(card.profile, &card.identity.to_hex()),
            &request,
        )
    }

    /// A PIV card's PUK, read out to its holder (role `helpdesk`); `identity_checked` goes to
    /// the audit. The server marks the PUK read out until the card's next rotation. A server
    /// with four eyes on read-outs answers with a request instead: refused here, with its id
    /// (another operator approves it and the requester collects it in the console).
    pub fn puk_readout(
        &self,
        card: &CardRef,
        identity_checked: &str,
    ) -> Result<PukReadoutReply, Failure> {
        let request = PukReadoutRequest {
            identity_checked: note("identity check", identity_checked)?,
        };
        let reply: ReadoutBody = self.post(
            "PUK read-out",
            &paths::puk_readout(card.profile, &card.identity.to_hex()),
            &request,
        )?;
        match reply {
            ReadoutBody {
                puk: Some(puk),
                generation: Some(generation),
                alternative,
                ..
            } => Ok(PukReadoutReply {
                puk,
                generation,
                alternative,
            }),
            ReadoutBody {
                request: Some(id), ..
            } if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) => Err(Failure::new(
                Kind::Refused,
                format!(
                    "PUK read-out: this server wants a second operator: request {id} waits for \
                     another helpdesk operator's approval (console, Pending approvals); then \
                     collect the PUK on the card's console page"
                ),
            )),
            _ => Err(Failure::new(
                Kind::Server,
                "PUK read-out: the server's reply has neither a PUK nor a request",
            )),
        }
    }
}

/// An audit note (reason, identity check): 1 to `MAX_NOTE` bytes, not only spaces.
fn note(subject: &str, text: &str) -> Result<String, Failure> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Failure::usage(
            subject,
            "it is empty: say it in a few words",
        ));
    }
    if text.len() > cardunlock_protocol::operator::MAX_NOTE {
        return Err(Failure::usage(
            subject,
            format!(
                "it is longer than {} bytes",
                cardunlock_protocol::operator::MAX_NOTE
            ),
        ));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_identities_are_checked_and_normalised_before_any_path_is_built() {
        let card = card_ref(Profile::Iso, "0A0B 0C0d").unwrap();
        assert_eq!(card.identity.to_hex(), "0a0b0c0d");
        assert_eq!(
            paths::lift_lock(card.profile, &card.identity.to_hex()),
            "/v1/operator/cards/iso/0a0b0c0d/lift-lock"
        );
        for bad in ["", "../admin", "0g", "abc"] {
            let e = card_ref(Profile::Piv, bad).unwrap_err();
            assert_eq!(e.kind, Kind::Usage, "{bad}");
            assert!(e.message.starts_with("card identity: "), "{e}");
        }
    }

    #[test]
    fn audit_notes_are_required_and_bounded() {
        assert_eq!(
            note("reason", "  called back on file  ").unwrap(),
            "called back on file"
        );
        assert!(note("reason", "   ")
            .unwrap_err()
            .message
            .starts_with("reason: "));
        assert!(note("reason", &"x".repeat(501)).is_err());
    }

    #[test]
    fn credentials_and_sessions_keep_secrets_out_of_debug() {
        let c = Credentials {
            name: "alice".into(),
            password: Zeroizing::new("correct horse battery".into()),
            totp: Zeroizing::new("287082".into()),
        };
        let shown = format!("{c:?}");
        assert!(shown.contains("alice"), "{shown}");
        assert!(
            !shown.contains("horse") && !shown.contains("287082"),
            "{shown}"
        );
        let api = Api::new("https://127.0.0.1:1", TEST_CERT).unwrap();
        let op = Operator::resume(api, SessionToken::new("ab".repeat(32)), None);
        let shown = format!("{op:?}");
        assert!(!shown.contains("abab"), "{shown}");
    }

    #[test]
    fn unauthorized_is_its_own_kind_with_exit_code_1() {
        let body =
            cardunlock_protocol::ErrorBody::new(cardunlock_protocol::ErrorCode::Unauthorized, "");
        let f = failed("lift-lock", &ApiError::Refused(body));
        assert_eq!(f.kind, Kind::Unauthorized);
        assert_eq!(f.exit_code(), 1);
        assert!(f.message.starts_with("lift-lock: "), "{f}");
        assert!(f.message.contains("sign in again"), "{f}");
    }

    /// A self-signed certificate (never used to connect: the tests above send nothing).
    const TEST_CERT: &str = include_str!("operator/test-cert.pem");
}
