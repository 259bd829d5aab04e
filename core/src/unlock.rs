//! The unlock operations as a host or firmware calls them. Raw user input becomes typed values
//! first ([`piv_input`], [`admin_input`], or the constructors of [`PivPuk`] and [`NewPin`]): a
//! PIN the policy refuses never reaches the card and never costs a try. The entry points take
//! only those typed values, borrowed, and run the flow over the driver. Their errors say what
//! kind of failure it was ([`UnlockError::kind`]) and how many tries are left
//! ([`UnlockError::tries_left`]); the PIV ones name no admin responder
//! (`UnlockError<T::Error>`).

use core::convert::Infallible;

use crate::driver::{Driver, Error};
use crate::flow::{
    AdminResponder, CardStatus, FlowErrorKind, GidsUnblock, IsoUnblock, PivUnblock, ReadStatus,
    Selected,
};
use crate::iso::IsoProfile;
use crate::policy::{PinPolicy, Violations};
use crate::secret::{NewPin, PinContext, PivPin, PivPuk, SecretError};
use crate::transport::{ErrorKind, Transport, TransportError};

pub use crate::flow::PivUnblockOptions;

/// Why raw user input did not become the typed values an unlock takes. Nothing was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum InputError {
    /// The new PIN breaks the policy or the profile's PIN format (every violation listed).
    Policy(Violations),
    /// The PUK is not one a PIV card takes (6 to 8 bytes, no `FF`).
    Puk(SecretError),
}

impl core::fmt::Display for InputError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Policy(v) => write!(f, "{v}"),
            Self::Puk(e) => write!(f, "the PUK {e}"),
        }
    }
}

impl core::error::Error for InputError {}

/// Checks a PIV unblock's raw input before anything is sent: the new PIN against `policy`, its
/// confirmation, the PUK and the PIV PIN format (6 to 8 digits), then the PUK's format.
/// The typed values it returns are what [`piv_unblock`] takes.
pub fn piv_input(
    policy: &PinPolicy<'_>,
    puk: &[u8],
    new_pin: &[u8],
    confirmation: &[u8],
) -> Result<(PivPuk, NewPin<PivPin>), InputError> {
    let pin = NewPin::confirmed(policy, new_pin, confirmation, PinContext::NONE.puk(puk))
        .map_err(InputError::Policy)?;
    let puk = PivPuk::new(puk).map_err(InputError::Puk)?;
    Ok((puk, pin))
}

/// Checks an admin unblock's new PIN (GIDS, ISO) against `policy` and its confirmation.
pub fn admin_input(
    policy: &PinPolicy<'_>,
    new_pin: &[u8],
    confirmation: &[u8],
) -> Result<NewPin, InputError> {
    NewPin::confirmed(policy, new_pin, confirmation, PinContext::NONE).map_err(InputError::Policy)
}

/// Why an unlock did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum UnlockError<T, R = Infallible> {
    /// The new PIN breaks the policy (every violation listed). Nothing was sent to the card.
    Policy(Violations),
    /// A PUK the card profile cannot take (length, characters). Nothing was sent.
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
            InputError::Puk(e) => Self::Input(e),
        }
    }
}

/// What kind of failure an [`UnlockError`] is, for callers that act on the category (exit codes,
/// a firmware's LED, an HTTP status) rather than the detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum UnlockErrorKind {
    /// The new PIN breaks the policy. Nothing was sent.
    Policy,
    /// A PUK the profile cannot take. Nothing was sent.
    Input,
    /// The transport failed (no card, card removed, reader gone ...).
    Transport(ErrorKind),
    /// The card or reader broke the APDU rules, or the card answered outside the protocol.
    Protocol,
    /// The card is not of the expected profile.
    WrongCard,
    /// A secret (PUK, admin key or answer) was wrong; tries were spent
    /// ([`UnlockError::tries_left`] says how many are left).
    WrongSecret,
    /// The secret is blocked.
    Blocked,
    /// The card refused the new PIN.
    PinRejected,
    /// The card could not prove it holds the admin key; nothing was changed on it.
    CardNotAuthentic,
    /// The admin responder (key, server, operator) could not answer.
    Responder,
}

impl core::fmt::Display for UnlockErrorKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Policy => f.write_str("PIN policy"),
            Self::Input => f.write_str("invalid input"),
            Self::Transport(kind) => write!(f, "card transport ({kind})"),
            Self::Protocol => f.write_str("protocol error"),
            Self::WrongCard => f.write_str("wrong card"),
            Self::WrongSecret => f.write_str("wrong secret"),
            Self::Blocked => f.write_str("blocked"),
            Self::PinRejected => f.write_str("new PIN rejected"),
            Self::CardNotAuthentic => f.write_str("card not authentic"),
            Self::Responder => f.write_str("admin responder"),
        }
    }
}

impl core::error::Error for UnlockErrorKind {}

impl<T, R> UnlockError<T, R> {
    /// Tries left on the secret that was wrong (the PUK, the admin key), when the card said;
    /// `Some(0)` when it is blocked.
    pub fn tries_left(&self) -> Option<u8> {
        match self {
            Self::Card(e) => e.tries_left(),
            Self::Policy(_) | Self::Input(_) => None,
        }
    }
}

impl<T: TransportError, R> UnlockError<T, R> {
    /// The category of this error.
    pub fn kind(&self) -> UnlockErrorKind {
        match self {
            Self::Policy(_) => UnlockErrorKind::Policy,
            Self::Input(_) => UnlockErrorKind::Input,
            Self::Card(Error::Transport(t)) => UnlockErrorKind::Transport(t.kind()),
            Self::Card(Error::Protocol(_)) => UnlockErrorKind::Protocol,
            Self::Card(Error::Responder(_)) => UnlockErrorKind::Responder,
            Self::Card(Error::Flow(f)) => match f.kind() {
                FlowErrorKind::WrongCard => UnlockErrorKind::WrongCard,
                FlowErrorKind::WrongSecret => UnlockErrorKind::WrongSecret,
                FlowErrorKind::Blocked => UnlockErrorKind::Blocked,
                FlowErrorKind::PinRejected => UnlockErrorKind::PinRejected,
                FlowErrorKind::CardNotAuthentic => UnlockErrorKind::CardNotAuthentic,
                FlowErrorKind::Protocol => UnlockErrorKind::Protocol,
            },
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
pub async fn read_status<T: Transport, const SEND: usize, const RECV: usize>(
    driver: &mut Driver<T, SEND, RECV>,
    iso: IsoProfile<'_>,
) -> Result<CardStatus, Error<T::Error>> {
    driver.run_without_admin(&mut ReadStatus::new(iso)).await
}

/// [`read_status`] probing each of `isos` in order after PIV and GIDS (none: only PIV and GIDS
/// are recognised); [`CardStatus::iso_profile`] says which one answered.
pub async fn read_status_with<T: Transport, const SEND: usize, const RECV: usize>(
    driver: &mut Driver<T, SEND, RECV>,
    isos: &[IsoProfile<'_>],
) -> Result<CardStatus, Error<T::Error>> {
    driver
        .run_without_admin(&mut ReadStatus::with_iso_profiles(isos))
        .await
}

/// [`read_status_with`], also returning the [`Selected`] token (see [`read_status_selected`]).
pub async fn read_status_selected_with<T: Transport, const SEND: usize, const RECV: usize>(
    driver: &mut Driver<T, SEND, RECV>,
    isos: &[IsoProfile<'_>],
) -> Result<(CardStatus, Selected), Error<T::Error>> {
    let mut flow = ReadStatus::with_iso_profiles(isos);
    let status = driver.run_without_admin(&mut flow).await?;
    let selected = flow
        .into_selected()
        .ok_or(Error::Flow(crate::flow::FlowError::UnexpectedEvent))?;
    Ok((status, selected))
}

/// [`read_status`], also returning the [`Selected`] token that lets the unblock that follows
/// in the same exclusive session skip its SELECT ([`Select::After`]).
pub async fn read_status_selected<T: Transport, const SEND: usize, const RECV: usize>(
    driver: &mut Driver<T, SEND, RECV>,
    iso: IsoProfile<'_>,
) -> Result<(CardStatus, Selected), Error<T::Error>> {
    let mut flow = ReadStatus::new(iso);
    let status = driver.run_without_admin(&mut flow).await?;
    let selected = flow
        .into_selected()
        .ok_or(Error::Flow(crate::flow::FlowError::UnexpectedEvent))?;
    Ok((status, selected))
}

/// PIV: unblocks the PIN with `puk` and sets `new_pin` (both checked by [`piv_input`] or their
/// own constructors before this is called): SELECT, RESET RETRY COUNTER, VERIFY.
///
/// ```
/// # use cardunlock_core::{driver::Driver, ErrorKind, Transport};
/// # struct Reader;
/// # impl Transport for Reader {
/// #     type Error = ErrorKind;
/// #     async fn transmit(&mut self, _: &[u8], _: &mut [u8]) -> Result<usize, ErrorKind> {
/// #         Err(ErrorKind::NoCard)
/// #     }
/// # }
/// use cardunlock_core::{policy::PinPolicy, unlock};
///
/// # async fn run(reader: Reader) -> Result<(), Box<dyn std::error::Error>> {
/// let (puk, new_pin) = unlock::piv_input(&PinPolicy::PIV, b"12345678", b"840259", b"840259")?;
/// let mut driver = Driver::new(reader);
/// if let Err(e) = unlock::piv_unblock(&mut driver, &puk, &new_pin).await {
///     // e.kind(), e.tries_left() for programs; Display for people.
///     return Err(e.into());
/// }
/// # Ok(()) }
/// # // No card in this reader: the unblock stops at the first APDU.
/// # assert!(embassy_futures::block_on(run(Reader)).is_err());
/// ```
pub async fn piv_unblock<T: Transport, const SEND: usize, const RECV: usize>(
    driver: &mut Driver<T, SEND, RECV>,
    puk: &PivPuk,
    new_pin: &NewPin<PivPin>,
) -> Result<(), UnlockError<T::Error>> {
    piv_unblock_with(driver, puk, new_pin, PivUnblockOptions::DEFAULT).await
}

/// [`piv_unblock`] with a choice of the APDUs around RESET RETRY COUNTER
/// ([`PivUnblockOptions`]). A wrong PUK reports the tries left from the card's answer to RESET
/// RETRY COUNTER.
pub async fn piv_unblock_with<T: Transport, const SEND: usize, const RECV: usize>(
    driver: &mut Driver<T, SEND, RECV>,
    puk: &PivPuk,
    new_pin: &NewPin<PivPin>,
    options: PivUnblockOptions,
) -> Result<(), UnlockError<T::Error>> {
    let mut flow = PivUnblock::new(puk, new_pin).with_options(options);
    Ok(driver.run_without_admin(&mut flow).await?)
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
pub async fn gids_unblock<T: Transport, R: AdminResponder, const SEND: usize, const RECV: usize>(
    driver: &mut Driver<T, SEND, RECV>,
    new_pin: &NewPin,
    r1: [u8; 16],
    responder: &mut R,
) -> Result<(), UnlockError<T::Error, R::Error>> {
    gids_unblock_with(driver, new_pin, r1, responder, Select::Application).await
}

/// [`gids_unblock`], choosing whether to SELECT the GIDS application first.
pub async fn gids_unblock_with<
    T: Transport,
    R: AdminResponder,
    const SEND: usize,
    const RECV: usize,
>(
    driver: &mut Driver<T, SEND, RECV>,
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
pub async fn iso_unblock<T: Transport, R: AdminResponder, const SEND: usize, const RECV: usize>(
    driver: &mut Driver<T, SEND, RECV>,
    profile: IsoProfile<'_>,
    new_pin: &NewPin,
    responder: &mut R,
) -> Result<(), UnlockError<T::Error, R::Error>> {
    iso_unblock_with(driver, profile, new_pin, responder, Select::Application).await
}

/// [`iso_unblock`], choosing whether to SELECT the admin application first.
pub async fn iso_unblock_with<
    T: Transport,
    R: AdminResponder,
    const SEND: usize,
    const RECV: usize,
>(
    driver: &mut Driver<T, SEND, RECV>,
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
