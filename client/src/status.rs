//! The card's status as one line for people.

use cardunlock_core::flow::CardStatus;

/// What every successful unlock ends with.
pub const UNLOCKED: &str = "The smart card has been unlocked successfully.";

/// "PIV card, id 3019..., PIN BLOCKED, PUK tries left 3, admin key 3DES".
pub fn describe(status: &CardStatus) -> String {
    let mut s = format!("{} card", status.profile.name().to_uppercase());
    if let Some(id) = status.identity {
        s += &format!(", id {id}");
    }
    match status.pin_tries_left {
        Some(0) => s += ", PIN BLOCKED",
        Some(n) => s += &format!(", PIN tries left {n}"),
        None if status.pin_verified => s += ", PIN verified",
        None => {}
    }
    if let Some(n) = status.puk_tries_left {
        s += &format!(", PUK tries left {n}");
    }
    if let Some(alg) = status.admin_algorithm {
        s += &format!(", admin key {alg}");
    }
    s
}
