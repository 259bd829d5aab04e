//! GIDS admin-key unblock: SELECT, MSE SET (admin key), mutual authentication in two GENERAL
//! AUTHENTICATE steps, RESET RETRY COUNTER with the new PIN, VERIFY with it.

use zeroize::Zeroize;

use super::{
    admin_auth_error, answer, expect_ok, response, Action, AdminRequest, AfterAuth, Event, Flow,
    FlowError, Step,
};
use crate::crypto::ct_eq;
use crate::gids::{self, CRYPTOGRAM_LEN, RANDOM_LEN};
use crate::secret::NewPin;
use crate::status::Status;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Select,
    Mse,
    Step1,
    AskCryptogram,
    Step2,
    AskCardCheck,
    Reset,
    VerifyNew,
    Done,
}

/// GIDS admin-key unblock. The card proves it holds the same admin key (its cryptogram over
/// R1 and R2 is checked) before the new PIN is sent.
pub struct GidsUnblock {
    after: AfterAuth,
    r1: [u8; RANDOM_LEN],
    r2: [u8; RANDOM_LEN],
    step1: [u8; 20],
    step2: [u8; 44],
    card_cryptogram: [u8; CRYPTOGRAM_LEN],
    state: State,
}

impl core::fmt::Debug for GidsUnblock {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GidsUnblock")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Drop for GidsUnblock {
    fn drop(&mut self) {
        self.step2.zeroize();
    }
}

impl GidsUnblock {
    /// An unblock setting `new_pin`; `r1` is the host random (from a CSPRNG).
    pub fn new(new_pin: &NewPin, r1: [u8; RANDOM_LEN]) -> Self {
        Self::with(AfterAuth::Unblock(new_pin.pin().clone()), r1)
    }

    /// Personalisation: authenticates with the current admin key (through the responder), then
    /// changes it to `new_key` ([`gids::change_admin_key`]). The PIN is not touched.
    pub fn change_admin_key(new_key: crate::crypto::AdminKey, r1: [u8; RANDOM_LEN]) -> Self {
        Self::with(AfterAuth::ChangeKey(new_key), r1)
    }

    /// Skips the SELECT: for a caller whose status read, in the same exclusive session, left
    /// this application selected (one APDU less).
    pub fn without_select(mut self) -> Self {
        if self.state == State::Select {
            self.state = State::Mse;
        }
        self
    }

    fn with(after: AfterAuth, r1: [u8; RANDOM_LEN]) -> Self {
        Self {
            after,
            r1,
            r2: [0; RANDOM_LEN],
            step1: [0; 20],
            step2: [0; 44],
            card_cryptogram: [0; CRYPTOGRAM_LEN],
            state: State::Select,
        }
    }
}

impl Flow for GidsUnblock {
    type Output = ();

    fn action(&self) -> Action<'_, ()> {
        match self.state {
            State::Select => Action::Send(gids::select()),
            State::Mse => Action::Send(gids::mse_set_admin()),
            State::Step1 => Action::Send(
                crate::Command::new(0x00, 0x87, 0x00, 0x00)
                    .with_data(&self.step1)
                    .with_le(256),
            ),
            State::AskCryptogram => Action::Ask(AdminRequest::GidsCryptogram {
                r1: &self.r1,
                r2: &self.r2,
            }),
            State::Step2 => Action::Send(
                crate::Command::new(0x00, 0x87, 0x00, 0x00)
                    .with_data(&self.step2)
                    .with_le(256),
            ),
            State::AskCardCheck => Action::Ask(AdminRequest::GidsCardCryptogram {
                cryptogram: &self.card_cryptogram,
            }),
            State::Reset => match &self.after {
                AfterAuth::Unblock(pin) => Action::Send(gids::reset_retry_counter(pin)),
                AfterAuth::ChangeKey(key) => Action::Send(gids::change_admin_key(key)),
            },
            State::VerifyNew => match &self.after {
                AfterAuth::Unblock(pin) => Action::Send(gids::verify_pin(pin)),
                AfterAuth::ChangeKey(_) => Action::Done(()),
            },
            State::Done => Action::Done(()),
        }
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
                let _ = gids::authenticate_step1(&mut self.step1, &self.r1);
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
                let a = answer(event, CRYPTOGRAM_LEN)?;
                let mut c = [0u8; CRYPTOGRAM_LEN];
                c.copy_from_slice(a);
                let _ = gids::authenticate_step2(&mut self.step2, &c);
                self.state = State::Step2;
            }
            State::Step2 => {
                self.step2.zeroize();
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
                self.state = State::Reset;
            }
            State::Reset => {
                self.state = if self.after.command_done(event)? {
                    State::VerifyNew
                } else {
                    State::Done
                };
            }
            State::VerifyNew => {
                AfterAuth::verify_done(event)?;
                self.state = State::Done;
            }
            State::Done => return Err(FlowError::UnexpectedEvent),
        }
        Ok(())
    }
}
