//! The Card Authentication key (9E, SP 800-73-4 Part 1 §3.2.4 and Part 2 §3.2.4): usable
//! without the PIN, so a host can make the card prove it is present. The commands read its
//! certificate, sign a 32-byte digest with it (ECC P-256), and generate it in an empty slot.

use super::{
    INS_GENERAL_AUTHENTICATE, INS_GET_DATA, TAG_CHALLENGE, TAG_DYNAMIC_AUTH, TAG_RESPONSE,
};
use crate::apdu::{Command, EncodeError};
use crate::tlv;

/// Key reference of the Card Authentication key.
pub const CARD_AUTH_REF: u8 = 0x9E;
/// PIV algorithm identifier of ECC P-256 (SP 800-78-4 Table 6-2).
pub const ALG_ECC_P256: u8 = 0x11;
/// Length of the digest the card signs with a P-256 key.
pub const P256_DIGEST_LEN: usize = 32;
/// Length of an uncompressed P-256 point (`04 || X || Y`), as GENERATE returns it.
pub const P256_POINT_LEN: usize = 65;

const INS_GENERATE_ASYMMETRIC: u8 = 0x47;
const CERT_REQUEST: [u8; 5] = [0x5C, 0x03, 0x5F, 0xC1, 0x01];
const GENERATE_P256: [u8; 5] = [0xAC, 0x03, 0x80, 0x01, ALG_ECC_P256];
/// Data of the sign command: `7C 24 82 00 81 20` and the digest.
pub const SIGN_BUF_LEN: usize = 6 + P256_DIGEST_LEN;

/// GET DATA of the X.509 Certificate for Card Authentication (`5F C1 01`):
/// `00 CB 3F FF 05 5C 03 5F C1 01 00`.
pub const fn get_card_auth_certificate() -> Command<'static> {
    Command::new(0x00, INS_GET_DATA, 0x3F, 0xFF)
        .with_data(&CERT_REQUEST)
        .with_le(256)
}

/// GENERATE ASYMMETRIC KEY PAIR for 9E, ECC P-256: `00 47 00 9E 05 AC 03 80 01 11 00`. Needs a
/// management-key authentication first in the same session; replaces any key in the slot, so
/// send it only for a slot known to be empty.
pub const fn generate_card_auth_key() -> Command<'static> {
    Command::new(0x00, INS_GENERATE_ASYMMETRIC, 0x00, CARD_AUTH_REF)
        .with_data(&GENERATE_P256)
        .with_le(256)
}

/// GENERAL AUTHENTICATE with 9E, ECC P-256, over a 32-byte digest:
/// `00 87 11 9E 26 7C 24 82 00 81 20 <digest> 00`, the data written into `buf` (at least
/// [`SIGN_BUF_LEN`] bytes). The card answers `7C .. 82 <DER ECDSA signature>`.
pub fn sign_card_auth<'b>(
    buf: &'b mut [u8],
    digest: &[u8; P256_DIGEST_LEN],
) -> Result<Command<'b>, EncodeError> {
    let inner = tlv::encoded_len(TAG_RESPONSE, 0) + tlv::encoded_len(TAG_CHALLENGE, digest.len());
    let mut w = tlv::Writer::new(buf);
    w.header(TAG_DYNAMIC_AUTH, inner)
        .and_then(|w| w.tlv(TAG_RESPONSE, &[]))
        .and_then(|w| w.tlv(TAG_CHALLENGE, digest))
        .map_err(|_| EncodeError::BufferTooSmall(SIGN_BUF_LEN))?;
    Ok(
        Command::new(0x00, INS_GENERAL_AUTHENTICATE, ALG_ECC_P256, CARD_AUTH_REF)
            .with_data(w.finish())
            .with_le(256),
    )
}

/// The DER signature of a sign reply (`7C .. 82 <signature>`), not checked beyond its framing
/// (the verifier parses the DER). `None` for anything else.
pub fn parse_signature(data: &[u8]) -> Option<&[u8]> {
    let (outer, rest) = tlv::read(data).ok()?;
    if outer.tag != TAG_DYNAMIC_AUTH || !rest.is_empty() {
        return None;
    }
    tlv::find(outer.value, TAG_RESPONSE)
        .ok()?
        .filter(|v| !v.is_empty())
}

/// The uncompressed P-256 point of a GENERATE reply (`7F 49 .. 86 41 04 <X> <Y>`). `None` for
/// anything else (another algorithm, a compressed point, garbage).
pub fn parse_generated_p256(data: &[u8]) -> Option<&[u8; P256_POINT_LEN]> {
    let (outer, rest) = tlv::read(data).ok()?;
    if outer.tag != 0x7F49 || !rest.is_empty() {
        return None;
    }
    let point = tlv::find(outer.value, 0x86).ok()??;
    let point: &[u8; P256_POINT_LEN] = point.try_into().ok()?;
    (point[0] == 0x04).then_some(point)
}

/// A certificate object as GET DATA returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CertificateObject<'a> {
    /// The certificate (tag 70), DER unless `compressed`.
    pub certificate: &'a [u8],
    /// CertInfo (tag 71) bit 0: the certificate is gzip-compressed.
    pub compressed: bool,
}

/// Parses `53 .. 70 <certificate> 71 <CertInfo> FE ..`. `None` for anything else (an empty
/// object included).
pub fn parse_certificate_object(data: &[u8]) -> Option<CertificateObject<'_>> {
    let (outer, _) = tlv::read(data).ok()?;
    if outer.tag != 0x53 {
        return None;
    }
    let certificate = tlv::find(outer.value, 0x70).ok()??;
    if certificate.is_empty() {
        return None;
    }
    let compressed = tlv::find(outer.value, 0x71)
        .ok()?
        .and_then(|info| info.first())
        .is_some_and(|b| b & 0x01 != 0);
    Some(CertificateObject {
        certificate,
        compressed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    fn encoded(cmd: &Command<'_>) -> ([u8; 64], usize) {
        let mut out = [0u8; 64];
        let n = cmd.encode(&mut out).unwrap();
        (out, n)
    }

    #[test]
    fn commands_match_sp800_73() {
        let (out, n) = encoded(&get_card_auth_certificate());
        assert_eq!(&out[..n], hex!("00CB3FFF055C035FC10100"));
        let (out, n) = encoded(&generate_card_auth_key());
        assert_eq!(&out[..n], hex!("004700 9E 05 AC03800111 00"));
        let digest = [0xAB; 32];
        let mut buf = [0u8; SIGN_BUF_LEN];
        let cmd = sign_card_auth(&mut buf, &digest).unwrap();
        let (out, n) = encoded(&cmd);
        let mut want = hex!("0087119E26 7C24 8200 8120").to_vec();
        want.extend_from_slice(&digest);
        want.push(0x00);
        assert_eq!(&out[..n], &want[..]);
        let mut small = [0u8; SIGN_BUF_LEN - 1];
        assert!(sign_card_auth(&mut small, &digest).is_err());
    }

    #[test]
    fn replies_parse_and_garbage_does_not() {
        assert_eq!(
            parse_signature(&hex!("7C05 8203 300102")),
            Some(&hex!("300102")[..])
        );
        assert_eq!(parse_signature(&hex!("7C02 8200")), None);
        assert_eq!(parse_signature(&hex!("7D05 8203 300102")), None);
        assert_eq!(parse_signature(&hex!("7C05 8203 3001")), None);

        let mut gen = hex!("7F49 43 8641").to_vec();
        gen.push(0x04);
        gen.extend_from_slice(&[0x11; 64]);
        assert_eq!(parse_generated_p256(&gen).map(|p| p[1]), Some(0x11));
        gen[5] = 0x02;
        assert_eq!(parse_generated_p256(&gen), None);
        assert_eq!(parse_generated_p256(&hex!("7F49 03 860100")), None);

        let obj = parse_certificate_object(&hex!("53 09 7003 300100 710101 FE00")).unwrap();
        assert_eq!(obj.certificate, &hex!("300100")[..]);
        assert!(obj.compressed);
        let obj = parse_certificate_object(&hex!("53 08 7003 300100 710100")).unwrap();
        assert!(!obj.compressed);
        assert_eq!(parse_certificate_object(&hex!("53 00")), None);
        assert_eq!(parse_certificate_object(&hex!("53 02 7000")), None);
        assert_eq!(parse_certificate_object(&hex!("")), None);
    }
}
