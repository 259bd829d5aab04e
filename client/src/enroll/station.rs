//! The enrollment station: the server hands out the card's secrets (`POST
//! /v1/operator/enrollments`, role `enroller`), the card is personalised with them, and the
//! server is told whether it worked, which alone records the card, its holder and questions.

use cardunlock_core::crypto::{AdminKey, Algorithm};
use cardunlock_core::driver::Driver;
use cardunlock_core::flow::{CardStatus, Profile};
use cardunlock_core::Transport;
use cardunlock_protocol::operator::{CardSecrets, EnrollRequest, QuestionAnswer};
use cardunlock_protocol::{AlgorithmName, CardIdentity, CardRef, User};
use zeroize::Zeroizing;

use super::{personalise_from, Factory, Target};
use crate::failure::{CardError, Failure, Kind};
use crate::iso_profiles::IsoProfileEntry;
use crate::operator::Operator;

impl Target {
    /// The secrets the server gave for the card's next generation.
    pub fn from_wire(secrets: &CardSecrets) -> Result<Target, Failure> {
        let algorithm = secrets.algorithm.algorithm();
        let admin_key = AdminKey::from_hex(algorithm, secrets.admin_key.expose()).map_err(|e| {
            Failure::new(
                Kind::Server,
                format!("enrollment: the server's admin key: {e}"),
            )
        })?;
        Ok(Target {
            puk: secrets
                .puk
                .as_ref()
                .map(|p| Zeroizing::new(p.expose().to_string())),
            admin_key,
        })
    }
}

impl Factory {
    /// The secrets the server says the card holds now; the PUK of `fallback` when the server
    /// names none (a PIV card whose PUK it never changed).
    pub fn from_wire(secrets: &CardSecrets, fallback: &Factory) -> Factory {
        Factory {
            puk: secrets.puk.as_ref().map_or_else(
                || fallback.puk.clone(),
                |p| Zeroizing::new(p.expose().to_string()),
            ),
            admin_key_hex: Zeroizing::new(secrets.admin_key.expose().to_string()),
            algorithm: Some(secrets.algorithm.algorithm()),
        }
    }
}

/// Who the card is for.
pub struct Holder {
    /// Name and e-mail.
    pub user: User,
    /// The security questions with their answers (none: offline unlock only).
    pub questions: Vec<QuestionAnswer>,
}

/// What an enrollment did, for display.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// The card.
    pub card: CardRef,
    /// The admin / management key generation the card now holds.
    pub key_generation: u32,
    /// Whether the card held secrets the server had handed out before (a re-enrollment).
    pub re_enrolled: bool,
}

/// Enrolls the card behind `driver` (its `status` read just before): asks the server for its
/// secrets, personalises it (authenticating with the server's current secrets for a card it
/// knows, else with `factory`), then reports the outcome. `algorithm`: the admin-key algorithm
/// of an ISO card (PIV and GIDS are 3DES).
pub fn enroll<T: Transport>(
    operator: &Operator,
    driver: &mut Driver<T>,
    status: &CardStatus,
    iso: Option<&IsoProfileEntry>,
    algorithm: Algorithm,
    holder: Holder,
    factory: &Factory,
) -> Result<Enrolled, Failure>
where
    T::Error: CardError,
{
    let identity = status
        .identity
        .ok_or_else(|| Failure::new(Kind::Refused, "card: it has no readable identity"))?;
    let card = CardRef {
        profile: status.profile.into(),
        identity: CardIdentity::try_from(&identity)
            .map_err(|_| Failure::new(Kind::Refused, "card: it has no readable identity"))?,
    };
    let algorithm = match status.profile {
        Profile::IsoAdmin => algorithm,
        _ => Algorithm::TripleDes,
    };
    let algorithm = AlgorithmName::of(algorithm).ok_or_else(|| {
        Failure::usage(
            "--algorithm",
            "the unlock server does not know this algorithm",
        )
    })?;
    let reply = operator.enroll_begin(&EnrollRequest {
        card: card.clone(),
        algorithm,
        user: holder.user,
        questions: holder.questions,
    })?;
    let target = Target::from_wire(&reply.next)?;
    // What the card may hold: the generations the server handed out (the one it last
    // confirmed first), then the factory's (a card whose earlier personalisation never began).
    let mut candidates: Vec<Factory> = reply
        .current
        .iter()
        .map(|c| Factory::from_wire(c, factory))
        .collect();
    candidates.push(Factory {
        puk: factory.puk.clone(),
        admin_key_hex: factory.admin_key_hex.clone(),
        algorithm: factory.algorithm,
    });
    // ISO: the profile the card answered on, recorded with the card for its unlocks.
    let (iso_name, iso_profile) = match (status.profile, iso) {
        (Profile::IsoAdmin, Some(e)) => (
            Some(e.name()),
            Some(e.profile(Some(algorithm.algorithm()), None)),
        ),
        (Profile::IsoAdmin, None) => {
            let _ = operator.enroll_done(&reply.enrollment, false, None, None);
            return Err(Failure::new(
                Kind::Refused,
                "ISO profile: none given for this ISO admin card",
            ));
        }
        _ => (None, None),
    };
    let card_auth_key = match personalise_from(driver, status, iso_profile, &candidates, &target) {
        Ok(key) => key,
        Err(f) => {
            // The server keeps the card's old generations; the handed-out one stays a
            // candidate.
            let _ = operator.enroll_done(&reply.enrollment, false, None, None);
            return Err(f);
        }
    };
    let key = card_auth_key.as_ref().map(|k| &k[..]);
    operator
        .enroll_done(&reply.enrollment, true, key, iso_name)
        .map_err(|f| {
            f.about(
                "the card was personalised but the server did not record it (enroll it again: \
                 the server still knows the secrets it handed out)",
            )
        })?;
    Ok(Enrolled {
        card,
        key_generation: reply.next.key_generation,
        re_enrolled: !reply.current.is_empty(),
    })
}
