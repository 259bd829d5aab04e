//! Card configurations: what the card holds when it leaves the "factory".
//!
//! Every struct that holds a secret (PIN, PUK, management or admin key) prints it redacted in
//! `Debug` and zeroizes it on drop.

use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// The factory management / admin key of PIV cards (and of YubiKey 5.7's AES-192 default):
/// `010203040506070801020304050607080102030405060708`.
pub const DEFAULT_MGMT_KEY: [u8; 24] = [
    1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
];

/// Factory PIV PIN `123456`.
pub const DEFAULT_PIV_PIN: &[u8] = b"123456";
/// Factory PIV PUK `12345678`.
pub const DEFAULT_PIV_PUK: &[u8] = b"12345678";
/// Factory PIN of the GIDS and ISO admin profiles: `1234`.
pub const DEFAULT_ADMIN_CARD_PIN: &[u8] = b"1234";

const REDACTED: &str = "<redacted>";

/// Which application the simulated card carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// NIST SP 800-73-4 PIV with YubiKey extensions.
    Piv,
    /// Microsoft Generic Identity Device Specification (admin-key unblock).
    Gids,
    /// ISO 7816-4 admin challenge-response (Windows-minidriver style).
    IsoAdmin,
}

/// Symmetric algorithm of a management or admin key (all used in ECB mode, except the GIDS
/// exchange, which is 3DES-CBC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Three-key 3DES (EDE), 24-byte key, 8-byte block. PIV algorithm id `03` (`00` also accepted).
    TripleDes,
    /// AES-128, 16-byte key, 16-byte block. PIV algorithm id `08`.
    Aes128,
    /// AES-192, 24-byte key, 16-byte block. PIV algorithm id `0A`.
    Aes192,
    /// AES-256, 32-byte key, 16-byte block. PIV algorithm id `0C`.
    Aes256,
}

impl Algorithm {
    /// The PIV algorithm identifier (SP 800-78): `03`, `08`, `0A`, `0C`.
    pub const fn piv_id(self) -> u8 {
        match self {
            Algorithm::TripleDes => 0x03,
            Algorithm::Aes128 => 0x08,
            Algorithm::Aes192 => 0x0A,
            Algorithm::Aes256 => 0x0C,
        }
    }

    /// The algorithm for a PIV algorithm identifier; `00` (the "default" id) is 3DES.
    pub const fn from_piv_id(id: u8) -> Option<Self> {
        match id {
            0x00 | 0x03 => Some(Algorithm::TripleDes),
            0x08 => Some(Algorithm::Aes128),
            0x0A => Some(Algorithm::Aes192),
            0x0C => Some(Algorithm::Aes256),
            _ => None,
        }
    }

    /// Key length in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            Algorithm::TripleDes | Algorithm::Aes192 => 24,
            Algorithm::Aes128 => 16,
            Algorithm::Aes256 => 32,
        }
    }

    /// Block length in bytes (also the challenge length): 8 for 3DES, 16 for AES.
    pub const fn block_len(self) -> usize {
        match self {
            Algorithm::TripleDes => 8,
            _ => 16,
        }
    }
}

/// A PIV card (YubiKey-like).
///
/// PIN and PUK are stored unpadded (6-8 bytes); the card pads them with `FF` to 8 bytes when it
/// compares. `mgmt_key` must be `mgmt_algorithm.key_len()` bytes long, otherwise management-key
/// authentication answers `6F 00`.
#[derive(Clone)]
pub struct PivConfig {
    /// PIN (key reference 80), unpadded.
    pub pin: Vec<u8>,
    /// PUK (key reference 81), unpadded.
    pub puk: Vec<u8>,
    /// PIN retry limit.
    pub pin_max_tries: u8,
    /// PIN tries left; 0 = blocked.
    pub pin_tries_left: u8,
    /// PUK retry limit.
    pub puk_max_tries: u8,
    /// PUK tries left; 0 = blocked.
    pub puk_tries_left: u8,
    /// Algorithm of the card management key (9B).
    pub mgmt_algorithm: Algorithm,
    /// The card management key (9B).
    pub mgmt_key: Vec<u8>,
    /// Answer YubiKey GET METADATA (`00 F7`); when false the card answers `6D 00` to it and
    /// reports firmware 4.3.7 (a YubiKey 4, which has no F7) in GET VERSION.
    pub supports_metadata: bool,
    /// Serial number returned by GET SERIAL (`00 F8`).
    pub serial: u32,
    /// GUID in the CHUID (tag 34).
    pub guid: [u8; 16],
    /// YubiKey-style PIN complexity: a trivial new PIN is refused with `69 85`.
    pub enforce_pin_complexity: bool,
    /// Seed of the card's random generator (challenges, witnesses).
    pub seed: u64,
    /// The Card Authentication key (9E), a P-256 private scalar; `None`: the slot is empty
    /// (sign answers `69 85`; GENERATE fills it).
    pub card_auth_key: Option<[u8; 32]>,
    /// The X.509 certificate in the Card Authentication certificate object (`5F C1 01`), DER;
    /// `None`: the object is empty (`6A 82`).
    pub card_auth_certificate: Option<Vec<u8>>,
}

impl PivConfig {
    /// A card as it leaves the factory: PIN 123456, PUK 12345678, 3 tries each, 3DES management
    /// key 0102..08 x3, GET METADATA supported, no PIN complexity enforcement.
    pub fn factory() -> Self {
        PivConfig {
            pin: DEFAULT_PIV_PIN.to_vec(),
            puk: DEFAULT_PIV_PUK.to_vec(),
            pin_max_tries: 3,
            pin_tries_left: 3,
            puk_max_tries: 3,
            puk_tries_left: 3,
            mgmt_algorithm: Algorithm::TripleDes,
            mgmt_key: DEFAULT_MGMT_KEY.to_vec(),
            supports_metadata: true,
            serial: 12_345_678,
            guid: [
                0x5A, 0x1E, 0xC0, 0xDE, 0x00, 0x00, 0x40, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x01,
            ],
            enforce_pin_complexity: false,
            seed: 0x5EED_0001,
            card_auth_key: Some(crate::piv::card_auth_scalar(0x5EED_0001)),
            card_auth_certificate: None,
        }
    }

    /// The Card Authentication public key (9E) as an uncompressed SEC1 point (`04 || X || Y`),
    /// as a server records it at enrollment; `None` for an empty slot.
    pub fn card_auth_public_key(&self) -> Option<[u8; 65]> {
        self.card_auth_key
            .and_then(|k| crate::piv::card_auth_public(&k))
    }

    /// The same card with its PIN blocked (`pin_tries_left = 0`).
    pub fn blocked(mut self) -> Self {
        self.pin_tries_left = 0;
        self
    }
}

impl Default for PivConfig {
    fn default() -> Self {
        Self::factory()
    }
}

impl fmt::Debug for PivConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PivConfig")
            .field("pin", &REDACTED)
            .field("puk", &REDACTED)
            .field("pin_max_tries", &self.pin_max_tries)
            .field("pin_tries_left", &self.pin_tries_left)
            .field("puk_max_tries", &self.puk_max_tries)
            .field("puk_tries_left", &self.puk_tries_left)
            .field("mgmt_algorithm", &self.mgmt_algorithm)
            .field("mgmt_key", &REDACTED)
            .field("supports_metadata", &self.supports_metadata)
            .field("serial", &self.serial)
            .field("guid", &self.guid)
            .field("enforce_pin_complexity", &self.enforce_pin_complexity)
            .field("seed", &self.seed)
            .field("card_auth_key", &self.card_auth_key.map(|_| REDACTED))
            .finish()
    }
}

impl Drop for PivConfig {
    fn drop(&mut self) {
        self.pin.zeroize();
        self.puk.zeroize();
        self.mgmt_key.zeroize();
        self.card_auth_key.zeroize();
    }
}

impl ZeroizeOnDrop for PivConfig {}

/// A GIDS card with a 3DES admin key (key reference 80 in MSE SET).
#[derive(Clone)]
pub struct GidsConfig {
    /// PIN (reference 80), raw bytes, no padding.
    pub pin: Vec<u8>,
    /// PIN retry limit.
    pub pin_max_tries: u8,
    /// PIN tries left; 0 = blocked.
    pub pin_tries_left: u8,
    /// 24-byte 3DES admin key.
    pub admin_key: [u8; 24],
    /// Admin-key retry limit.
    pub admin_max_tries: u8,
    /// Admin-key tries left; 0 = blocked.
    pub admin_tries_left: u8,
    /// Card serial (identity).
    pub serial: [u8; 16],
    /// Seed of the card's random generator.
    pub seed: u64,
}

impl GidsConfig {
    /// Factory GIDS card: PIN 1234, 3 tries, admin key 0102..08 x3, 10 admin tries.
    pub fn factory() -> Self {
        GidsConfig {
            pin: DEFAULT_ADMIN_CARD_PIN.to_vec(),
            pin_max_tries: 3,
            pin_tries_left: 3,
            admin_key: DEFAULT_MGMT_KEY,
            admin_max_tries: 10,
            admin_tries_left: 10,
            serial: *b"SIMGIDS000000001",
            seed: 0x5EED_0002,
        }
    }

    /// The same card with its PIN blocked.
    pub fn blocked(mut self) -> Self {
        self.pin_tries_left = 0;
        self
    }
}

impl Default for GidsConfig {
    fn default() -> Self {
        Self::factory()
    }
}

impl fmt::Debug for GidsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GidsConfig")
            .field("pin", &REDACTED)
            .field("pin_max_tries", &self.pin_max_tries)
            .field("pin_tries_left", &self.pin_tries_left)
            .field("admin_key", &REDACTED)
            .field("admin_max_tries", &self.admin_max_tries)
            .field("admin_tries_left", &self.admin_tries_left)
            .field("serial", &self.serial)
            .field("seed", &self.seed)
            .finish()
    }
}

impl Drop for GidsConfig {
    fn drop(&mut self) {
        self.pin.zeroize();
        self.admin_key.zeroize();
    }
}

impl ZeroizeOnDrop for GidsConfig {}

/// An ISO 7816-4 card with an admin key for GET CHALLENGE / EXTERNAL AUTHENTICATE.
#[derive(Clone)]
pub struct IsoConfig {
    /// PIN, raw bytes, no padding.
    pub pin: Vec<u8>,
    /// PIN retry limit.
    pub pin_max_tries: u8,
    /// PIN tries left; 0 = blocked.
    pub pin_tries_left: u8,
    /// Admin key algorithm: 3DES (24-byte key) or AES-128/192/256.
    pub admin_algorithm: Algorithm,
    /// Admin key; must be `admin_algorithm.key_len()` bytes, otherwise EXTERNAL AUTHENTICATE
    /// answers `6F 00`.
    pub admin_key: Vec<u8>,
    /// Key reference of the admin key (P2 of EXTERNAL AUTHENTICATE), factory `01`.
    pub admin_key_ref: u8,
    /// Reference of the PIN (P2 of VERIFY / RESET RETRY COUNTER), factory `80`.
    pub pin_ref: u8,
    /// Admin-key retry limit.
    pub admin_max_tries: u8,
    /// Admin-key tries left; 0 = blocked.
    pub admin_tries_left: u8,
    /// Card serial returned by GET DATA `00 CA 01 00`.
    pub serial: [u8; 16],
    /// Seed of the card's random generator.
    pub seed: u64,
    /// The application's AID (SELECT by DF name), factory [`crate::ISO_ADMIN_AID`]: another
    /// one stands for a vendor's card the simulator's profile does not reach.
    pub aid: Vec<u8>,
}

impl IsoConfig {
    /// Factory ISO admin card: PIN 1234, 3 tries, 3DES admin key 0102..08 x3 (reference 01),
    /// PIN reference 80, 10 admin tries.
    pub fn factory() -> Self {
        IsoConfig {
            pin: DEFAULT_ADMIN_CARD_PIN.to_vec(),
            pin_max_tries: 3,
            pin_tries_left: 3,
            admin_algorithm: Algorithm::TripleDes,
            admin_key: DEFAULT_MGMT_KEY.to_vec(),
            admin_key_ref: 0x01,
            pin_ref: 0x80,
            admin_max_tries: 10,
            admin_tries_left: 10,
            serial: *b"SIMISOADMIN00001",
            seed: 0x5EED_0003,
            aid: crate::ISO_ADMIN_AID.to_vec(),
        }
    }

    /// The same card answering on `aid` (1 to 16 bytes) instead of the simulator's AID.
    pub fn with_aid(mut self, aid: &[u8]) -> Self {
        self.aid = aid.to_vec();
        self
    }

    /// The same card with its PIN blocked.
    pub fn blocked(mut self) -> Self {
        self.pin_tries_left = 0;
        self
    }
}

impl Default for IsoConfig {
    fn default() -> Self {
        Self::factory()
    }
}

impl fmt::Debug for IsoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IsoConfig")
            .field("pin", &REDACTED)
            .field("pin_max_tries", &self.pin_max_tries)
            .field("pin_tries_left", &self.pin_tries_left)
            .field("admin_algorithm", &self.admin_algorithm)
            .field("admin_key", &REDACTED)
            .field("admin_key_ref", &self.admin_key_ref)
            .field("pin_ref", &self.pin_ref)
            .field("admin_max_tries", &self.admin_max_tries)
            .field("admin_tries_left", &self.admin_tries_left)
            .field("serial", &self.serial)
            .field("seed", &self.seed)
            .field("aid", &self.aid)
            .finish()
    }
}

impl Drop for IsoConfig {
    fn drop(&mut self) {
        self.pin.zeroize();
        self.admin_key.zeroize();
    }
}

impl ZeroizeOnDrop for IsoConfig {}

/// The card to simulate, with its persistent state.
#[derive(Clone, Debug)]
pub enum Config {
    /// A PIV card.
    Piv(PivConfig),
    /// A GIDS card.
    Gids(GidsConfig),
    /// An ISO 7816-4 admin challenge-response card.
    Iso(IsoConfig),
}

impl Config {
    /// The profile of this configuration.
    pub fn profile(&self) -> Profile {
        match self {
            Config::Piv(_) => Profile::Piv,
            Config::Gids(_) => Profile::Gids,
            Config::Iso(_) => Profile::IsoAdmin,
        }
    }
}

impl From<PivConfig> for Config {
    fn from(c: PivConfig) -> Self {
        Config::Piv(c)
    }
}

impl From<GidsConfig> for Config {
    fn from(c: GidsConfig) -> Self {
        Config::Gids(c)
    }
}

impl From<IsoConfig> for Config {
    fn from(c: IsoConfig) -> Self {
        Config::Iso(c)
    }
}

/// Transport behaviour of the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Largest response data the card returns at once (clamped to at least 1). Longer data comes
    /// back as the first part and `61 XX`; GET RESPONSE `00 C0 00 00 Le` fetches the rest.
    pub max_response_data: usize,
    /// When true, a short, non-zero Le smaller than the response data is answered `6C XX`
    /// (XX = the exact length) with no data, as strict T=0 cards do. When false, Le is not
    /// checked and the whole response data is returned (chunked by `max_response_data`).
    pub strict_le: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_response_data: 256,
            strict_le: false,
        }
    }
}
