//! Offline unlock: no server. GIDS / ISO admin cards: the card's challenge is read out to an
//! operator, who answers with the admin key's response. PIV cards have no such challenge: the
//! operator reads out the card's PUK instead (and should change it afterwards).

use cardunlock_core::crypto::Algorithm;
use cardunlock_core::driver::Driver;
use cardunlock_core::flow::{AdminRequest, AdminResponder, FlowError, Profile, MAX_ANSWER_LEN};
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock::{self, PivUnblockOptions, Select};
use cardunlock_core::Transport;
use embassy_futures::block_on;
use zeroize::Zeroizing;

use crate::failure::{self, CardError, Failure, Kind};
use crate::iso_profiles::IsoProfiles;
use crate::online::{ask_new_pin, Event, Person};
use crate::status::describe;

/// What the offline unlock asks: show the card's challenge, take the operator's response.
/// GIDS / ISO admin cards: challenge-response. PIV cards: no challenge exists; the operator
/// reads out the PUK instead (`Challenge::Puk`).
pub enum Challenge<'a> {
    /// Read `challenge_hex` (grouped, `1A2B 3C4D`) to the operator; the answer is hex.
    Admin {
        /// The card's challenge, grouped hex.
        challenge_hex: &'a str,
        /// The admin key algorithm (`3DES`, `AES-128`, ...).
        algorithm: &'a str,
    },
    /// A PIV card: the operator reads out the card's PUK.
    Puk,
}

/// What offline mode means for a PIV card, shown before anything is asked.
pub const PIV_OFFLINE: &str = "This is a PIV card: PIV has no offline challenge. Offline, your \
     operator reads out the card's PUK (from the enrollment records) and you type it; the PUK \
     then counts as seen, so have it changed afterwards.";

/// The person in front of the card, in offline mode.
pub trait OfflineUi: Person {
    /// Show the challenge and return what the operator answered (hex response, or the PUK).
    fn response(&mut self, challenge: Challenge<'_>) -> Result<Zeroizing<String>, Failure>;
}

/// The operator, through the UI: asks for the response to the card's challenge.
struct Operator<'u> {
    ui: &'u mut dyn OfflineUi,
}

impl AdminResponder for Operator<'_> {
    type Error = Failure;

    async fn answer(
        &mut self,
        request: AdminRequest<'_>,
        out: &mut [u8; MAX_ANSWER_LEN],
    ) -> Result<usize, Failure> {
        let AdminRequest::Encrypt { algorithm, block } = request else {
            return Err(Failure::usage(
                "offline unlock",
                "this card needs a mutual authentication an operator cannot relay by phone; use \
                 --admin-key or online unlock",
            ));
        };
        let challenge = crate::hex::grouped(block);
        let name = algorithm.to_string();
        // A mistyped response never reaches the card: ask again (the challenge stays valid
        // until a response is sent).
        loop {
            let typed = self.ui.response(Challenge::Admin {
                challenge_hex: &challenge,
                algorithm: &name,
            })?;
            let problem = match crate::hex::parse(&typed) {
                Ok(bytes) if bytes.len() == block.len() => {
                    out[..bytes.len()].copy_from_slice(&bytes);
                    return Ok(bytes.len());
                }
                Ok(_) => format!("it must be {} hex digits", 2 * block.len()),
                Err(e) => e.to_string(),
            };
            if !self.ui.can_retry() {
                return Err(Failure::usage("response", problem));
            }
            self.ui.show(Event::Warning(&format!(
                "response: {problem}; type it again."
            )));
        }
    }
}

/// Offline unlock of the card behind `driver`. ISO admin cards: only the built-in profiles
/// ([`IsoProfiles::builtin`]).
pub fn unlock<T: Transport>(driver: &mut Driver<T>, ui: &mut dyn OfflineUi) -> Result<(), Failure>
where
    T::Error: CardError,
{
    unlock_with(driver, ui, &IsoProfiles::builtin(), None)
}

/// [`unlock()`] trying the workstation's ISO `profiles` (in order, after PIV and GIDS), with the
/// ISO admin key algorithm given (`None`: the profile's, else 3DES).
pub fn unlock_with<T: Transport>(
    driver: &mut Driver<T>,
    ui: &mut dyn OfflineUi,
    profiles: &IsoProfiles,
    iso_algorithm: Option<Algorithm>,
) -> Result<(), Failure>
where
    T::Error: CardError,
{
    let (status, answered) = crate::status::read(driver, profiles, iso_algorithm, Kind::Usage)?;
    ui.show(Event::Card {
        description: &describe(&status),
    });
    match status.profile {
        Profile::Piv => {
            if status.puk_tries_left == Some(0) {
                return Err(Failure::new(
                    Kind::Refused,
                    failure::flow_message(&FlowError::PukBlocked),
                ));
            }
            // What offline means for PIV comes first, before any PIN is asked.
            ui.show(Event::Warning(PIV_OFFLINE));
            let puk = ui.response(Challenge::Puk)?;
            failure::check_puk(&puk)?;
            let policy = &PinPolicy::PIV;
            let (pin, confirm) = ask_new_pin(&mut *ui, policy)?;
            ui.show(Event::Unlocking);
            let (puk, new_pin) =
                unlock::piv_input(policy, puk.as_bytes(), pin.as_bytes(), confirm.as_bytes())
                    .map_err(|e| failure::input(&e))?;
            block_on(unlock::piv_unblock_with(
                driver,
                &puk,
                &new_pin,
                PivUnblockOptions::LEAN,
            ))
            .map_err(|e| failure::unlock(e, Kind::Usage))?;
        }
        Profile::Gids => {
            return Err(Failure::usage(
                "offline unlock",
                "GIDS cards need a mutual authentication an operator cannot relay by phone: use \
                 online unlock (--server) or the admin key (--admin-key)",
            ))
        }
        Profile::IsoAdmin => {
            let policy = &PinPolicy::GIDS;
            let (pin, confirm) = ask_new_pin(&mut *ui, policy)?;
            let mut operator = Operator { ui: &mut *ui };
            let new_pin = unlock::admin_input(policy, pin.as_bytes(), confirm.as_bytes())
                .map_err(|e| failure::input(&e))?;
            let iso = answered
                .ok_or_else(|| {
                    Failure::new(Kind::Refused, "ISO profile: the card answered on none")
                })?
                .profile(iso_algorithm, None);
            let result = block_on(unlock::iso_unblock_with(
                driver,
                iso,
                &new_pin,
                &mut operator,
                Select::Application,
            ));
            match result {
                Ok(()) => {}
                Err(unlock::UnlockError::Card(cardunlock_core::driver::Error::Responder(f))) => {
                    return Err(f)
                }
                Err(e) => return Err(failure::unlock(e, Kind::Usage)),
            }
        }
    }
    ui.show(Event::Unlocked);
    Ok(())
}
