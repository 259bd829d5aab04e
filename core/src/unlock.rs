//! The unlock operations as a host or firmware calls them. Raw user input becomes typed values
//! first ([`piv_input`], [`admin_input`], or the constructors of [`PivReference`] and
//! [`NewPin`]): a PIN the policy refuses never reaches the card and never costs a try. The
//! entry points take only those typed values and run the flow over the driver.

use crate::driver::{Driver, Error};
use crate::flow::{
    AdminResponder, CardStatus, GidsUnblock, IsoUnblock, NoAdmin, NoAdminKey, PivUnblock,
    ReadStatus, Selected,
};
use crate::iso::IsoProfile;
use crate::policy::{PinPolicy, Violations};
use crate::secret::{NewPin, PivReference, SecretError};
use crate::transport::Transport;

/// Why raw user input did not become the typed values an unlock takes. Nothing was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum InputError {
    /// The new PIN breaks the policy (every violation listed).
    Policy(Violations),
    /// The PUK is not one a PIV card takes (6 to 8 bytes, no `FF`).
    Puk(SecretError),
    /// The new PIN is not one the card profile takes (PIV: 6 to 8 digits).
    NewPin(SecretError),
}

impl core::fmt::Display for InputError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Policy(v) => write!(f, "{v}"),
            Self::Puk(e) => write!(f, "the PUK {e}"),
            Self::NewPin(e) => write!(f, "the new PIN {e}"),
        }
    }
}

impl core::error::Error for InputError {}

/// Checks a PIV unblock's raw input before anything is sent: the PUK's format, then the new PIN
/// against `policy`, its confirmation and the PUK, then the PIV PIN format (6 to 8 digits).
/// The typed values it returns are what [`piv_unblock`] takes.
pub fn piv_input(
    policy: &PinPolicy<'_>,
    puk: &[u8],
    new_pin: &[u8],
    confirmation: &[u8],
) -> Result<(PivReference, NewPin), InputError> {
    let pin =
        NewPin::new(policy, new_pin, confirmation, None, Some(puk)).map_err(InputError::Policy)?;
    let puk = PivReference::puk(puk).map_err(InputError::Puk)?;
    PivReference::pin(pin.pin().expose()).map_err(InputError::NewPin)?;
    Ok((puk, pin))
}

/// Checks an admin unblock's new PIN (GIDS, ISO) against `policy` and its confirmation.
pub fn admin_input(
    policy: &PinPolicy<'_>,
    new_pin: &[u8],
    confirmation: &[u8],
) -> Result<NewPin, InputError> {
    NewPin::new(policy, new_pin, confirmation, None, None).map_err(InputError::Policy)
}

/// Why an unlock did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
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

impl<T, R> From<InputError> for UnlockError<T, R> {
    fn from(e: InputError) -> Self {
        match e {
            InputError::Policy(v) => Self::Policy(v),
            InputError::Puk(e) | InputError::NewPin(e) => Self::Input(e),
        }
    }
}

impl<T: core::fmt::Display, R: core::fmt::Display> core::fmt::Display for UnlockError<T, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Policy(v) => write!(f, "{v}"),
            Self::Input(e) => write!(f, "{e}"),
            Self::Card(e) => write!(f, "{e}"),
        }
    }
}

impl<T, R> core::error::Error for UnlockError<T, R>
where
    T: core::error::Error + 'static,
    R: core::error::Error + 'static,
{
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Policy(v) => Some(v),
            Self::Input(e) => Some(e),
            Self::Card(e) => Some(e),
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

/// [`read_status`], also returning the [`Selected`] token that lets the unblock that follows
/// in the same exclusive session skip its SELECT ([`Select::After`]).
pub async fn read_status_selected<T: Transport>(
    driver: &mut Driver<T>,
    iso: IsoProfile<'_>,
) -> Result<(CardStatus, Selected), Error<T::Error, NoAdminKey>> {
    let mut flow = ReadStatus::new(iso);
    let status = driver.run(&mut flow, &mut NoAdmin).await?;
    let selected = flow
        .into_selected()
        .ok_or(Error::Flow(crate::flow::FlowError::UnexpectedEvent))?;
    Ok((status, selected))
}

/// PIV: unblocks the PIN with `puk` and sets `new_pin` (both checked by [`piv_input`] or their
/// own constructors before this is called).
pub async fn piv_unblock<T: Transport>(
    driver: &mut Driver<T>,
    puk: &PivReference,
    new_pin: &NewPin,
) -> Result<(), UnlockError<T::Error, NoAdminKey>> {
    piv_unblock_with(driver, puk, new_pin, PivUnblockOptions::default()).await
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

/// [`piv_unblock`] with a choice of the APDUs around RESET RETRY COUNTER. A new PIN that is not
/// 6 to 8 digits is refused before anything is sent, whatever the options; a wrong PUK reports
/// the tries left from the card's answer to RESET RETRY COUNTER.
pub async fn piv_unblock_with<T: Transport>(
    driver: &mut Driver<T>,
    puk: &PivReference,
    new_pin: &NewPin,
    options: PivUnblockOptions,
) -> Result<(), UnlockError<T::Error, NoAdminKey>> {
    let mut flow = PivUnblock::new(puk.clone(), new_pin).map_err(UnlockError::Input)?;
    if options.check_puk_first {
        flow = flow.checking_puk_first();
    }
    if options.skip_verify {
        flow = flow.without_verify();
    }
    Ok(driver.run(&mut flow, &mut NoAdmin).await?)
}

/// Whether an admin unblock starts by selecting the card's application.
#[derive(Debug, Default, PartialEq, Eq)]
pub enum Select {
    /// SELECT first (a new session, or another program may have selected something else).
    #[default]
    Application,
    /// The caller's [`read_status_selected`] selected the application in this same exclusive
    /// session: the flow starts at its first admin command, without a second SELECT.
    After(Selected),
}

/// GIDS: unblocks with the admin key (through `responder`) and sets `new_pin`. `r1` is the host
/// random of the mutual authentication (from a CSPRNG).
pub async fn gids_unblock<T: Transport, R: AdminResponder>(
    driver: &mut Driver<T>,
    new_pin: &NewPin,
    r1: [u8; 16],
    responder: &mut R,
) -> Result<(), UnlockError<T::Error, R::Error>> {
    gids_unblock_with(driver, new_pin, r1, responder, Select::Application).await
}

/// [`gids_unblock`], choosing whether to SELECT the GIDS application first.
pub async fn gids_unblock_with<T: Transport, R: AdminResponder>(
    driver: &mut Driver<T>,
    new_pin: &NewPin,
    r1: [u8; 16],
    responder: &mut R,
    select: Select,
) -> Result<(), UnlockError<T::Error, R::Error>> {
    let mut flow = GidsUnblock::new(new_pin, r1);
    if let Select::After(selected) = select {
        flow = flow.after(selected);
    }
    Ok(driver.run(&mut flow, responder).await?)
}

/// ISO admin card: unblocks with the answer to the card's challenge (through `responder`: a key,
/// a server, or the operator's response typed by the user) and sets `new_pin`.
pub async fn iso_unblock<T: Transport, R: AdminResponder>(
    driver: &mut Driver<T>,
    profile: IsoProfile<'_>,
    new_pin: &NewPin,
    responder: &mut R,
) -> Result<(), UnlockError<T::Error, R::Error>> {
    iso_unblock_with(driver, profile, new_pin, responder, Select::Application).await
}

/// [`iso_unblock`], choosing whether to SELECT the admin application first.
pub async fn iso_unblock_with<T: Transport, R: AdminResponder>(
    driver: &mut Driver<T>,
    profile: IsoProfile<'_>,
    new_pin: &NewPin,
    responder: &mut R,
    select: Select,
) -> Result<(), UnlockError<T::Error, R::Error>> {
    let mut flow = IsoUnblock::new(profile, new_pin);
    if let Select::After(selected) = select {
        flow = flow.after(selected);
    }
    Ok(driver.run(&mut flow, responder).await?)
}
