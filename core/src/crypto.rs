//! The admin key: 3DES or AES-128/192/256, as PIV management keys and GIDS / ISO admin keys use
//! them.
//!
//! Only block operations live here: ECB over whole blocks (PIV GENERAL AUTHENTICATE, ISO
//! EXTERNAL AUTHENTICATE) and 3DES-CBC without padding (GIDS mutual authentication). The key is
//! kept in a fixed buffer, zeroized on drop, never printed by `Debug`, and compared in constant
//! time. The cipher is keyed afresh for every call: a 3DES key schedule costs about as much as one
//! block, and nothing keyed outlives the call.

use cipher::{Block, BlockDecrypt, BlockEncrypt, Key, KeyInit};
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Admin-key algorithm, with its PIV algorithm identifier (SP 800-78 table 6-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Algorithm {
    /// Three-key Triple DES (EDE), 24-byte key, 8-byte block. PIV identifier `03` (or `00`).
    TripleDes,
    /// AES-128, 16-byte key, 16-byte block. PIV identifier `08`.
    Aes128,
    /// AES-192, 24-byte key, 16-byte block. PIV identifier `0A`.
    Aes192,
    /// AES-256, 32-byte key, 16-byte block. PIV identifier `0C`.
    Aes256,
}

impl core::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::TripleDes => "3DES",
            Self::Aes128 => "AES-128",
            Self::Aes192 => "AES-192",
            Self::Aes256 => "AES-256",
        })
    }
}

impl Algorithm {
    /// The PIV algorithm identifier (P1 of GENERAL AUTHENTICATE): `03`, `08`, `0A` or `0C`.
    pub const fn piv_id(self) -> u8 {
        match self {
            Self::TripleDes => 0x03,
            Self::Aes128 => 0x08,
            Self::Aes192 => 0x0A,
            Self::Aes256 => 0x0C,
        }
    }

    /// The algorithm for a PIV identifier; `00` and `03` are both 3DES. `None` for anything else.
    pub const fn from_piv_id(id: u8) -> Option<Self> {
        match id {
            0x00 | 0x03 => Some(Self::TripleDes),
            0x08 => Some(Self::Aes128),
            0x0A => Some(Self::Aes192),
            0x0C => Some(Self::Aes256),
            _ => None,
        }
    }

    /// Block length in bytes: 8 for 3DES, 16 for AES (also the length of a card challenge).
    pub const fn block_len(self) -> usize {
        match self {
            Self::TripleDes => 8,
            Self::Aes128 | Self::Aes192 | Self::Aes256 => 16,
        }
    }

    /// Key length in bytes: 24 (3DES), 16, 24 or 32 (AES).
    pub const fn key_len(self) -> usize {
        match self {
            Self::TripleDes | Self::Aes192 => 24,
            Self::Aes128 => 16,
            Self::Aes256 => 32,
        }
    }
}

/// Why a key could not be built or a block operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CryptoError {
    /// The key has the wrong length for its algorithm.
    KeyLength,
    /// The operation needs another algorithm than the key's (3DES-CBC with an AES key, a
    /// request for an AES block with a 3DES key).
    WrongAlgorithm,
    /// The data is empty or not a whole number of blocks.
    BlockLength,
    /// A hex key contains a character that is not a hex digit, space or colon, or an odd number
    /// of digits.
    InvalidHex,
    /// An AES operation in a build without the `aes` feature.
    Unsupported,
}

impl core::fmt::Display for CryptoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::KeyLength => "the key length does not match the algorithm",
            Self::WrongAlgorithm => "the operation needs another key algorithm",
            Self::BlockLength => "the data is not a non-empty whole number of cipher blocks",
            Self::InvalidHex => "the key is not valid hexadecimal",
            Self::Unsupported => "AES is not built in (feature `aes`)",
        })
    }
}

impl core::error::Error for CryptoError {}

/// The PIV factory-default management key bytes, `0102030405060708` three times. Cards ship
/// them as a 3DES key ([`AdminKey::piv_default`]); YubiKey 5.7 ships them as an AES-192 key.
pub const PIV_DEFAULT_KEY: [u8; 24] = [
    1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
];

/// The admin key (PIV management key, GIDS / ISO admin key).
///
/// Zeroized on drop. `Debug` prints only the algorithm. There is no `PartialEq`: compare keys
/// with the constant-time [`AdminKey::ct_eq`].
#[derive(Clone)]
pub struct AdminKey {
    algorithm: Algorithm,
    /// The key in its first `algorithm.key_len()` bytes; the rest stays zero.
    key: [u8; 32],
}

impl Drop for AdminKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl ZeroizeOnDrop for AdminKey {}

impl core::fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AdminKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for AdminKey {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "AdminKey {{ algorithm: {}, .. }}", self.algorithm);
    }
}

impl AdminKey {
    /// A key of `algorithm` from its raw bytes; [`CryptoError::KeyLength`] unless
    /// `key.len() == algorithm.key_len()`. 3DES keys with equal parts (the PIV default is one)
    /// are accepted: cards use them.
    pub fn new(algorithm: Algorithm, key: &[u8]) -> Result<Self, CryptoError> {
        if key.len() != algorithm.key_len() {
            return Err(CryptoError::KeyLength);
        }
        let mut out = Self::zeroed(algorithm);
        out.key[..key.len()].copy_from_slice(key);
        Ok(out)
    }

    /// The PIV factory default: 3DES `010203040506070801020304050607080102030405060708`.
    pub fn piv_default() -> Self {
        let mut out = Self::zeroed(Algorithm::TripleDes);
        out.key[..PIV_DEFAULT_KEY.len()].copy_from_slice(&PIV_DEFAULT_KEY);
        out
    }

    /// Parses a hex key (either case; spaces, tabs and colons between digits are ignored), as
    /// typed on a command line. [`CryptoError::InvalidHex`] for another character or an odd
    /// number of digits, [`CryptoError::KeyLength`] for the wrong number of bytes. Nothing is
    /// allocated, and the partly parsed key is zeroized on error.
    pub fn from_hex(algorithm: Algorithm, hex: &str) -> Result<Self, CryptoError> {
        let mut out = Self::zeroed(algorithm);
        let mut digits = 0usize;
        for c in hex.bytes() {
            let nibble = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                b' ' | b'\t' | b':' => continue,
                _ => return Err(CryptoError::InvalidHex),
            };
            let byte = out.key.get_mut(digits / 2).ok_or(CryptoError::KeyLength)?;
            *byte = (*byte << 4) | nibble;
            digits += 1;
        }
        if digits % 2 != 0 {
            return Err(CryptoError::InvalidHex);
        }
        if digits / 2 != algorithm.key_len() {
            return Err(CryptoError::KeyLength);
        }
        Ok(out)
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The raw key bytes, for personalisation commands only (setting a new management key on a
    /// card, provisioning). Do not log, store or compare them; use [`AdminKey::ct_eq`].
    pub fn expose_bytes(&self) -> &[u8] {
        &self.key[..self.algorithm.key_len()]
    }

    /// Constant-time equality: same algorithm and same key bytes.
    #[must_use]
    pub fn ct_eq(&self, other: &AdminKey) -> bool {
        let same_alg = Choice::from(u8::from(self.algorithm == other.algorithm));
        (same_alg & self.key.ct_eq(&other.key)).into()
    }

    /// ECB encryption of every block of `data`, in place. `data.len()` must be a non-zero
    /// multiple of [`Algorithm::block_len`], else [`CryptoError::BlockLength`].
    pub fn encrypt_ecb(&self, data: &mut [u8]) -> Result<(), CryptoError> {
        self.ecb(data, Direction::Encrypt)
    }

    /// ECB decryption of every block of `data`, in place; same length rule as
    /// [`AdminKey::encrypt_ecb`].
    pub fn decrypt_ecb(&self, data: &mut [u8]) -> Result<(), CryptoError> {
        self.ecb(data, Direction::Decrypt)
    }

    /// 3DES-CBC encryption with `iv`, in place, no padding (GIDS mutual authentication).
    /// [`CryptoError::WrongAlgorithm`] for a non-3DES key, [`CryptoError::BlockLength`] unless
    /// `data.len()` is a non-zero multiple of 8.
    pub fn cbc_encrypt(&self, iv: &[u8; 8], data: &mut [u8]) -> Result<(), CryptoError> {
        self.check_cbc(data)?;
        with_cipher(self.expose_bytes(), |cipher: &des::TdesEde3| {
            let mut chain = *iv;
            for block in data.chunks_exact_mut(8) {
                xor8(block, &chain);
                cipher.encrypt_block(Block::<des::TdesEde3>::from_mut_slice(block));
                chain.copy_from_slice(block);
            }
        })
    }

    /// 3DES-CBC decryption with `iv`, in place, no padding; same rules as
    /// [`AdminKey::cbc_encrypt`].
    pub fn cbc_decrypt(&self, iv: &[u8; 8], data: &mut [u8]) -> Result<(), CryptoError> {
        self.check_cbc(data)?;
        with_cipher(self.expose_bytes(), |cipher: &des::TdesEde3| {
            let mut chain = *iv;
            let mut next = [0u8; 8];
            for block in data.chunks_exact_mut(8) {
                next.copy_from_slice(block);
                cipher.decrypt_block(Block::<des::TdesEde3>::from_mut_slice(block));
                xor8(block, &chain);
                chain = next;
            }
        })
    }

    const fn zeroed(algorithm: Algorithm) -> Self {
        Self {
            algorithm,
            key: [0; 32],
        }
    }

    fn ecb(&self, data: &mut [u8], direction: Direction) -> Result<(), CryptoError> {
        if data.is_empty() || data.len() % self.algorithm.block_len() != 0 {
            return Err(CryptoError::BlockLength);
        }
        let key = self.expose_bytes();
        match self.algorithm {
            Algorithm::TripleDes => ecb_with::<des::TdesEde3>(key, data, direction),
            #[cfg(feature = "aes")]
            Algorithm::Aes128 => ecb_with::<aes::Aes128>(key, data, direction),
            #[cfg(feature = "aes")]
            Algorithm::Aes192 => ecb_with::<aes::Aes192>(key, data, direction),
            #[cfg(feature = "aes")]
            Algorithm::Aes256 => ecb_with::<aes::Aes256>(key, data, direction),
            #[cfg(not(feature = "aes"))]
            Algorithm::Aes128 | Algorithm::Aes192 | Algorithm::Aes256 => {
                Err(CryptoError::Unsupported)
            }
        }
    }

    fn check_cbc(&self, data: &[u8]) -> Result<(), CryptoError> {
        if self.algorithm != Algorithm::TripleDes {
            return Err(CryptoError::WrongAlgorithm);
        }
        if data.is_empty() || data.len() % 8 != 0 {
            return Err(CryptoError::BlockLength);
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Direction {
    Encrypt,
    Decrypt,
}

/// ECB with cipher `C` over `data`, whose length the caller checked against `C`'s block size.
fn ecb_with<C>(key: &[u8], data: &mut [u8], direction: Direction) -> Result<(), CryptoError>
where
    C: KeyInit + BlockEncrypt + BlockDecrypt,
{
    with_cipher(key, |cipher: &C| {
        for block in data.chunks_exact_mut(C::block_size()) {
            let block = Block::<C>::from_mut_slice(block);
            match direction {
                Direction::Encrypt => cipher.encrypt_block(block),
                Direction::Decrypt => cipher.decrypt_block(block),
            }
        }
    })
}

/// Runs `f` with cipher `C` keyed with `key`, the cipher built in place in this frame:
/// `C::new_from_slice` hands it back inside a `Result`, which the optimiser moves once more on
/// the stack (3DES: 384 bytes of round keys a copy, and the copies are not wiped). The key
/// copy is wiped here, the cipher on drop (`des` / `aes` with `zeroize`).
fn with_cipher<C: KeyInit, T>(key: &[u8], f: impl FnOnce(&C) -> T) -> Result<T, CryptoError> {
    let mut bytes = Key::<C>::from_exact_iter(key.iter().copied()).ok_or(CryptoError::KeyLength)?;
    let cipher = C::new(&bytes);
    bytes.as_mut_slice().zeroize();
    Ok(f(&cipher))
}

fn xor8(block: &mut [u8], with: &[u8; 8]) {
    for (b, w) in block.iter_mut().zip(with) {
        *b ^= w;
    }
}

/// Constant-time equality of two byte strings (via `subtle`); `false` if the lengths differ (the
/// length itself is not hidden).
#[must_use]
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests;
