//! PIV flows: PUK unblock, management-key authentication, PUK change.

use zeroize::Zeroize;

use super::{
    admin_auth_error, answer, expect_ok, puk_reset_error, response, Action, AdminRequest, Event,
    Flow, FlowError, Step,
};
use crate::crypto::{ct_eq, AdminKey, Algorithm};
use crate::piv::{self, AuthMode};
use crate::secret::{NewPin, PivPin, PivPuk};
use crate::sw::Status;

use super::{Profile, Selected};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UnblockState {
    Select,
    PukStatus,
    Reset,
    VerifyNew,
    Done,
}

/// The APDUs a [`PivUnblock`] spends beyond SELECT and RESET RETRY COUNTER, chosen with a
/// builder: [`PivUnblockOptions::DEFAULT`] (VERIFY after the reset, no PUK check first) and
/// [`PivUnblockOptions::LEAN`] are the two usual choices.
///
/// ```
/// use cardunlock_core::flow::PivUnblockOptions;
/// let options = PivUnblockOptions::DEFAULT.checking_puk_first().without_verify();
/// assert_eq!(options, PivUnblockOptions::LEAN);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PivUnblockOptions {
    check_puk_first: bool,
    skip_verify: bool,
}

impl PivUnblockOptions {
    /// SELECT, RESET RETRY COUNTER, VERIFY with the new PIN.
    pub const DEFAULT: Self = Self {
        check_puk_first: false,
        skip_verify: false,
    };

    /// What the CLI sends when it has the PUK and new PIN up front, in one exclusive session and
    /// without a status read of its own: SELECT, GET METADATA (PUK), RESET RETRY COUNTER.
    pub const LEAN: Self = Self::DEFAULT.checking_puk_first().without_verify();

    /// Reads the PUK's tries with GET METADATA `00 F7 00 81` before RESET RETRY COUNTER and
    /// stops with [`FlowError::PukBlocked`] when the card reports none left (one more APDU).
    /// Cards without GET METADATA go on to the reset.
    pub const fn checking_puk_first(self) -> Self {
        Self {
            check_puk_first: true,
            ..self
        }
    }

    /// Ends on the card's `90 00` to RESET RETRY COUNTER instead of proving the new PIN with a
    /// VERIFY (one APDU less; the PIN stays unverified on the card, as `yubico-piv-tool -a
    /// unblock-pin` and OpenSC leave it).
    pub const fn without_verify(self) -> Self {
        Self {
            skip_verify: true,
            ..self
        }
    }
}

/// PIV PIN unblock with the PUK: SELECT, RESET RETRY COUNTER, then VERIFY with the new PIN (a
/// `90 00` from RESET RETRY COUNTER leaves the PIN unverified; the VERIFY proves the card took it).
/// It borrows the PUK and the new PIN for as long as it runs: no copy of either.
///
/// A wrong PUK costs exactly one PUK try and is reported with the tries left; nothing else is
/// retried. [`PivUnblockOptions`] trade APDUs for checks (see `BENCHMARKS.md`, "APDU audit").
pub struct PivUnblock<'a> {
    puk: &'a PivPuk,
    new_pin: &'a PivPin,
    state: UnblockState,
    options: PivUnblockOptions,
}

impl core::fmt::Debug for PivUnblock<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PivUnblock")
            .field("state", &self.state)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<'a> PivUnblock<'a> {
    /// An unblock with `puk`, setting `new_pin` (which passed the PIN policy in the PIV format).
    pub fn new(puk: &'a PivPuk, new_pin: &'a NewPin<PivPin>) -> Self {
        Self {
            puk,
            new_pin: new_pin.pin(),
            state: UnblockState::Select,
            options: PivUnblockOptions::DEFAULT,
        }
    }

    /// The same unblock with `options`.
    pub fn with_options(self, options: PivUnblockOptions) -> Self {
        Self { options, ..self }
    }
}

impl Flow for PivUnblock<'_> {
    type Output = ();

    fn action<'a>(&'a mut self, buf: &'a mut [u8]) -> Result<Action<'a, ()>, FlowError> {
        Ok(match self.state {
            UnblockState::Select => Action::Send(piv::select()),
            UnblockState::PukStatus => Action::Send(piv::get_metadata(piv::PUK_REF)),
            UnblockState::Reset => {
                Action::Send(piv::reset_retry_counter(buf, self.puk, self.new_pin)?)
            }
            UnblockState::VerifyNew => Action::Send(piv::verify_pin(self.new_pin)),
            UnblockState::Done => Action::Done(()),
        })
    }

    fn handle(&mut self, event: Event<'_>) -> Result<(), FlowError> {
        match self.state {
            UnblockState::Select => {
                let r = response(event)?;
                if !r.status.is_success() {
                    return Err(FlowError::ApplicationNotFound(r.status));
                }
                self.state = if self.options.check_puk_first {
                    UnblockState::PukStatus
                } else {
                    UnblockState::Reset
                };
            }
            UnblockState::PukStatus => {
                let r = response(event)?;
                let left = piv::parse_metadata(r.data)
                    .filter(|_| r.status.is_success())
                    .and_then(|m| m.tries)
                    .map(|(_, left)| left);
                if left == Some(0) {
                    return Err(FlowError::PukBlocked);
                }
                self.state = UnblockState::Reset;
            }
            UnblockState::Reset => match response(event)?.status {
                Status::Success if !self.options.skip_verify => {
                    self.state = UnblockState::VerifyNew
                }
                Status::Success => self.state = UnblockState::Done,
                status => return Err(puk_reset_error(status, Step::ResetRetryCounter)),
            },
            UnblockState::VerifyNew => {
                let status = response(event)?.status;
                if !status.is_success() {
                    return Err(FlowError::NewPinNotAccepted(status));
                }
                self.state = UnblockState::Done;
            }
            UnblockState::Done => return Err(FlowError::UnexpectedEvent),
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AuthState {
    Select,
    Metadata,
    Request,
    AskFirst,
    Send,
    AskExpected,
    Done,
}

/// Proof that [`PivMgmtAuth`] authenticated the management key in this session: what
/// [`PivSetMgmtKey`] requires. Only [`PivMgmtAuth`] makes one.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a management-key authentication is only useful to the flow that follows it"]
pub struct MgmtAuthenticated {
    algorithm: Algorithm,
}

impl MgmtAuthenticated {
    /// The management key's algorithm, as the card reported it (or as expected).
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// PIV management-key (9B) authentication.
///
/// The algorithm is discovered with GET METADATA `00 F7 00 9B` (YubiKey 5.7 ships an AES-192
/// default key); cards without it fall back to 3DES, or to the caller's `expected` algorithm.
/// Mutual mode also checks the card's answer to the host challenge, in constant time. Its output,
/// [`MgmtAuthenticated`], is what [`PivSetMgmtKey`] needs to run next.
pub struct PivMgmtAuth {
    expected: Option<Algorithm>,
    algorithm: Algorithm,
    mode: AuthMode,
    host_challenge: [u8; 16],
    /// Card challenge or witness, then the card's answer to the host challenge.
    card_block: [u8; 16],
    /// Our answer: E_K(challenge) or D_K(witness); zeroized once sent.
    our_block: [u8; 16],
    state: AuthState,
}

impl core::fmt::Debug for PivMgmtAuth {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PivMgmtAuth")
            .field("algorithm", &self.algorithm)
            .field("mode", &self.mode)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Drop for PivMgmtAuth {
    fn drop(&mut self) {
        self.our_block.zeroize();
    }
}

impl PivMgmtAuth {
    /// Authentication in `mode`. `expected`: the algorithm the caller's key has, checked against
    /// what the card reports (and used when the card cannot tell). `host_challenge`: random bytes
    /// for mutual mode (the first block length is used).
    pub fn new(expected: Option<Algorithm>, mode: AuthMode, host_challenge: [u8; 16]) -> Self {
        Self {
            expected,
            algorithm: expected.unwrap_or(Algorithm::TripleDes),
            mode,
            host_challenge,
            card_block: [0; 16],
            our_block: [0; 16],
            state: AuthState::Select,
        }
    }

    /// Skips the SELECT when `selected` proves the PIV application is selected in this session
    /// (a SELECT would cost one APDU). A token for another profile keeps the SELECT.
    pub fn after(mut self, selected: Selected) -> Self {
        if selected.profile() == Profile::Piv && self.state == AuthState::Select {
            self.state = AuthState::Metadata;
        }
        self
    }

    fn block_len(&self) -> usize {
        self.algorithm.block_len()
    }
}

impl Flow for PivMgmtAuth {
    type Output = MgmtAuthenticated;

    fn action<'a>(
        &'a mut self,
        buf: &'a mut [u8],
    ) -> Result<Action<'a, MgmtAuthenticated>, FlowError> {
        let n = self.block_len();
        Ok(match self.state {
            AuthState::Select => Action::Send(piv::select()),
            AuthState::Metadata => Action::Send(piv::get_metadata(piv::MGMT_KEY_REF)),
            AuthState::Request => {
                Action::Send(piv::authenticate_request(self.algorithm, self.mode))
            }
            AuthState::AskFirst => match self.mode {
                AuthMode::Single => Action::Ask(AdminRequest::Encrypt {
                    algorithm: self.algorithm,
                    block: &self.card_block[..n],
                }),
                AuthMode::Mutual => Action::Ask(AdminRequest::Decrypt {
                    algorithm: self.algorithm,
                    block: &self.card_block[..n],
                }),
            },
            AuthState::Send => Action::Send(match self.mode {
                AuthMode::Single => {
                    piv::authenticate_response(buf, self.algorithm, &self.our_block[..n])?
                }
                AuthMode::Mutual => piv::authenticate_mutual(
                    buf,
                    self.algorithm,
                    &self.our_block[..n],
                    &self.host_challenge[..n],
                )?,
            }),
            AuthState::AskExpected => Action::Ask(AdminRequest::Encrypt {
                algorithm: self.algorithm,
                block: &self.host_challenge[..n],
            }),
            AuthState::Done => Action::Done(MgmtAuthenticated {
                algorithm: self.algorithm,
            }),
        })
    }

    fn handle(&mut self, event: Event<'_>) -> Result<(), FlowError> {
        let n = self.block_len();
        match self.state {
            AuthState::Select => {
                let r = response(event)?;
                if !r.status.is_success() {
                    return Err(FlowError::ApplicationNotFound(r.status));
                }
                self.state = AuthState::Metadata;
            }
            AuthState::Metadata => {
                let r = response(event)?;
                // piv-authenticator answers 90 00 with no data: treat an answer without an
                // algorithm like a card without GET METADATA.
                let reported = piv::parse_metadata(r.data)
                    .filter(|_| r.status.is_success())
                    .and_then(|m| m.algorithm);
                if let Some(id) = reported {
                    let alg = Algorithm::from_piv_id(id)
                        .ok_or(FlowError::MalformedResponse(Step::GetMetadata))?;
                    if self.expected.is_some_and(|e| e != alg) {
                        return Err(FlowError::AlgorithmMismatch);
                    }
                    self.algorithm = alg;
                }
                // Otherwise the card has no GET METADATA: keep the expected algorithm or 3DES.
                self.state = AuthState::Request;
            }
            AuthState::Request => {
                let r = response(event)?;
                if matches!(r.status, Status::IncorrectData | Status::IncorrectP1P2) {
                    return Err(FlowError::AlgorithmMismatch);
                }
                let data = expect_ok(event, Step::GeneralAuthenticate)?;
                let tag = match self.mode {
                    AuthMode::Single => piv::TAG_CHALLENGE,
                    AuthMode::Mutual => piv::TAG_WITNESS,
                };
                let block = piv::parse_auth_template(data, tag, n)
                    .ok_or(FlowError::MalformedResponse(Step::GeneralAuthenticate))?;
                self.card_block[..n].copy_from_slice(block);
                self.state = AuthState::AskFirst;
            }
            AuthState::AskFirst => {
                let a = answer(event, n)?;
                self.our_block[..n].copy_from_slice(a);
                self.state = AuthState::Send;
            }
            AuthState::Send => {
                self.our_block.zeroize();
                let r = response(event)?;
                if !r.status.is_success() {
                    return Err(admin_auth_error(r.status));
                }
                match self.mode {
                    AuthMode::Single => self.state = AuthState::Done,
                    AuthMode::Mutual => {
                        let block = piv::parse_auth_template(r.data, piv::TAG_RESPONSE, n)
                            .ok_or(FlowError::MalformedResponse(Step::GeneralAuthenticate))?;
                        self.card_block[..n].copy_from_slice(block);
                        self.state = AuthState::AskExpected;
                    }
                }
            }
            AuthState::AskExpected => {
                let expected = answer(event, n)?;
                if !ct_eq(expected, &self.card_block[..n]) {
                    return Err(FlowError::CardAuthFailed);
                }
                self.state = AuthState::Done;
            }
            AuthState::Done => return Err(FlowError::UnexpectedEvent),
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChangeState {
    Select,
    Change,
    Done,
}

/// PIV PUK change: SELECT, CHANGE REFERENCE DATA `00 24 00 81` with the old and new PUK.
/// Used to rotate the PUK after an online unlock, so a PUK a workstation saw is never valid again.
pub struct PivChangePuk<'a> {
    old: &'a PivPuk,
    new: &'a PivPuk,
    state: ChangeState,
}

impl core::fmt::Debug for PivChangePuk<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PivChangePuk")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<'a> PivChangePuk<'a> {
    /// A change from `old` to `new` (both borrowed while it runs).
    pub fn new(old: &'a PivPuk, new: &'a PivPuk) -> Self {
        Self {
            old,
            new,
            state: ChangeState::Select,
        }
    }

    /// The change alone, without its SELECT: for a caller that selected the PIV application
    /// earlier in the same exclusive session (the online unlock, right after its RESET RETRY
    /// COUNTER), so nothing can have selected another application in between.
    pub fn selected(old: &'a PivPuk, new: &'a PivPuk) -> Self {
        Self {
            old,
            new,
            state: ChangeState::Change,
        }
    }
}

impl Flow for PivChangePuk<'_> {
    type Output = ();

    fn action<'a>(&'a mut self, buf: &'a mut [u8]) -> Result<Action<'a, ()>, FlowError> {
        Ok(match self.state {
            ChangeState::Select => Action::Send(piv::select()),
            ChangeState::Change => {
                Action::Send(piv::change_reference_data(buf, self.old, self.new)?)
            }
            ChangeState::Done => Action::Done(()),
        })
    }

    fn handle(&mut self, event: Event<'_>) -> Result<(), FlowError> {
        match self.state {
            ChangeState::Select => {
                let r = response(event)?;
                if !r.status.is_success() {
                    return Err(FlowError::ApplicationNotFound(r.status));
                }
                self.state = ChangeState::Change;
            }
            ChangeState::Change => match response(event)?.status {
                Status::Success => self.state = ChangeState::Done,
                Status::AuthenticationBlocked | Status::RetriesLeft(0) => {
                    return Err(FlowError::PukBlocked)
                }
                Status::RetriesLeft(n) => return Err(FlowError::WrongPuk { tries_left: n }),
                status @ (Status::IncorrectData | Status::WrongLength) => {
                    return Err(FlowError::NewPinRejected(status))
                }
                status => {
                    return Err(FlowError::UnexpectedStatus {
                        step: Step::ChangeReferenceData,
                        status,
                    })
                }
            },
            ChangeState::Done => return Err(FlowError::UnexpectedEvent),
        }
        Ok(())
    }
}

/// Sets a new PIV management key with SET MANAGEMENT KEY. It needs the [`MgmtAuthenticated`]
/// token of a [`PivMgmtAuth`] run just before over the same driver and exclusive session, and
/// does not SELECT (that would drop the authentication).
pub struct PivSetMgmtKey<'k> {
    /// The authentication this change follows (kept to show in `Debug`).
    after: MgmtAuthenticated,
    new_key: &'k AdminKey,
    done: bool,
}

impl core::fmt::Debug for PivSetMgmtKey<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PivSetMgmtKey")
            .field("after", &self.after)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<'k> PivSetMgmtKey<'k> {
    /// Sets `new_key` (its algorithm goes in the command; borrowed while it runs) after
    /// `authenticated`.
    pub fn new(authenticated: MgmtAuthenticated, new_key: &'k AdminKey) -> Self {
        Self {
            after: authenticated,
            new_key,
            done: false,
        }
    }
}

impl Flow for PivSetMgmtKey<'_> {
    type Output = ();

    fn action<'a>(&'a mut self, buf: &'a mut [u8]) -> Result<Action<'a, ()>, FlowError> {
        Ok(if self.done {
            Action::Done(())
        } else {
            Action::Send(piv::set_management_key(buf, self.new_key)?)
        })
    }

    fn handle(&mut self, event: Event<'_>) -> Result<(), FlowError> {
        if self.done {
            return Err(FlowError::UnexpectedEvent);
        }
        match response(event)?.status {
            Status::Success => {
                self.done = true;
                Ok(())
            }
            Status::SecurityStatusNotSatisfied => {
                Err(FlowError::AdminAuthFailed { tries_left: None })
            }
            status => Err(FlowError::UnexpectedStatus {
                step: Step::SetManagementKey,
                status,
            }),
        }
    }
}

#[cfg(test)]
mod tests;
