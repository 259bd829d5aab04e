//! Online unlock: card status -> `start` (questions, PIN policy) -> answers (the server then
//! releases the user) -> new PIN checked against the server's policy (before any card command)
//! -> GIDS / ISO: the card's admin requests relayed to the server; PIV: the PUK released once,
//! then rotated to the next generation -> `complete`.
//!
//! The person in front of the card is behind the [`Ui`] trait (a terminal, a script, a window).

use cardunlock_core::crypto::Algorithm;
use cardunlock_core::driver::{Driver, Error};
use cardunlock_core::flow::{CardStatus, FlowError, NoAdmin, PivChangePuk, Profile};
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::secret::PivPuk;
use cardunlock_core::unlock::{self, UnlockError};
use cardunlock_core::Transport;
use embassy_futures::block_on;
use rand::RngCore;
use zeroize::Zeroizing;

use cardunlock_protocol::{CardIdentity, CardRef, ErrorCode, SessionToken};

use crate::api::{Api, ApiError};
use crate::failure::{self, CardError, Failure, Kind};
use crate::iso_profiles::IsoProfiles;
use crate::responder::ServerResponder;
use crate::status::describe;

pub use cardunlock_protocol::User;

/// What the unlock tells the person in front of the card, in order of appearance.
#[non_exhaustive]
pub enum Event<'a> {
    /// The card was read: e.g. "PIV card, id 3019..., PIN BLOCKED, PUK tries left 3".
    Card {
        /// The card's status as one line.
        description: &'a str,
    },
    /// The answers were verified; the server released the user's name and e-mail.
    User(&'a User),
    /// The answers were wrong; the questions are asked again (only when `can_retry()`).
    WrongAnswers {
        /// Attempts left before online unlock is locked for the card.
        attempts_left: u32,
    },
    /// The new PIN was refused by the policy (one line per violation); asked again.
    PinRefused {
        /// One line per violation.
        violations: &'a [String],
    },
    /// Card commands are under way (show progress; takes up to a few seconds).
    Unlocking,
    /// Something the user should know that did not stop the unlock.
    Warning(&'a str),
    /// "The smart card has been unlocked successfully."
    Unlocked,
}

/// What every unlock, online or offline, asks of the person in front of the card. Called on the
/// thread running the unlock (a GUI runs it on a worker thread and implements this with
/// channels).
pub trait Person {
    /// Shows what happened.
    fn show(&mut self, event: Event<'_>);
    /// Ask again after wrong answers, a refused PIN or a mistyped response (a person: yes; a
    /// script: no).
    fn can_retry(&self) -> bool;
    /// The new PIN and its confirmation; `policy` to show the rules and check as typed.
    fn new_pin(
        &mut self,
        policy: &PinPolicy<'_>,
    ) -> Result<(Zeroizing<String>, Zeroizing<String>), Failure>;
}

/// The person in front of the card during an online unlock: a [`Person`] who also answers the
/// security questions.
pub trait Ui: Person {
    /// One answer per question, in order. `Err(Kind::Cancelled)` if the user gives up.
    fn answers(&mut self, questions: &[String]) -> Result<Vec<Zeroizing<String>>, Failure>;
}

/// A new PIN and its confirmation, as typed.
pub type PinAndConfirmation = (Zeroizing<String>, Zeroizing<String>);

/// The wrong-answers message.
pub fn wrong_answers_message(attempts_left: u32) -> String {
    format!(
        "The answers are not correct. {attempts_left} attempt{} left before online unlock is \
         locked for this card.",
        if attempts_left == 1 { "" } else { "s" }
    )
}

/// Asks the new PIN until it meets `policy` (a script: once). Nothing reaches the card here.
pub(crate) fn ask_new_pin(
    ui: &mut dyn Person,
    policy: &PinPolicy<'_>,
) -> Result<(Zeroizing<String>, Zeroizing<String>), Failure> {
    loop {
        let (pin, confirm) = ui.new_pin(policy)?;
        match policy.check(
            pin.as_bytes(),
            confirm.as_bytes(),
            cardunlock_core::policy::PinContext::NONE,
        ) {
            Ok(()) => return Ok((pin, confirm)),
            Err(v) => {
                if !ui.can_retry() {
                    return Err(Failure::new(Kind::Policy, failure::policy_message(&v)));
                }
                ui.show(Event::PinRefused {
                    violations: &failure::policy_lines(&v),
                });
            }
        }
    }
}

/// Online unlock of the card behind `driver` (status, questions, answers, new PIN, unlock,
/// report). The card is untouched unless the answers were verified and the PIN passed the
/// policy. ISO admin cards: only the built-in profiles ([`IsoProfiles::builtin`]).
pub fn unlock<T: Transport>(
    driver: &mut Driver<T>,
    api: &Api,
    ui: &mut dyn Ui,
) -> Result<(), Failure>
where
    T::Error: CardError,
{
    unlock_with(driver, api, ui, &IsoProfiles::builtin(), None)
}

/// [`unlock()`] trying the workstation's ISO `profiles` (in order, after PIV and GIDS), with the
/// ISO admin key algorithm given (`None`: the profile's, else 3DES). An ISO card unlocks with
/// the profile the server recorded at enrollment ([`IsoProfiles::resolve`]).
pub fn unlock_with<T: Transport>(
    driver: &mut Driver<T>,
    api: &Api,
    ui: &mut dyn Ui,
    profiles: &IsoProfiles,
    iso_algorithm: Option<Algorithm>,
) -> Result<(), Failure>
where
    T::Error: CardError,
{
    let (status, answered) = crate::status::read(driver, profiles, iso_algorithm, Kind::Server)?;
    let identity = status
        .identity
        .ok_or_else(|| Failure::new(Kind::Refused, "card: it has no readable identity"))?;
    ui.show(Event::Card {
        description: &describe(&status),
    });
    if status.profile == Profile::Piv {
        puk_tries_allow_a_candidate(status.puk_tries_left)?;
    }

    let card = CardRef {
        profile: status.profile.into(),
        identity: CardIdentity::try_from(&identity)
            .map_err(|_| Failure::new(Kind::Refused, "card: it has no readable identity"))?,
    };
    let refused = |e: ApiError| match e.code() {
        Some(ErrorCode::CardNotVerified) => Failure::new(
            Kind::NoQuestions,
            "This card could not be verified for online unlock. Use offline mode: \
             `cardunlock unlock --offline` and call your operator.",
        ),
        Some(ErrorCode::NoQuestions) => Failure::new(
            Kind::NoQuestions,
            "Online unlock is not available: no security questions are enrolled for this card. \
             Use offline mode: `cardunlock unlock --offline` and call your operator.",
        ),
        _ => {
            let mut f = e.failure();
            if f.kind == Kind::Server {
                f.message += ". The card was not touched; try again later or use offline mode.";
            }
            f
        }
    };
    let started = api.start(card).map_err(refused)?;
    // ISO: the command set of the profile the card was enrolled with, checked before any try.
    let iso = match answered {
        Some(answered) => Some(
            profiles
                .resolve(answered, started.iso_profile.as_deref())?
                .profile(iso_algorithm, None),
        ),
        None => None,
    };
    // PIV: the card proves it is present (one signature, no PIN); only then does the server
    // tell its questions.
    let (questions, mut attempts_left) = if status.profile == Profile::Piv {
        let signature = crate::presence::sign_nonce(driver, &started)?;
        let proven = api.prove(&started.session, signature).map_err(refused)?;
        (proven.questions, proven.attempts_left)
    } else {
        (started.questions.clone(), started.attempts_left)
    };
    let user = loop {
        let answers = ui.answers(&questions)?;
        match api.answers(&started.session, &answers) {
            Ok(verified) => break verified.user,
            Err(ApiError::Refused(body)) if body.error == ErrorCode::WrongAnswers => {
                attempts_left = body
                    .attempts_left
                    .unwrap_or(attempts_left.saturating_sub(1));
                if !ui.can_retry() || attempts_left == 0 {
                    return Err(Failure::new(
                        Kind::WrongAnswers { attempts_left },
                        wrong_answers_message(attempts_left),
                    ));
                }
                ui.show(Event::WrongAnswers { attempts_left });
            }
            Err(e) => return Err(e.failure()),
        }
    };
    ui.show(Event::User(&user));

    // PIV: how many released PUKs the card refused, reported to the server (all of them: the
    // card no longer holds what the server has on record).
    let mut puk_rejected = 0u32;
    let result = started.pin_policy.with_core(|policy| {
        // The policy is checked here, before any card command, and again by the entry points.
        let (pin, confirm) = ask_new_pin(&mut *ui, policy)?;
        ui.show(Event::Unlocking);
        let result = match status.profile {
            Profile::Piv => piv(
                driver,
                api,
                &started.session,
                &status,
                policy,
                (&pin, &confirm),
                &mut puk_rejected,
            ),
            Profile::Gids => {
                let mut r1 = [0u8; 16];
                rand::rngs::OsRng.fill_bytes(&mut r1);
                let mut remote = ServerResponder::new(api, &started.session);
                let new_pin = unlock::admin_input(policy, pin.as_bytes(), confirm.as_bytes())
                    .map_err(|e| failure::input(&e))?;
                block_on(unlock::gids_unblock(driver, &new_pin, r1, &mut remote))
                    .map(|()| false)
                    .map_err(|e| {
                        remote
                            .take_refusal()
                            .unwrap_or_else(|| failure::unlock(e, Kind::Server))
                    })
            }
            Profile::IsoAdmin => {
                let iso = iso.ok_or_else(|| {
                    Failure::new(Kind::Refused, "ISO profile: the card answered on none")
                })?;
                let mut remote = ServerResponder::new(api, &started.session);
                let new_pin = unlock::admin_input(policy, pin.as_bytes(), confirm.as_bytes())
                    .map_err(|e| failure::input(&e))?;
                block_on(unlock::iso_unblock(driver, iso, &new_pin, &mut remote))
                    .map(|()| false)
                    .map_err(|e| {
                        remote
                            .take_refusal()
                            .unwrap_or_else(|| failure::unlock(e, Kind::Server))
                    })
            }
        };
        Ok::<_, Failure>(result)
    })?;
    let (unlocked, rotated, detail) = match &result {
        Ok(rotated) => (true, *rotated, String::new()),
        Err(f) => (false, false, f.message.clone()),
    };
    let done = api.complete(&started.session, unlocked, rotated, puk_rejected, &detail);
    result?;
    if let Err(e) = done {
        // The card is unlocked; the server learns the rotation on the next unlock.
        ui.show(Event::Warning(&format!(
            "could not report the outcome to the server: {e}"
        )));
    }
    ui.show(Event::Unlocked);
    Ok(())
}

/// The refusal when a wrong PUK candidate would leave the card without PUK tries.
fn last_puk_try(tries_left: u8) -> Failure {
    Failure::new(
        Kind::Refused,
        format!(
            "PUK: the card has {tries_left} PUK {} left; online unlock stops here so that a PUK \
             that does not match cannot block it. Nothing was changed. Contact your administrator.",
            if tries_left == 1 { "try" } else { "tries" }
        ),
    )
}

/// Whether the card's PUK tries allow one more candidate: a wrong candidate must never spend
/// the last try (`None`: the card does not say; its answer to the first try will).
fn puk_tries_allow_a_candidate(tries_left: Option<u8>) -> Result<(), Failure> {
    match tries_left {
        Some(0) => Err(Failure::new(
            Kind::Refused,
            failure::flow_message(&FlowError::PukBlocked),
        )),
        Some(n) if n <= 1 => Err(last_puk_try(n)),
        _ => Ok(()),
    }
}

/// PIV: release the PUK, unblock, rotate the PUK. Returns whether the rotation happened.
///
/// Never spends the card's last PUK try: before each candidate the tries left (from the status
/// read, then from the card's answer to a wrong candidate) must be at least two.
fn piv<T: Transport>(
    driver: &mut Driver<T>,
    api: &Api,
    session: &SessionToken,
    status: &CardStatus,
    policy: &PinPolicy<'_>,
    (pin, confirm): (&str, &str),
    rejected: &mut u32,
) -> Result<bool, Failure>
where
    T::Error: CardError,
{
    let release = api
        .puk(session, status.puk_tries_left.map(u32::from))
        .map_err(|e| e.failure())?;
    // The card's count, else the one the server counted on.
    let mut tries_left = status
        .puk_tries_left
        .or(u8::try_from(release.tries_left).ok());
    let mut used = None;
    for puk in release.puk_candidates.iter() {
        puk_tries_allow_a_candidate(tries_left)?;
        let (puk_ref, new_pin) = unlock::piv_input(
            policy,
            puk.expose().as_bytes(),
            pin.as_bytes(),
            confirm.as_bytes(),
        )
        .map_err(|e| failure::input(&e))?;
        // No VERIFY after the reset: the card's `90 00` says the new PIN is set (the policy was
        // checked before), and a VERIFY would leave the PIN verified for whatever runs next.
        let options = unlock::PivUnblockOptions::DEFAULT.without_verify();
        match block_on(unlock::piv_unblock_with(
            driver, &puk_ref, &new_pin, options,
        )) {
            Ok(()) => {
                used = Some(puk);
                break;
            }
            // An earlier rotation was cut off: the card holds another candidate.
            Err(UnlockError::Card(Error::Flow(FlowError::WrongPuk { tries_left: left }))) => {
                tries_left = Some(left);
                *rejected = rejected.saturating_add(1);
            }
            Err(e) => return Err(failure::unlock(e, Kind::Server)),
        }
    }
    let used = used.ok_or_else(|| {
        Failure::new(
            Kind::Refused,
            "PUK: the card refused every PUK the unlock server has on record for it. The \
             server is told and stops online unlock for this card until it is enrolled again; \
             the PIN stays blocked. Contact your administrator.",
        )
    })?;
    let old = PivPuk::new(used.expose().as_bytes())
        .map_err(|e| Failure::new(Kind::Server, format!("PUK from the server: {e}")))?;
    let new = PivPuk::new(release.next_puk.expose().as_bytes())
        .map_err(|e| Failure::new(Kind::Server, format!("next PUK from the server: {e}")))?;
    // Right after the reset, on the application it selected: no second SELECT.
    match block_on(driver.run(&mut PivChangePuk::selected(&old, &new), &mut NoAdmin)) {
        Ok(()) => Ok(true),
        // The PIN is unblocked; the old PUK stays valid and the server keeps both candidates.
        Err(_) => Ok(false),
    }
}
