//! The card's status: read once at the start of an unlock, and shown as one line for people.

use cardunlock_core::crypto::Algorithm;
use cardunlock_core::driver::{Driver, Error};
use cardunlock_core::flow::{CardStatus, FlowError, ReadStatus};
use cardunlock_core::Transport;
use embassy_futures::block_on;

use crate::failure::{self, CardError, Failure, Kind};
use crate::iso_profiles::{default_path, IsoProfileEntry, IsoProfiles};

/// Reads the card's status (status queries only: no try is spent), trying PIV, GIDS, then each
/// of the workstation's ISO profiles in order, and the ISO profile that answered (`None` for
/// PIV and GIDS). `responder` is the kind of a failure that is not the card's (see
/// [`failure::card`]).
pub(crate) fn read<'p, T: Transport>(
    driver: &mut Driver<T>,
    profiles: &'p IsoProfiles,
    iso_algorithm: Option<Algorithm>,
    responder: Kind,
) -> Result<(CardStatus, Option<&'p IsoProfileEntry>), Failure>
where
    T::Error: CardError,
{
    let probes = profiles.probes(iso_algorithm);
    // An unlock never uses a PIV card's admin key: its algorithm is not read (one APDU less).
    let mut read = ReadStatus::with_iso_profiles(&probes).without_admin_key();
    let status = block_on(driver.run_without_admin(&mut read))
        .map_err(|e| read_failure(e, profiles, responder))?;
    let entry = status.iso_profile.and_then(|i| profiles.entries().get(i));
    Ok((status, entry))
}

/// The failure of a status read that tried `profiles`: a card that answers as none of them
/// says which were tried ([`unknown_card`]); the rest as [`failure::card`].
pub fn read_failure<T: CardError, R: std::fmt::Display>(
    e: Error<T, R>,
    profiles: &IsoProfiles,
    responder: Kind,
) -> Failure {
    match e {
        Error::Flow(FlowError::UnknownCard) => unknown_card(profiles),
        e => failure::card(e, responder),
    }
}

/// A card that is neither PIV, GIDS nor one of the configured ISO profiles.
pub fn unknown_card(profiles: &IsoProfiles) -> Failure {
    let tried = if profiles.is_empty() {
        format!(
            "no configured ISO profile either (none is configured: an administrator adds the \
             card's profile to the workstation's {} (or a file given with --iso-profiles) or, \
             for the login screen, under \
             HKLM\\SOFTWARE\\cardunlock\\IsoProfiles)",
            default_path().display()
        )
    } else {
        format!(
            "no configured ISO profile either (tried {})",
            profiles.names()
        )
    };
    Failure::new(
        Kind::Refused,
        format!("card: it answers as no PIV or GIDS card, and as {tried}"),
    )
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
