//! The unlock operations as a host or firmware calls them: raw user input in, the PIN policy
//! checked first (a PIN the policy refuses never reaches the card and never costs a try), then
//! the flow run over the driver.

use crate::driver::{Driver, Error};
use crate::flow::{
    AdminResponder, CardStatus, GidsUnblock, IsoUnblock, NoAdmin, NoAdminKey, PivUnblock,
    ReadStatus,
};
use crate::iso::IsoProfile;
use crate::policy::{PinPolicy, Violations};
use crate::secret::{NewPin, PivReference, SecretError};
use crate::transport::Transport;

/// Why an unlock did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum UnlockError<T, R> {
    /// The new PIN breaks the policy (every violation listed). Nothing was sent to the card.
    Policy(Violations),
    /// A PUK or PIN the card profile cannot take (length, characters). Nothing was sent.
    Input(SecretError),
    /// The unlock ran and failed: transport, protocol, card answer or responder.
    Card(Error<T, R>),
}

impl<T, R> From<Error<T, R>> for UnlockError<T, R> {
    fn from(e: Error<T, R>) -> Self {
        Self::Card(e)
    }
}

impl<T: core::fmt::Debug, R: core::fmt::Debug> core::fmt::Display for UnlockError<T, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Policy(v) => {
                f.write_str("the new PIN does not meet the PIN policy:")?;
                for violation in v.iter() {
                    write!(f, " {violation}")?;
                }
                Ok(())
            }
            Self::Input(SecretError::Length { min, max }) => {
                write!(f, "must be {min} to {max} characters long")
            }
            Self::Input(SecretError::Character) => {
                f.write_str("contains a character the card does not accept")
            }
            Self::Card(e) => write!(f, "{e}"),
        }
    }
}

/// Reads the card status (profile, identity, tries left) without spending any try.
pub async fn read_status<T: Transport>(
    driver: &mut Driver<T>,
    iso: IsoProfile<'_>,
) -> Result<CardStatus, Error<T::Error, NoAdminKey>> {
    driver.run(&mut ReadStatus::new(iso), &mut NoAdmin).await
}

/// PIV: unblocks the PIN with the PUK and sets `new_pin` (checked against `policy` and its
/// confirmation first; it may not equal the PUK).
pub async fn piv_unblock<T: Transport>(
    driver: &mut Driver<T>,
    policy: &PinPolicy<'_>,
    puk: &[u8],
    new_pin: &[u8],
    confirmation: &[u8],
) -> Result<(), UnlockError<T::Error, NoAdminKey>> {
    let pin =
        NewPin::new(policy, new_pin, confirmation, None, Some(puk)).map_err(UnlockError::Policy)?;
    let puk = PivReference::puk(puk).map_err(UnlockError::Input)?;
    let mut flow = PivUnblock::new(puk, &pin).map_err(UnlockError::Input)?;
    Ok(driver.run(&mut flow, &mut NoAdmin).await?)
}

/// The APDUs a [`piv_unblock_with`] spends beyond SELECT and RESET RETRY COUNTER.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PivUnblockOptions {
    /// GET METADATA `00 F7 00 81` first: a card that reports its PUK blocked is refused before
    /// RESET RETRY COUNTER (see [`PivUnblock::checking_puk_first`]).
    pub check_puk_first: bool,
    /// No VERIFY with the new PIN after the card's `90 00` (see [`PivUnblock::without_verify`]).
    pub skip_verify: bool,
}

impl PivUnblockOptions {
    /// What the CLI sends when it has the PUK and new PIN up front, in one exclusive session and
    /// without a status read of its own: SELECT, GET METADATA (PUK), RESET RETRY COUNTER.
    pub const LEAN: Self = Self {
        check_puk_first: true,
        skip_verify: true,
    };
}

/// [`piv_unblock`] with a choice of the APDUs around RESET RETRY COUNTER. The PIN policy and the
/// PUK's format are checked before anything is sent, whatever the options; a wrong PUK reports
/// the tries left from the card's answer to RESET RETRY COUNTER.
pub async fn piv_unblock_with<T: Transport>(
    driver: &mut Driver<T>,
    policy: &PinPolicy<'_>,
    puk: &[u8],
    new_pin: &[u8],
    confirmation: &[u8],
    options: PivUnblockOptions,
) -> Result<(), UnlockError<T::Error, NoAdminKey>> {
    let pin =
        NewPin::new(policy, new_pin, confirmation, None, Some(puk)).map_err(UnlockError::Policy)?;
    let puk = PivReference::puk(puk).map_err(UnlockError::Input)?;
    let mut flow = PivUnblock::new(puk, &pin).map_err(UnlockError::Input)?;
    if options.check_puk_first {
        flow = flow.checking_puk_first();
    }
    if options.skip_verify {
        flow = flow.without_verify();
    }
    Ok(driver.run(&mut flow, &mut NoAdmin).await?)
}

/// Whether an admin unblock starts by selecting the card's application.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Select {
    /// SELECT first (a new session, or another program may have selected something else).
    #[default]
    Application,
    /// The caller's [`read_status`] selected the application in this same exclusive session:
    /// the flow starts at its first admin command, without a second SELECT.
    AlreadySelected,
}

/// GIDS: unblocks with the admin key (through `responder`) and sets `new_pin`. `r1` is the host
/// random of the mutual authentication (from a CSPRNG).
pub async fn gids_unblock<T: Transport, R: AdminResponder>(
    driver: &mut Driver<T>,
    policy: &PinPolicy<'_>,
    new_pin: &[u8],
    confirmation: &[u8],
    r1: [u8; 16],
    responder: &mut R,
) -> Result<(), UnlockError<T::Error, R::Error>> {
    gids_unblock_with(
        driver,
        policy,
        new_pin,
        confirmation,
        r1,
        responder,
        Select::Application,
    )
    .await
}

/// [`gids_unblock`], choosing whether to SELECT the GIDS application first.
pub async fn gids_unblock_with<T: Transport, R: AdminResponder>(
    driver: &mut Driver<T>,
    policy: &PinPolicy<'_>,
    new_pin: &[u8],
    confirmation: &[u8],
    r1: [u8; 16],
    responder: &mut R,
    select: Select,
) -> Result<(), UnlockError<T::Error, R::Error>> {
    let pin =
        NewPin::new(policy, new_pin, confirmation, None, None).map_err(UnlockError::Policy)?;
    let mut flow = GidsUnblock::new(&pin, r1);
    if select == Select::AlreadySelected {
        flow = flow.without_select();
    }
    Ok(driver.run(&mut flow, responder).await?)
}

/// ISO admin card: unblocks with the answer to the card's challenge (through `responder`: a key,
/// a server, or the operator's response typed by the user) and sets `new_pin`.
pub async fn iso_unblock<T: Transport, R: AdminResponder>(
    driver: &mut Driver<T>,
    profile: IsoProfile<'_>,
    policy: &PinPolicy<'_>,
    new_pin: &[u8],
    confirmation: &[u8],
    responder: &mut R,
) -> Result<(), UnlockError<T::Error, R::Error>> {
    iso_unblock_with(
        driver,
        profile,
        policy,
        new_pin,
        confirmation,
        responder,
        Select::Application,
    )
    .await
}

/// [`iso_unblock`], choosing whether to SELECT the admin application first.
pub async fn iso_unblock_with<T: Transport, R: AdminResponder>(
    driver: &mut Driver<T>,
    profile: IsoProfile<'_>,
    policy: &PinPolicy<'_>,
    new_pin: &[u8],
    confirmation: &[u8],
    responder: &mut R,
    select: Select,
) -> Result<(), UnlockError<T::Error, R::Error>> {
    let pin =
        NewPin::new(policy, new_pin, confirmation, None, None).map_err(UnlockError::Policy)?;
    let mut flow = IsoUnblock::new(profile, &pin);
    if select == Select::AlreadySelected {
        flow = flow.without_select();
    }
    Ok(driver.run(&mut flow, responder).await?)
}
