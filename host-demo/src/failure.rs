//! One mapping from every layer's error to what the user reads and the exit code.

use std::fmt::{Debug, Display};

use cardunlock_core::driver::Error;
use cardunlock_core::flow::FlowError;
use cardunlock_core::policy::Violations;
use cardunlock_core::unlock::UnlockError;
use cardunlock_core::{ErrorKind, TransportError};

use crate::{exit, Failure};

/// A transport failure: no service / reader / card is exit 4, anything mid-flow exit 5.
pub fn transport<T: TransportError + Display>(t: &T) -> Failure {
    let code = match t.kind() {
        ErrorKind::NoCard | ErrorKind::Unavailable => exit::NO_CARD,
        _ => exit::COMMUNICATION,
    };
    Failure::new(code, t.to_string())
}

/// What the card's answer means for the user.
pub fn flow_message(e: &FlowError) -> String {
    match e {
        FlowError::WrongPuk { tries_left: 1 } => "Wrong PUK. 1 try left before the PUK is blocked.".into(),
        FlowError::WrongPuk { tries_left } => format!("Wrong PUK. {tries_left} tries left."),
        FlowError::PukBlocked => {
            "The PUK is blocked: this card cannot be unblocked with a PUK any more. Contact your administrator.".into()
        }
        FlowError::AdminAuthFailed { .. } => {
            format!("The response was not accepted by the card ({e}). Check it with your operator and try again.")
        }
        e => e.to_string(),
    }
}

/// Every policy violation, one per line.
pub fn policy_message(v: &Violations) -> String {
    let mut m =
        String::from("The new PIN does not meet the PIN policy (the card was not touched):");
    for violation in v.iter() {
        m += &format!("\n  - {violation}");
    }
    m
}

/// A failed flow. `responder` is the exit code for a responder failure (bad operator input:
/// usage; the server: server).
pub fn card<T: TransportError + Display, R: Debug + Display>(
    e: &Error<T, R>,
    responder: u8,
) -> Failure {
    match e {
        Error::Transport(t) => transport(t),
        Error::Protocol(p) => {
            Failure::new(exit::COMMUNICATION, format!("card protocol error: {p:?}"))
        }
        Error::Flow(f) => Failure::new(exit::REFUSED, flow_message(f)),
        // The responder failed before its answer reached the card.
        Error::Responder(r) => Failure::new(responder, format!("no admin response: {r}")),
        _ => Failure::new(exit::COMMUNICATION, e.to_string()),
    }
}

/// A failed unlock entry point.
pub fn unlock<T: TransportError + Display, R: Debug + Display>(
    e: &UnlockError<T, R>,
    responder: u8,
) -> Failure {
    match e {
        UnlockError::Policy(v) => Failure::new(exit::POLICY, policy_message(v)),
        UnlockError::Input(_) => Failure::new(exit::USAGE, e.to_string()),
        UnlockError::Card(c) => card(c, responder),
        _ => Failure::new(exit::USAGE, e.to_string()),
    }
}
