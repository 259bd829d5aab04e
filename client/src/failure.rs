//! What went wrong: a [`Kind`] for a program to branch on (exit codes, GUI screens) and a
//! message for the person that names what it is about. Every layer's error maps here once.

use std::fmt::{Debug, Display};

use cardunlock_core::driver::Error;
use cardunlock_core::flow::FlowError;
use cardunlock_core::policy::Violations;
use cardunlock_core::secret::{PivPuk, SecretError};
use cardunlock_core::unlock::{InputError, UnlockError};
use cardunlock_core::{ErrorKind, TransportError};

/// The documented process exit codes of `cardunlock`.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The card or the server refused: wrong PUK or response, blocked, wrong answers, locked.
    pub const REFUSED: u8 = 1;
    /// Bad usage or input, or the user cancelled.
    pub const USAGE: u8 = 2;
    /// The new PIN breaks the PIN policy; the card was not touched.
    pub const POLICY: u8 = 3;
    /// No PC/SC service or USB access, no reader, no card, reader in use.
    pub const NO_CARD: u8 = 4;
    /// Card removed or communication failure in the middle of a flow.
    pub const COMMUNICATION: u8 = 5;
    /// The unlock server is unreachable or answered nonsense; the card was not changed.
    pub const SERVER: u8 = 6;
}

/// What went wrong, for a program to branch on (exit codes and GUI screens derive from it).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// The card refused: wrong PUK or response, blocked (exit 1).
    Refused,
    /// Bad input (exit 2).
    Usage,
    /// The new PIN breaks the policy; the card was not touched (exit 3).
    Policy,
    /// No reader, card or service (exit 4).
    NoCard,
    /// Card removed or link failure mid-flow (exit 5).
    Communication,
    /// The server is unreachable or answered nonsense; the card was not touched (exit 6).
    Server,
    /// The answers were wrong; more attempts are left (exit 1).
    WrongAnswers {
        /// Attempts left before online unlock is locked for the card.
        attempts_left: u32,
    },
    /// Online unlock is locked for this card (exit 1).
    Locked,
    /// No security questions are enrolled for this card, or (PIV) the card could not be
    /// verified for online unlock: use offline unlock (exit 1).
    NoQuestions,
    /// The user cancelled (exit 2).
    Cancelled,
    /// Operator API: sign-in refused (name, password or code), or the operator's session is
    /// unknown, signed out or expired: sign in again (exit 1).
    Unauthorized,
}

/// A failure: its kind, a message that names what it is about, and (when it came from one)
/// the error under it, which [`std::error::Error::source`] returns.
#[derive(Debug, Clone)]
pub struct Failure {
    /// What kind of failure.
    pub kind: Kind,
    /// The message for the person, naming its subject ("new PIN: ...").
    pub message: String,
    source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
}

impl Failure {
    /// A failure of `kind` with `message`.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// The same failure, caused by `source`.
    pub fn caused_by(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(std::sync::Arc::new(source));
        self
    }

    /// Bad input about `subject`: "`subject`: `problem`".
    pub fn usage(subject: &str, problem: impl Display) -> Self {
        Self::new(Kind::Usage, format!("{subject}: {problem}"))
    }

    /// The same failure with its message prefixed by `subject`.
    pub fn about(mut self, subject: &str) -> Self {
        self.message = format!("{subject}: {}", self.message);
        self
    }

    /// The documented process exit code (see [`exit`]).
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            Kind::Refused
            | Kind::WrongAnswers { .. }
            | Kind::Locked
            | Kind::NoQuestions
            | Kind::Unauthorized => exit::REFUSED,
            Kind::Usage | Kind::Cancelled => exit::USAGE,
            Kind::Policy => exit::POLICY,
            Kind::NoCard => exit::NO_CARD,
            Kind::Communication => exit::COMMUNICATION,
            Kind::Server => exit::SERVER,
        }
    }
}

impl Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The error of a transport the client runs flows over: a [`TransportError`] that is also a
/// `std::error::Error` which may cross threads, so a [`Failure`] keeps it as its `source`.
/// Every transport of the workspace qualifies (implemented for each such type).
pub trait CardError: TransportError + std::error::Error + Send + Sync + 'static {}

impl<T: TransportError + std::error::Error + Send + Sync + 'static> CardError for T {}

/// A transport failure: no service / reader / card is [`Kind::NoCard`], anything mid-flow
/// [`Kind::Communication`]. The message is the error's; the error itself is kept as the
/// failure's `source` (for a caller that tells transport errors apart, or logs the chain).
pub fn transport<T>(t: &T) -> Failure
where
    T: TransportError + std::error::Error + Clone + Send + Sync + 'static,
{
    transport_message(t).caused_by(t.clone())
}

fn transport_message<T: TransportError + Display>(t: &T) -> Failure {
    let kind = match t.kind() {
        ErrorKind::NoCard | ErrorKind::Unavailable => Kind::NoCard,
        _ => Kind::Communication,
    };
    Failure::new(kind, t.to_string())
}

/// What the card's answer means for the user.
pub fn flow_message(e: &FlowError) -> String {
    match e {
        FlowError::WrongPuk { tries_left: 1 } => {
            "Wrong PUK. 1 try left before the PUK is blocked.".into()
        }
        FlowError::WrongPuk { tries_left } => format!("Wrong PUK. {tries_left} tries left."),
        FlowError::PukBlocked => {
            "The PUK is blocked: this card cannot be unblocked with a PUK any \
             more. Contact your administrator."
                .into()
        }
        FlowError::AdminAuthFailed { .. } => format!(
            "The response was not accepted by the card ({e}). Check it with your operator and \
             try again."
        ),
        e => e.to_string(),
    }
}

/// Every policy violation, one per line, under a line that names the new PIN.
pub fn policy_message(v: &Violations) -> String {
    let mut m =
        String::from("The new PIN does not meet the PIN policy (the card was not touched):");
    for violation in v.iter() {
        m += &format!("\n  - {violation}");
    }
    m
}

/// Every policy violation, one line each (for [`crate::online::Event::PinRefused`]).
pub fn policy_lines(v: &Violations) -> Vec<String> {
    v.iter().map(|violation| violation.to_string()).collect()
}

/// A failed flow. `responder` is the kind of a responder failure (bad operator input:
/// [`Kind::Usage`]; the server: [`Kind::Server`]). A transport failure keeps the transport's
/// error as the failure's `source`.
pub fn card<T: CardError, R: Display>(e: Error<T, R>, responder: Kind) -> Failure {
    match e {
        Error::Transport(t) => transport_message(&t).caused_by(t),
        Error::Protocol(p) => {
            Failure::new(Kind::Communication, format!("card protocol error: {p}"))
        }
        Error::Flow(f) => Failure::new(Kind::Refused, flow_message(&f)),
        // The responder failed before its answer reached the card.
        Error::Responder(r) => Failure::new(responder, format!("no admin response: {r}")),
        other => Failure::new(Kind::Communication, format!("card: {other}")),
    }
}

/// What is wrong with a PIN or PUK the card cannot take.
pub fn input_message(e: &SecretError) -> String {
    match e {
        SecretError::Length { min, max } if min == max => {
            format!("it must be {min} characters long")
        }
        SecretError::Length { min, max } => format!("it must be {min} to {max} characters long"),
        SecretError::Character => "it contains a character the card does not accept".into(),
        other => other.to_string(),
    }
}

/// Checks a PIV PUK before it goes anywhere: "PUK: it must be 8 characters long".
pub fn check_puk(puk: &str) -> Result<(), Failure> {
    PivPuk::new(puk.as_bytes())
        .map(|_| ())
        .map_err(|e| Failure::usage("PUK", input_message(&e)))
}

/// Input an unlock cannot take, named by what it is about. Nothing was sent to the card.
pub fn input(e: &InputError) -> Failure {
    match e {
        InputError::Policy(v) => Failure::new(Kind::Policy, policy_message(v)),
        InputError::Puk(e) => Failure::usage("PUK", input_message(e)),
        other => Failure::usage("input", other.to_string()),
    }
}

/// A failed unlock entry point.
pub fn unlock<T: CardError, R: Display>(e: UnlockError<T, R>, responder: Kind) -> Failure {
    match e {
        UnlockError::Policy(v) => Failure::new(Kind::Policy, policy_message(&v)),
        // The PUK is checked with its name before the entry points (`check_puk`): what is
        // left is the new PIN.
        UnlockError::Input(i) => Failure::usage("new PIN", input_message(&i)),
        UnlockError::Card(c) => card(c, responder),
        other => Failure::new(Kind::Refused, format!("unlock: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transport failure keeps the transport's error as its `source` (removing the
    /// `caused_by` fails this), with the kind the documented exit code needs.
    #[test]
    fn a_transport_failure_keeps_its_error() {
        let f = transport(&ErrorKind::CardRemoved);
        assert_eq!(f.kind, Kind::Communication);
        assert_eq!(f.message, ErrorKind::CardRemoved.to_string());
        let source = std::error::Error::source(&f).expect("the transport error");
        assert_eq!(
            source.downcast_ref::<ErrorKind>(),
            Some(&ErrorKind::CardRemoved)
        );
        assert_eq!(transport(&ErrorKind::Unavailable).kind, Kind::NoCard);
    }

    #[test]
    fn exit_codes_follow_the_documented_table() {
        for (kind, code) in [
            (Kind::Refused, 1),
            (Kind::WrongAnswers { attempts_left: 2 }, 1),
            (Kind::Locked, 1),
            (Kind::NoQuestions, 1),
            (Kind::Usage, 2),
            (Kind::Cancelled, 2),
            (Kind::Policy, 3),
            (Kind::NoCard, 4),
            (Kind::Communication, 5),
            (Kind::Server, 6),
        ] {
            assert_eq!(
                Failure::new(kind.clone(), "m").exit_code(),
                code,
                "{kind:?}"
            );
        }
        assert_eq!(
            Failure::usage("new PIN", "too short").to_string(),
            "new PIN: too short"
        );
    }
}
