//! Block ciphers of the card (3DES / AES, ECB; 3DES-CBC for GIDS) and constant-time compare.

use aes::{Aes128, Aes192, Aes256};
use cipher::{generic_array::GenericArray, BlockDecrypt, BlockEncrypt, KeyInit};
use des::TdesEde3;
use zeroize::Zeroizing;

use crate::config::Algorithm;

/// A keyed block cipher.
pub(crate) enum Cipher {
    Tdes(TdesEde3),
    Aes128(Aes128),
    Aes192(Aes192),
    Aes256(Aes256),
}

impl Cipher {
    /// Key the cipher; `None` when the key length does not fit the algorithm.
    pub(crate) fn new(alg: Algorithm, key: &[u8]) -> Option<Self> {
        if key.len() != alg.key_len() {
            return None;
        }
        Some(match alg {
            Algorithm::TripleDes => Cipher::Tdes(TdesEde3::new_from_slice(key).ok()?),
            Algorithm::Aes128 => Cipher::Aes128(Aes128::new_from_slice(key).ok()?),
            Algorithm::Aes192 => Cipher::Aes192(Aes192::new_from_slice(key).ok()?),
            Algorithm::Aes256 => Cipher::Aes256(Aes256::new_from_slice(key).ok()?),
        })
    }

    /// Block length in bytes.
    pub(crate) fn block_len(&self) -> usize {
        match self {
            Cipher::Tdes(_) => 8,
            _ => 16,
        }
    }

    fn encrypt_block(&self, block: &mut [u8]) {
        match self {
            Cipher::Tdes(c) => c.encrypt_block(GenericArray::from_mut_slice(block)),
            Cipher::Aes128(c) => c.encrypt_block(GenericArray::from_mut_slice(block)),
            Cipher::Aes192(c) => c.encrypt_block(GenericArray::from_mut_slice(block)),
            Cipher::Aes256(c) => c.encrypt_block(GenericArray::from_mut_slice(block)),
        }
    }

    fn decrypt_block(&self, block: &mut [u8]) {
        match self {
            Cipher::Tdes(c) => c.decrypt_block(GenericArray::from_mut_slice(block)),
            Cipher::Aes128(c) => c.decrypt_block(GenericArray::from_mut_slice(block)),
            Cipher::Aes192(c) => c.decrypt_block(GenericArray::from_mut_slice(block)),
            Cipher::Aes256(c) => c.decrypt_block(GenericArray::from_mut_slice(block)),
        }
    }

    /// ECB-encrypt whole blocks; `None` when the length is not a multiple of the block.
    pub(crate) fn encrypt_ecb(&self, data: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let n = self.block_len();
        if data.len() % n != 0 {
            return None;
        }
        let mut out = Zeroizing::new(data.to_vec());
        for block in out.chunks_exact_mut(n) {
            self.encrypt_block(block);
        }
        Some(out)
    }

    /// CBC-encrypt whole blocks with a zero IV.
    pub(crate) fn encrypt_cbc(&self, data: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let n = self.block_len();
        if data.len() % n != 0 {
            return None;
        }
        let mut out = Zeroizing::new(data.to_vec());
        let mut prev = Zeroizing::new(vec![0u8; n]);
        for block in out.chunks_exact_mut(n) {
            for (b, p) in block.iter_mut().zip(prev.iter()) {
                *b ^= p;
            }
            self.encrypt_block(block);
            prev.copy_from_slice(block);
        }
        Some(out)
    }

    /// CBC-decrypt whole blocks with a zero IV.
    pub(crate) fn decrypt_cbc(&self, data: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let n = self.block_len();
        if data.len() % n != 0 {
            return None;
        }
        let mut out = Zeroizing::new(data.to_vec());
        let mut prev = Zeroizing::new(vec![0u8; n]);
        for (block, cipher_block) in out.chunks_exact_mut(n).zip(data.chunks_exact(n)) {
            self.decrypt_block(block);
            for (b, p) in block.iter_mut().zip(prev.iter()) {
                *b ^= p;
            }
            prev.copy_from_slice(cipher_block);
        }
        Some(out)
    }
}

/// Compare two byte strings without a data-dependent early exit (the lengths are not secret).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    core::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_MGMT_KEY;

    #[test]
    fn design_vector_and_cbc_roundtrip() {
        let c = Cipher::new(Algorithm::TripleDes, &DEFAULT_MGMT_KEY).unwrap();
        let e = c
            .encrypt_ecb(&[0xD4, 0xBD, 0x9B, 0x1D, 0xA5, 0xD2, 0x6C, 0xDA])
            .unwrap();
        assert_eq!(&e[..], &[0xB5, 0xA8, 0x5C, 0x0F, 0x02, 0x07, 0xFC, 0xF1]);
        let plain: Vec<u8> = (0u8..40).collect();
        let enc = c.encrypt_cbc(&plain).unwrap();
        assert_eq!(&c.decrypt_cbc(&enc).unwrap()[..], &plain[..]);
        // The first CBC block with a zero IV is the ECB block.
        assert_eq!(&enc[..8], &c.encrypt_ecb(&plain[..8]).unwrap()[..]);
        assert!(c.encrypt_ecb(&[0; 7]).is_none());
        assert!(Cipher::new(Algorithm::Aes128, &DEFAULT_MGMT_KEY).is_none());
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
