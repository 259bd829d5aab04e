//! The card's status: read once at the start of an unlock, and shown as one line for people.

use cardunlock_core::crypto::Algorithm;
use cardunlock_core::driver::Driver;
use cardunlock_core::flow::{CardStatus, Profile, ReadStatus};
use cardunlock_core::iso::IsoProfile;
use cardunlock_core::{Transport, TransportError};
use embassy_futures::block_on;

use crate::failure::{self, Failure, Kind};

/// Reads the card's status (status queries only: no try is spent) and the ISO admin profile the
/// unlock that follows uses: the algorithm given, else the one an ISO card reports, else 3DES.
/// `responder` is the kind of a failure that is not the card's (see [`failure::card`]).
pub(crate) fn read<T: Transport>(
    driver: &mut Driver<T>,
    iso_algorithm: Option<Algorithm>,
    responder: Kind,
) -> Result<(CardStatus, IsoProfile<'static>), Failure>
where
    T::Error: TransportError + std::fmt::Display,
{
    let probe = IsoProfile {
        algorithm: iso_algorithm.unwrap_or(Algorithm::TripleDes),
        ..IsoProfile::SIM
    };
    // An unlock never uses a PIV card's admin key: its algorithm is not read (one APDU less).
    let mut read = ReadStatus::new(probe).without_admin_key();
    let status =
        block_on(driver.run_without_admin(&mut read)).map_err(|e| failure::card(&e, responder))?;
    let iso = IsoProfile {
        algorithm: iso_algorithm
            .or(status
                .admin_algorithm
                .filter(|_| status.profile == Profile::IsoAdmin))
            .unwrap_or(Algorithm::TripleDes),
        ..IsoProfile::SIM
    };
    Ok((status, iso))
}

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
