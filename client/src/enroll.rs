//! Enrollment's card side: personalise a card with the secrets the server gives it (the next
//! generation's PUK and admin / management key), authenticating with the current ones (the
//! factory defaults for a new card). The workstation derives nothing: it never holds the
//! server's master secret. PIV: the current management key is checked first (mutual
//! authentication, no PUK try at stake), then the PUK is changed, then the management key;
//! GIDS / ISO: admin authentication then the key change.

use cardunlock_core::crypto::{AdminKey, Algorithm};
use cardunlock_core::driver::{Driver, Error};
use cardunlock_core::flow::{
    CardStatus, FlowErrorKind, GidsChangeAdminKey, IsoChangeAdminKey, LocalKey, MgmtAuthenticated,
    NoAdmin, PivChangePuk, PivMgmtAuth, PivSetMgmtKey, Profile,
};
use cardunlock_core::iso::IsoProfile;
use cardunlock_core::piv::AuthMode;
use cardunlock_core::secret::PivPuk;
use cardunlock_core::Transport;
use embassy_futures::block_on;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::failure::{self, CardError, Failure, Kind};
use crate::presence::{self, PublicKey, Slot};

mod station;
pub use station::{enroll, Enrolled, Holder};

/// The PIV factory management key, 3DES (and AES-192 on a YubiKey 5.7: the same 24 bytes).
pub const FACTORY_ADMIN_KEY_HEX: &str = "010203040506070801020304050607080102030405060708";
/// The PIV factory PUK.
pub const FACTORY_PUK: &str = "12345678";

/// The secrets a card holds now (the factory's for a new card): what personalisation
/// authenticates with and replaces.
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

fn card_failure<T: CardError, R: std::fmt::Display>(step: &str, e: Error<T, R>) -> Failure {
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
    T::Error: CardError,
{
    let mut challenge = [0u8; 16];
    random_fill(&mut challenge);
    let mut auth = PivMgmtAuth::new(Some(key.algorithm()), AuthMode::Mutual, challenge);
    block_on(driver.run(
        &mut auth,
        &mut LocalKey::new(key.clone(), rand::rngs::OsRng),
    ))
    .map_err(|e| failure::card(e, Kind::Usage))
}

/// The secrets personalisation puts on the card (from the server's enrollment reply).
pub struct Target {
    /// The new PUK (PIV cards; `None` for GIDS / ISO).
    pub puk: Option<Zeroizing<String>>,
    /// The new admin / management key, with its algorithm.
    pub admin_key: AdminKey,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("puk", &self.puk.as_ref().map(|_| "***"))
            .field("admin_key", &self.admin_key)
            .finish()
    }
}

/// Replaces the card's current PUK / management key / admin key (`current`, the factory's for a
/// new card) with `target`'s. PIV: returns the card's Card Authentication public key, for the
/// server to record ([`personalise_from`]).
/// `iso`: the command set of an ISO admin card (the profile it answered on); unused for PIV and
/// GIDS.
pub fn personalise<T: Transport>(
    driver: &mut Driver<T>,
    status: &CardStatus,
    iso: Option<IsoProfile<'_>>,
    current: &Factory,
    target: &Target,
) -> Result<Option<PublicKey>, Failure>
where
    T::Error: CardError,
{
    personalise_from(driver, status, iso, std::slice::from_ref(current), target)
}

/// Whether a failed step may be tried with the next candidate: the secret was wrong and the
/// card has more than one try left (the last try is never spent on a guess).
fn try_next<T, R>(e: &Error<T, R>) -> bool {
    match e {
        Error::Flow(f) => {
            f.kind() == FlowErrorKind::WrongSecret && f.tries_left().is_none_or(|left| left > 1)
        }
        _ => false,
    }
}

/// [`personalise`] when the card may hold one of several secrets (`candidates`, most likely
/// first: the generations the server handed out, then the factory's). PIV: the management key
/// is found first (its authentication spends no PUK try), then the PUK of the same candidate is
/// tried first; another PUK is tried only while the card has more than one try left. GIDS /
/// ISO: the admin keys in order, while the card allows more than one more try.
///
/// PIV: returns the card's Card Authentication public key (9E), read from its certificate or
/// its signatures; a key is generated only into an empty slot (right after the management key
/// was found), never over an existing one ([`crate::presence`]).
pub fn personalise_from<T: Transport>(
    driver: &mut Driver<T>,
    status: &CardStatus,
    iso: Option<IsoProfile<'_>>,
    candidates: &[Factory],
    target: &Target,
) -> Result<Option<PublicKey>, Failure>
where
    T::Error: CardError,
{
    if status.identity.is_none() {
        return Err(Failure::new(
            Kind::Refused,
            "card: it has no readable identity",
        ));
    }
    let keys = candidates
        .iter()
        .map(|c| c.admin_key(status))
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(Failure::usage("current secrets", "none given"));
    }
    match status.profile {
        Profile::Piv => {
            let new_puk = target.puk.as_ref().ok_or_else(|| {
                Failure::new(
                    Kind::Server,
                    "enrollment: the server gave no PUK for this PIV card",
                )
            })?;
            let new = PivPuk::new(new_puk.as_bytes())
                .map_err(|e| Failure::new(Kind::Server, format!("the server's PUK: {e}")))?;
            // What 9E holds, read without changing the card (no PIN, no management key).
            let slot = presence::read_card_auth_key(driver)?;
            // The management key first: a wrong key or algorithm fails here, before the PUK
            // (whose tries are counted) is touched.
            // (The token is not used: CHANGE REFERENCE DATA may end the session.)
            let mut found = None;
            let mut last = None;
            for (i, key) in keys.iter().enumerate() {
                match mgmt_auth(driver, key) {
                    Ok(_checked) => {
                        found = Some(i);
                        break;
                    }
                    Err(f) => last = Some(f),
                }
            }
            let Some(i) = found else {
                let f = last.unwrap_or_else(|| Failure::new(Kind::Refused, "no key"));
                return Err(f.about(if keys.len() > 1 {
                    "current management key: the card accepted none of the known ones"
                } else {
                    "current management key: the card did not accept it"
                }));
            };
            // An empty slot gets a key now, while the management key is authenticated.
            let card_auth_key = match slot {
                Slot::Key(key) => key,
                Slot::Empty => presence::generate_card_auth_key(driver)?,
            };
            let mut puks: Vec<&Zeroizing<String>> = vec![&candidates[i].puk];
            for c in candidates {
                if !puks.iter().any(|p| p.as_str() == c.puk.as_str()) {
                    puks.push(&c.puk);
                }
            }
            let mut changed = false;
            for (n, puk) in puks.iter().enumerate() {
                let old =
                    PivPuk::new(puk.as_bytes()).map_err(|e| Failure::usage("current PUK", e))?;
                match block_on(driver.run(&mut PivChangePuk::new(&old, &new), &mut NoAdmin)) {
                    Ok(_) => {
                        changed = true;
                        break;
                    }
                    Err(e) if try_next(&e) && n + 1 < puks.len() => continue,
                    Err(e) => return Err(card_failure("changing the PUK", e)),
                }
            }
            if !changed {
                return Err(Failure::new(
                    Kind::Refused,
                    "changing the PUK: no PUK left to try",
                ));
            }
            // CHANGE REFERENCE DATA ends the management-key session on some cards: again.
            let authenticated = mgmt_auth(driver, &keys[i])
                .map_err(|f| f.about("current management key: the card did not accept it"))?;
            block_on(driver.run(
                &mut PivSetMgmtKey::new(authenticated, &target.admin_key),
                &mut NoAdmin,
            ))
            .map_err(|e| card_failure("management key: setting the new one failed", e))?;
            return Ok(Some(card_auth_key));
        }
        Profile::Gids | Profile::IsoAdmin => {
            let iso = match (status.profile, iso) {
                (Profile::IsoAdmin, None) => {
                    return Err(Failure::new(
                        Kind::Refused,
                        "ISO profile: none given for this ISO admin card",
                    ))
                }
                (_, iso) => iso,
            };
            for (n, key) in keys.iter().enumerate() {
                let result = if status.profile == Profile::Gids {
                    let mut r1 = [0u8; 16];
                    random_fill(&mut r1);
                    let mut flow = GidsChangeAdminKey::new(&target.admin_key, r1);
                    block_on(driver.run(
                        &mut flow,
                        &mut LocalKey::new(key.clone(), rand::rngs::OsRng),
                    ))
                } else if let Some(iso) = iso {
                    let profile = IsoProfile {
                        algorithm: key.algorithm(),
                        ..iso
                    };
                    let mut flow = IsoChangeAdminKey::new(profile, &target.admin_key);
                    block_on(driver.run(
                        &mut flow,
                        &mut LocalKey::new(key.clone(), rand::rngs::OsRng),
                    ))
                } else {
                    return Err(Failure::new(
                        Kind::Refused,
                        "ISO profile: none given for this ISO admin card",
                    ));
                };
                match result {
                    Ok(_) => return Ok(None),
                    Err(e) if try_next(&e) && n + 1 < keys.len() => continue,
                    Err(e) => return Err(card_failure("admin key: changing it failed", e)),
                }
            }
        }
    }
    Ok(None)
}
