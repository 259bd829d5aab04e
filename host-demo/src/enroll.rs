//! Enrollment: personalise a card with the secrets derived from the master secret, then register
//! the user, the card and the security questions with the server's store.

use cardunlock_core::crypto::{AdminKey, Algorithm};
use cardunlock_core::driver::{Driver, Error};
use cardunlock_core::flow::{
    CardStatus, GidsChangeAdminKey, IsoChangeAdminKey, LocalKey, NoAdmin, PivChangePuk,
    PivMgmtAuth, PivSetMgmtKey, Profile,
};
use cardunlock_core::iso::IsoProfile;
use cardunlock_core::piv::AuthMode;
use cardunlock_core::secret::PivReference;
use cardunlock_core::{Transport, TransportError};
use cardunlock_server::{kdf, MasterSecret};
use embassy_futures::block_on;
use rand::RngCore;

use crate::{exit, Failure};

/// The secrets a card leaves the factory with (what personalisation replaces).
pub struct Factory {
    pub puk: zeroize::Zeroizing<String>,
    pub admin_key: AdminKey,
}

impl Default for Factory {
    fn default() -> Self {
        Self {
            puk: zeroize::Zeroizing::new("12345678".to_string()),
            admin_key: AdminKey::piv_default(),
        }
    }
}

fn card_failure<T: TransportError + std::fmt::Display, R: std::fmt::Debug + std::fmt::Display>(
    step: &str,
    e: &Error<T, R>,
) -> Failure {
    let f = crate::failure::card(e, exit::USAGE);
    Failure::new(f.code, format!("{step}: {}", f.message))
}

fn random_fill(b: &mut [u8]) {
    rand::thread_rng().fill_bytes(b)
}

/// Replaces the factory PUK / management key / admin key with generation-0 derived ones.
pub fn personalise<T: Transport>(
    driver: &mut Driver<T>,
    status: &CardStatus,
    master: &MasterSecret,
    factory: &Factory,
    iso_algorithm: Algorithm,
) -> Result<(), Failure>
where
    T::Error: TransportError + std::fmt::Display,
{
    let id = status
        .identity
        .ok_or_else(|| Failure::new(exit::REFUSED, "the card has no readable identity"))?;
    let id = id.as_bytes();
    match status.profile {
        Profile::Piv => {
            let old = PivReference::puk(factory.puk.as_bytes())
                .map_err(|e| Failure::new(exit::USAGE, format!("factory PUK: {e:?}")))?;
            let derived = kdf::piv_puk(master, id, 0);
            let new = PivReference::puk(derived.as_bytes())
                .map_err(|e| Failure::new(exit::USAGE, format!("derived PUK: {e:?}")))?;
            block_on(driver.run(&mut PivChangePuk::new(&old, &new), &mut NoAdmin))
                .map_err(|e| card_failure("changing the PUK", &e))?;
            let mut challenge = [0u8; 16];
            random_fill(&mut challenge);
            let mut auth = PivMgmtAuth::new(
                Some(factory.admin_key.algorithm()),
                AuthMode::Mutual,
                challenge,
            );
            let authenticated = block_on(driver.run(
                &mut auth,
                &mut LocalKey::new(factory.admin_key.clone(), rand::rngs::OsRng),
            ))
            .map_err(|e| card_failure("authenticating with the factory management key", &e))?;
            let key = kdf::piv_mgmt_key(master, id, 0);
            block_on(driver.run(&mut PivSetMgmtKey::new(authenticated, &key), &mut NoAdmin))
                .map_err(|e| card_failure("setting the management key", &e))?;
        }
        Profile::Gids => {
            let key = kdf::admin_key(master, "gids", id, Algorithm::TripleDes, 0);
            let mut r1 = [0u8; 16];
            random_fill(&mut r1);
            let mut flow = GidsChangeAdminKey::new(key, r1);
            block_on(driver.run(
                &mut flow,
                &mut LocalKey::new(factory.admin_key.clone(), rand::rngs::OsRng),
            ))
            .map_err(|e| card_failure("changing the admin key", &e))?;
        }
        Profile::IsoAdmin => {
            let key = kdf::admin_key(master, "iso", id, iso_algorithm, 0);
            let profile = IsoProfile {
                algorithm: iso_algorithm,
                ..IsoProfile::SIM
            };
            let mut flow = IsoChangeAdminKey::new(profile, key);
            block_on(driver.run(
                &mut flow,
                &mut LocalKey::new(factory.admin_key.clone(), rand::rngs::OsRng),
            ))
            .map_err(|e| card_failure("changing the admin key", &e))?;
        }
    }
    Ok(())
}
