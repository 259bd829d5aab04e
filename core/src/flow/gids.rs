//! GIDS admin-key unblock: SELECT, MSE SET (admin key), mutual authentication in two GENERAL
//! AUTHENTICATE steps, RESET RETRY COUNTER with the new PIN, VERIFY with it.

use zeroize::Zeroize;

use super::{
    admin_auth_error, answer, delegate_flow, expect_ok, response, Action, AdminRequest, AfterAuth,
    Event, FlowError, Profile, Selected, Step, Tail,
};
use crate::crypto::ct_eq;
use crate::gids::{self, CRYPTOGRAM_LEN, RANDOM_LEN};
use crate::secret::NewPin;
use crate::sw::Status;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Select,
    Mse,
    Step1,
    AskCryptogram,
    Step2,
    AskCardCheck,
    After(Tail),
}

/// The GIDS mutual authentication followed by `after`, shared by [`GidsUnblock`] and
/// [`GidsChangeAdminKey`].
struct GidsAdmin<'a> {
    after: AfterAuth<'a>,
    r1: [u8; RANDOM_LEN],
    r2: [u8; RANDOM_LEN],
    /// Our cryptogram over R2 || R1 || Z1, held from the responder's answer until it is sent.
    cryptogram: [u8; CRYPTOGRAM_LEN],
    card_cryptogram: [u8; CRYPTOGRAM_LEN],
    state: State,
}

impl Drop for GidsAdmin<'_> {
    fn drop(&mut self) {
        self.cryptogram.zeroize();
    }
}

impl<'a> GidsAdmin<'a> {
    fn new(after: AfterAuth<'a>, r1: [u8; RANDOM_LEN]) -> Self {
        Self {
            after,
            r1,
            r2: [0; RANDOM_LEN],
            cryptogram: [0; CRYPTOGRAM_LEN],
            card_cryptogram: [0; CRYPTOGRAM_LEN],
            state: State::Select,
        }
    }

    fn after(&mut self, selected: Selected) {
        if selected.profile() == Profile::Gids && self.state == State::Select {
            self.state = State::Mse;
        }
    }

    fn action<'b>(&'b mut self, buf: &'b mut [u8]) -> Result<Action<'b, ()>, FlowError> {
        Ok(match self.state {
            State::Select => Action::Send(gids::select()),
            State::Mse => Action::Send(gids::mse_set_admin()),
            State::Step1 => Action::Send(gids::authenticate_step1(buf, &self.r1)?),
            State::AskCryptogram => Action::Ask(AdminRequest::GidsCryptogram {
                r1: &self.r1,
                r2: &self.r2,
            }),
            State::Step2 => Action::Send(gids::authenticate_step2(buf, &self.cryptogram)?),
            State::AskCardCheck => Action::Ask(AdminRequest::GidsCardCryptogram {
                cryptogram: &self.card_cryptogram,
            }),
            State::After(Tail::Command) => match &self.after {
                AfterAuth::Unblock(pin) => Action::Send(gids::reset_retry_counter(pin)),
                AfterAuth::ChangeKey(key) => Action::Send(gids::change_admin_key(key)),
            },
            State::After(Tail::VerifyNew) => match &self.after {
                AfterAuth::Unblock(pin) => Action::Send(gids::verify_pin(pin)),
                AfterAuth::ChangeKey(_) => Action::Done(()),
            },
            State::After(Tail::Done) => Action::Done(()),
        })
    }

    fn handle(&mut self, event: Event<'_>) -> Result<(), FlowError> {
        match self.state {
            State::Select => {
                let r = response(event)?;
                if !r.status.is_success() {
                    return Err(FlowError::ApplicationNotFound(r.status));
                }
                self.state = State::Mse;
            }
            State::Mse => {
                expect_ok(event, Step::ManageSecurityEnvironment)?;
                self.state = State::Step1;
            }
            State::Step1 => {
                if response(event)?.status == Status::AuthenticationBlocked {
                    return Err(FlowError::AdminBlocked);
                }
                let data = expect_ok(event, Step::GeneralAuthenticate)?;
                let r2 = gids::parse_step1(data)
                    .ok_or(FlowError::MalformedResponse(Step::GeneralAuthenticate))?;
                self.r2 = *r2;
                self.state = State::AskCryptogram;
            }
            State::AskCryptogram => {
                self.cryptogram
                    .copy_from_slice(answer(event, CRYPTOGRAM_LEN)?);
                self.state = State::Step2;
            }
            State::Step2 => {
                self.cryptogram.zeroize();
                let r = response(event)?;
                if !r.status.is_success() {
                    return Err(admin_auth_error(r.status));
                }
                let c = gids::parse_step2(r.data)
                    .ok_or(FlowError::MalformedResponse(Step::GeneralAuthenticate))?;
                self.card_cryptogram = *c;
                self.state = State::AskCardCheck;
            }
            State::AskCardCheck => {
                let plain = answer(event, CRYPTOGRAM_LEN)?;
                // The card must answer R1 || R2 || Z2 with Z2 ending in the 80 padding byte.
                let ok = ct_eq(&plain[..16], &self.r1)
                    & ct_eq(&plain[16..32], &self.r2)
                    & (plain[39] == 0x80);
                if !ok {
                    return Err(FlowError::CardAuthFailed);
                }
                self.state = State::After(Tail::Command);
            }
            State::After(tail) => self.state = State::After(self.after.step(tail, event)?),
        }
        Ok(())
    }
}

/// GIDS admin-key unblock. The card proves it holds the same admin key (its cryptogram over
/// R1 and R2 is checked) before the new PIN is sent.
pub struct GidsUnblock<'a>(GidsAdmin<'a>);

impl core::fmt::Debug for GidsUnblock<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GidsUnblock")
            .field("state", &self.0.state)
            .finish_non_exhaustive()
    }
}

impl<'a> GidsUnblock<'a> {
    /// An unblock setting `new_pin` (borrowed while it runs); `r1` is the host random (from a
    /// CSPRNG).
    pub fn new(new_pin: &'a NewPin, r1: [u8; RANDOM_LEN]) -> Self {
        Self(GidsAdmin::new(AfterAuth::Unblock(new_pin.pin()), r1))
    }

    /// Skips the SELECT when `selected` proves the GIDS application is selected in this
    /// exclusive session (one APDU less). A token for another profile keeps the SELECT.
    pub fn after(mut self, selected: Selected) -> Self {
        self.0.after(selected);
        self
    }
}

/// GIDS personalisation: authenticates with the current admin key (through the responder),
/// then changes it to a new one ([`gids::change_admin_key`]). The PIN is not touched.
pub struct GidsChangeAdminKey<'a>(GidsAdmin<'a>);

impl core::fmt::Debug for GidsChangeAdminKey<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GidsChangeAdminKey")
            .field("state", &self.0.state)
            .finish_non_exhaustive()
    }
}

impl<'a> GidsChangeAdminKey<'a> {
    /// A change to `new_key` (borrowed while it runs); `r1` is the host random (from a CSPRNG).
    pub fn new(new_key: &'a crate::crypto::AdminKey, r1: [u8; RANDOM_LEN]) -> Self {
        Self(GidsAdmin::new(AfterAuth::ChangeKey(new_key), r1))
    }
}

delegate_flow!(GidsUnblock, GidsChangeAdminKey);
