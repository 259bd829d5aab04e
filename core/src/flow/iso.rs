//! ISO 7816-4 admin unblock: SELECT, GET CHALLENGE, EXTERNAL AUTHENTICATE with the admin answer
//! (local key, server, or the operator's response typed by the user), RESET RETRY COUNTER,
//! VERIFY with the new PIN.

use zeroize::Zeroize;

use super::{
    admin_auth_error, answer, delegate_flow, expect_ok, response, Action, AdminRequest, AfterAuth,
    Event, FlowError, Profile, Selected, Step, Tail,
};
use crate::iso::IsoProfile;
use crate::secret::NewPin;
use crate::sw::Status;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Select,
    Challenge,
    Ask,
    Authenticate,
    After(Tail),
}

/// The ISO challenge-response followed by `after`, shared by [`IsoUnblock`] and
/// [`IsoChangeAdminKey`].
struct IsoAdmin<'a> {
    profile: IsoProfile<'a>,
    after: AfterAuth<'a>,
    challenge: [u8; 16],
    response: [u8; 16],
    state: State,
}

impl Drop for IsoAdmin<'_> {
    fn drop(&mut self) {
        self.response.zeroize();
    }
}

impl<'a> IsoAdmin<'a> {
    fn new(profile: IsoProfile<'a>, after: AfterAuth<'a>) -> Self {
        Self {
            profile,
            after,
            challenge: [0; 16],
            response: [0; 16],
            state: State::Select,
        }
    }

    fn after(&mut self, selected: Selected) {
        if selected.profile() == Profile::IsoAdmin && self.state == State::Select {
            self.state = State::Challenge;
        }
    }

    fn action<'b>(&'b mut self, _buf: &'b mut [u8]) -> Result<Action<'b, ()>, FlowError> {
        let n = self.profile.algorithm.block_len();
        Ok(match self.state {
            State::Select => Action::Send(self.profile.select()),
            State::Challenge => Action::Send(self.profile.get_challenge()),
            State::Ask => Action::Ask(AdminRequest::Encrypt {
                algorithm: self.profile.algorithm,
                block: &self.challenge[..n],
            }),
            State::Authenticate => {
                Action::Send(self.profile.external_authenticate(&self.response[..n]))
            }
            State::After(Tail::Command) => match &self.after {
                AfterAuth::Unblock(pin) => Action::Send(self.profile.reset_retry_counter(pin)),
                AfterAuth::ChangeKey(key) => Action::Send(self.profile.change_admin_key(key)),
            },
            State::After(Tail::VerifyNew) => match &self.after {
                AfterAuth::Unblock(pin) => Action::Send(self.profile.verify_pin(pin)),
                AfterAuth::ChangeKey(_) => Action::Done(()),
            },
            State::After(Tail::Done) => Action::Done(()),
        })
    }

    fn handle(&mut self, event: Event<'_>) -> Result<(), FlowError> {
        let n = self.profile.algorithm.block_len();
        match self.state {
            State::Select => {
                let r = response(event)?;
                if !r.status.is_success() {
                    return Err(FlowError::ApplicationNotFound(r.status));
                }
                self.state = State::Challenge;
            }
            State::Challenge => {
                if response(event)?.status == Status::AuthenticationBlocked {
                    return Err(FlowError::AdminBlocked);
                }
                let data = expect_ok(event, Step::GetChallenge)?;
                if data.len() != n {
                    return Err(FlowError::MalformedResponse(Step::GetChallenge));
                }
                self.challenge[..n].copy_from_slice(data);
                self.state = State::Ask;
            }
            State::Ask => {
                self.response[..n].copy_from_slice(answer(event, n)?);
                self.state = State::Authenticate;
            }
            State::Authenticate => {
                self.response.zeroize();
                let status = response(event)?.status;
                if !status.is_success() {
                    return Err(admin_auth_error(status));
                }
                self.state = State::After(Tail::Command);
            }
            State::After(tail) => self.state = State::After(self.after.step(tail, event)?),
        }
        Ok(())
    }
}

/// ISO admin challenge-response unblock.
pub struct IsoUnblock<'a>(IsoAdmin<'a>);

impl core::fmt::Debug for IsoUnblock<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IsoUnblock")
            .field("profile", &self.0.profile)
            .field("state", &self.0.state)
            .finish_non_exhaustive()
    }
}

impl<'a> IsoUnblock<'a> {
    /// An unblock of a card addressed by `profile`, setting `new_pin` (borrowed while it runs).
    pub fn new(profile: IsoProfile<'a>, new_pin: &'a NewPin) -> Self {
        Self(IsoAdmin::new(profile, AfterAuth::Unblock(new_pin.pin())))
    }

    /// Skips the SELECT when `selected` proves the admin application is selected in this
    /// exclusive session (one APDU less). A token for another profile keeps the SELECT.
    pub fn after(mut self, selected: Selected) -> Self {
        self.0.after(selected);
        self
    }

    /// The card's challenge, once received (what offline mode shows the user).
    pub fn challenge(&self) -> Option<&[u8]> {
        match self.0.state {
            State::Select | State::Challenge => None,
            _ => self.0.challenge.get(..self.0.profile.algorithm.block_len()),
        }
    }
}

/// ISO admin personalisation: answers the challenge with the current admin key (through the
/// responder), then changes it to a new one. The PIN is not touched.
pub struct IsoChangeAdminKey<'a>(IsoAdmin<'a>);

impl core::fmt::Debug for IsoChangeAdminKey<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IsoChangeAdminKey")
            .field("profile", &self.0.profile)
            .field("state", &self.0.state)
            .finish_non_exhaustive()
    }
}

impl<'a> IsoChangeAdminKey<'a> {
    /// A change of the admin key of the card addressed by `profile` to `new_key` (borrowed while
    /// it runs).
    pub fn new(profile: IsoProfile<'a>, new_key: &'a crate::crypto::AdminKey) -> Self {
        Self(IsoAdmin::new(profile, AfterAuth::ChangeKey(new_key)))
    }
}

delegate_flow!(IsoUnblock, IsoChangeAdminKey);
