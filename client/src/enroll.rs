//! Enrollment's card side: personalise a card with the secrets derived from the master secret
//! (generation 0). PIV: the factory management key is checked first (mutual authentication, no
//! PUK try at stake), then the PUK is changed, then the management key; GIDS / ISO: admin
//! authentication then the key change.

use cardunlock_core::crypto::{AdminKey, Algorithm};
use cardunlock_core::driver::{Driver, Error};
use cardunlock_core::flow::{
    CardStatus, GidsChangeAdminKey, IsoChangeAdminKey, LocalKey, MgmtAuthenticated, NoAdmin,
    PivChangePuk, PivMgmtAuth, PivSetMgmtKey, Profile,
};
use cardunlock_core::iso::IsoProfile;
use cardunlock_core::piv::AuthMode;
use cardunlock_core::secret::PivPuk;
use cardunlock_core::{Transport, TransportError};
use cardunlock_protocol::Profile as WireProfile;
use cardunlock_server::{kdf, MasterSecret};
use embassy_futures::block_on;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::failure::{self, Failure, Kind};

/// The PIV factory management key, 3DES (and AES-192 on a YubiKey 5.7: the same 24 bytes).
pub const FACTORY_ADMIN_KEY_HEX: &str = "010203040506070801020304050607080102030405060708";
/// The PIV factory PUK.
pub const FACTORY_PUK: &str = "12345678";

/// The secrets a card leaves the factory with (what personalisation replaces).
pub struct Factory {
    /// The current PUK (PIV).
    pub puk: Zeroizing<String>,
    /// The current admin / management key bytes (hex); the algorithm comes from the card.
    pub admin_key_hex: Zeroizing<String>,
    /// The admin key algorithm when the card does not report it (`None`: 3DES).
    pub algorithm: Option<Algorithm>,
}

impl Default for Factory {
    fn default() -> Self {
        Self {
            puk: Zeroizing::new(FACTORY_PUK.to_string()),
            admin_key_hex: Zeroizing::new(FACTORY_ADMIN_KEY_HEX.to_string()),
            algorithm: None,
        }
    }
}

impl Factory {
    /// The factory admin key with the algorithm the card reports (GET METADATA of key 9B on a
    /// PIV card that supports it), else the one given, else 3DES.
    pub fn admin_key(&self, status: &CardStatus) -> Result<AdminKey, Failure> {
        let alg = match status.profile {
            Profile::Gids => Algorithm::TripleDes,
            _ => self
                .algorithm
                .or(status.admin_algorithm)
                .unwrap_or(Algorithm::TripleDes),
        };
        AdminKey::from_hex(alg, &self.admin_key_hex)
            .map_err(|e| Failure::usage(&format!("factory admin key ({alg})"), e))
    }
}

fn card_failure<T: TransportError + std::fmt::Display, R: std::fmt::Display>(
    step: &str,
    e: &Error<T, R>,
) -> Failure {
    failure::card(e, Kind::Usage).about(step)
}

fn random_fill(b: &mut [u8]) {
    rand::rngs::OsRng.fill_bytes(b)
}

/// PIV management-key mutual authentication with `key`; the token lets SET MANAGEMENT KEY run next.
fn mgmt_auth<T: Transport>(
    driver: &mut Driver<T>,
    key: &AdminKey,
) -> Result<MgmtAuthenticated, Failure>
where
    T::Error: TransportError + std::fmt::Display,
{
    let mut challenge = [0u8; 16];
    random_fill(&mut challenge);
    let mut auth = PivMgmtAuth::new(Some(key.algorithm()), AuthMode::Mutual, challenge);
    block_on(driver.run(
        &mut auth,
        &mut LocalKey::new(key.clone(), rand::rngs::OsRng),
    ))
    .map_err(|e| failure::card(&e, Kind::Usage))
}

/// Replaces the factory PUK / management key / admin key with generation-0 derived ones.
pub fn personalise<T: Transport>(
    driver: &mut Driver<T>,
    status: &CardStatus,
    master: &MasterSecret,
    factory: &Factory,
) -> Result<(), Failure>
where
    T::Error: TransportError + std::fmt::Display,
{
    let id = status
        .identity
        .ok_or_else(|| Failure::new(Kind::Refused, "card: it has no readable identity"))?;
    let id = id.as_bytes();
    let admin_key = factory.admin_key(status)?;
    match status.profile {
        Profile::Piv => {
            let old = PivPuk::new(factory.puk.as_bytes())
                .map_err(|e| Failure::usage("factory PUK", format!("{e:?}")))?;
            let derived = kdf::piv_puk(master, id, 0);
            let new = PivPuk::new(derived.as_bytes())
                .map_err(|e| Failure::usage("derived PUK", format!("{e:?}")))?;
            // The management key first: a wrong key or algorithm fails here, before the PUK
            // (whose tries are counted) is touched.
            // (The token is not used: CHANGE REFERENCE DATA may end the session.)
            let _checked = mgmt_auth(driver, &admin_key)
                .map_err(|f| f.about("factory management key: the card did not accept it"))?;
            block_on(driver.run(&mut PivChangePuk::new(&old, &new), &mut NoAdmin))
                .map_err(|e| card_failure("changing the PUK", &e))?;
            // CHANGE REFERENCE DATA ends the management-key session on some cards: again.
            let authenticated = mgmt_auth(driver, &admin_key)
                .map_err(|f| f.about("factory management key: the card did not accept it"))?;
            let key = kdf::piv_mgmt_key(master, id, 0);
            block_on(driver.run(&mut PivSetMgmtKey::new(authenticated, &key), &mut NoAdmin))
                .map_err(|e| card_failure("management key: setting the derived one failed", &e))?;
        }
        Profile::Gids => {
            let key = kdf::admin_key(
                master,
                WireProfile::Gids.as_str(),
                id,
                Algorithm::TripleDes,
                0,
            );
            let mut r1 = [0u8; 16];
            random_fill(&mut r1);
            let mut flow = GidsChangeAdminKey::new(&key, r1);
            block_on(driver.run(&mut flow, &mut LocalKey::new(admin_key, rand::rngs::OsRng)))
                .map_err(|e| card_failure("admin key: changing it failed", &e))?;
        }
        Profile::IsoAdmin => {
            let alg = admin_key.algorithm();
            let key = kdf::admin_key(master, WireProfile::Iso.as_str(), id, alg, 0);
            let profile = IsoProfile {
                algorithm: alg,
                ..IsoProfile::SIM
            };
            let mut flow = IsoChangeAdminKey::new(profile, &key);
            block_on(driver.run(&mut flow, &mut LocalKey::new(admin_key, rand::rngs::OsRng)))
                .map_err(|e| card_failure("admin key: changing it failed", &e))?;
        }
    }
    Ok(())
}
