//! PIV (NIST SP 800-73-4 Part 2) commands as typed builders and response parsers, plus the
//! YubiKey extensions the flows use (GET METADATA, GET SERIAL).
//!
//! Builders that carry data write it into a caller-provided buffer and return a [`Command`]
//! borrowing it.

use crate::apdu::{Command, Cursor, EncodeError};
use crate::crypto::Algorithm;
use crate::secret::{PivPin, PivPuk};
use crate::tlv;

mod card_auth;

pub use card_auth::{
    generate_card_auth_key, get_card_auth_certificate, parse_certificate_object,
    parse_generated_p256, parse_signature, sign_card_auth, CertificateObject, ALG_ECC_P256,
    CARD_AUTH_REF, P256_DIGEST_LEN, P256_POINT_LEN, SIGN_BUF_LEN,
};

/// The PIV application identifier (NIST RID A0 00 00 03 08, PIX 00 00 10 00).
pub const AID: [u8; 9] = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00];
/// Key reference of the PIV Card Application PIN.
pub const PIN_REF: u8 = 0x80;
/// Key reference of the PIN Unblocking Key.
pub const PUK_REF: u8 = 0x81;
/// Key reference of the card management (admin) key.
pub const MGMT_KEY_REF: u8 = 0x9B;

const INS_VERIFY: u8 = 0x20;
const INS_CHANGE_REFERENCE_DATA: u8 = 0x24;
const INS_RESET_RETRY_COUNTER: u8 = 0x2C;
const INS_GENERAL_AUTHENTICATE: u8 = 0x87;
const INS_GET_DATA: u8 = 0xCB;
const INS_GET_METADATA: u8 = 0xF7;
const INS_GET_SERIAL: u8 = 0xF8;
const INS_SET_MGMT_KEY: u8 = 0xFF;

/// Dynamic authentication template tag.
pub const TAG_DYNAMIC_AUTH: u32 = 0x7C;
/// Witness (mutual authentication, card to host).
pub const TAG_WITNESS: u32 = 0x80;
/// Challenge.
pub const TAG_CHALLENGE: u32 = 0x81;
/// Response.
pub const TAG_RESPONSE: u32 = 0x82;

/// SELECT the PIV application: `00 A4 04 00 09 A0 00 00 03 08 00 00 10 00 00`.
pub const fn select() -> Command<'static> {
    Command::new(0x00, 0xA4, 0x04, 0x00)
        .with_data(&AID)
        .with_le(256)
}

/// VERIFY without data: asks for the retry status of `reference` without spending a try
/// (`90 00` verified, `63 CX` X tries left, `69 83` blocked).
pub const fn verify_status(reference: u8) -> Command<'static> {
    Command::new(0x00, INS_VERIFY, 0x00, reference)
}

/// VERIFY the PIN.
pub fn verify_pin(pin: &PivPin) -> Command<'_> {
    Command::new(0x00, INS_VERIFY, 0x00, PIN_REF).with_data(pin.padded_bytes())
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::secret::PivPin {}
    impl Sealed for crate::secret::PivPuk {}
}

/// PIV reference data CHANGE REFERENCE DATA can change: [`PivPin`] (key reference [`PIN_REF`])
/// and [`PivPuk`] ([`PUK_REF`]). The reference comes from the type, so it always matches the
/// values.
pub trait ReferenceData: sealed::Sealed {
    /// The key reference (P2).
    const KEY_REF: u8;
    /// The padded 8 bytes.
    fn padded(&self) -> &[u8; 8];
}

impl ReferenceData for PivPin {
    const KEY_REF: u8 = PIN_REF;
    fn padded(&self) -> &[u8; 8] {
        self.padded_bytes()
    }
}

impl ReferenceData for PivPuk {
    const KEY_REF: u8 = PUK_REF;
    fn padded(&self) -> &[u8; 8] {
        self.padded_bytes()
    }
}

/// CHANGE REFERENCE DATA of the PIN (two [`PivPin`]s) or the PUK (two [`PivPuk`]s):
/// `00 24 00 <ref> 10 <old 8> <new 8>`, the data written into `buf` (16 bytes needed).
pub fn change_reference_data<'b, R: ReferenceData>(
    buf: &'b mut [u8],
    old: &R,
    new: &R,
) -> Result<Command<'b>, EncodeError> {
    let mut w = Cursor::new(buf);
    w.put(old.padded())?.put(new.padded())?;
    Ok(Command::new(0x00, INS_CHANGE_REFERENCE_DATA, 0x00, R::KEY_REF).with_data(w.finish()))
}

/// RESET RETRY COUNTER: `00 2C 00 80 10 <PUK 8> <new PIN 8>`, the data written into `buf`
/// (16 bytes needed).
///
/// ```
/// use cardunlock_core::piv;
/// use cardunlock_core::secret::{PivPin, PivPuk};
///
/// let (puk, new_pin) = (PivPuk::new(b"12345678").unwrap(), PivPin::new(b"840259").unwrap());
/// let mut buf = [0u8; 16];
/// let cmd = piv::reset_retry_counter(&mut buf, &puk, &new_pin).unwrap();
/// assert_eq!(&cmd.data[..8], b"12345678");
/// ```
///
/// The PUK and the new PIN are distinct types, so swapping them does not compile:
///
/// ```compile_fail
/// use cardunlock_core::piv;
/// use cardunlock_core::secret::{PivPin, PivPuk};
///
/// let (puk, new_pin) = (PivPuk::new(b"12345678").unwrap(), PivPin::new(b"840259").unwrap());
/// let mut buf = [0u8; 16];
/// let cmd = piv::reset_retry_counter(&mut buf, &new_pin, &puk).unwrap();
/// assert_eq!(&cmd.data[..8], b"12345678");
/// ```
pub fn reset_retry_counter<'b>(
    buf: &'b mut [u8],
    puk: &PivPuk,
    new_pin: &PivPin,
) -> Result<Command<'b>, EncodeError> {
    let mut w = Cursor::new(buf);
    w.put(puk.padded_bytes())?.put(new_pin.padded_bytes())?;
    Ok(Command::new(0x00, INS_RESET_RETRY_COUNTER, 0x00, PIN_REF).with_data(w.finish()))
}

/// GET METADATA (YubiKey 5.3+): `00 F7 00 <ref>`.
pub const fn get_metadata(reference: u8) -> Command<'static> {
    Command::new(0x00, INS_GET_METADATA, 0x00, reference).with_le(256)
}

/// GET SERIAL (YubiKey): `00 F8 00 00`.
pub const fn get_serial() -> Command<'static> {
    Command::new(0x00, INS_GET_SERIAL, 0x00, 0x00)
}

const CHUID_REQUEST: [u8; 5] = [0x5C, 0x03, 0x5F, 0xC1, 0x02];

/// GET DATA for the Card Holder Unique Identifier: `00 CB 3F FF 05 5C 03 5F C1 02 00`.
pub const fn get_chuid() -> Command<'static> {
    Command::new(0x00, INS_GET_DATA, 0x3F, 0xFF)
        .with_data(&CHUID_REQUEST)
        .with_le(256)
}

/// Room for SET MANAGEMENT KEY data: algorithm, reference, length and a 32-byte key.
pub const SET_MGMT_KEY_BUF_LEN: usize = 3 + 32;

/// SET MANAGEMENT KEY (YubiKey extension, also in piv-authenticator):
/// `00 FF FF FF <len> <alg> 9B <key len> <key>`, the data written into `buf` (up to
/// [`SET_MGMT_KEY_BUF_LEN`] bytes). Needs a management-key authentication first in the same
/// session.
pub fn set_management_key<'b>(
    buf: &'b mut [u8],
    new_key: &crate::crypto::AdminKey,
) -> Result<Command<'b>, EncodeError> {
    let key = new_key.expose_bytes();
    let mut w = Cursor::new(buf);
    w.put(&[new_key.algorithm().piv_id(), MGMT_KEY_REF, key.len() as u8])?
        .put(key)?;
    Ok(Command::new(0x00, INS_SET_MGMT_KEY, 0xFF, 0xFF).with_data(w.finish()))
}

/// Which first step of a management-key GENERAL AUTHENTICATE to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AuthMode {
    /// Host authenticates to the card only: `7C 02 81 00` asks for a challenge.
    Single,
    /// Both authenticate: `7C 02 80 00` asks for a witness.
    Mutual,
}

const REQUEST_CHALLENGE: [u8; 4] = [0x7C, 0x02, 0x81, 0x00];
const REQUEST_WITNESS: [u8; 4] = [0x7C, 0x02, 0x80, 0x00];

/// GENERAL AUTHENTICATE, first step for key 9B.
pub const fn authenticate_request(algorithm: Algorithm, mode: AuthMode) -> Command<'static> {
    let data: &'static [u8] = match mode {
        AuthMode::Single => &REQUEST_CHALLENGE,
        AuthMode::Mutual => &REQUEST_WITNESS,
    };
    general_authenticate(algorithm, data).with_le(256)
}

/// Room for the largest second step (`7C 24 80 10 <16> 81 10 <16>`).
pub const AUTH_BUF_LEN: usize = 38;

/// GENERAL AUTHENTICATE, second step of single authentication: `7C .. 82 <E_K(challenge)>`,
/// the data written into `buf` (up to [`AUTH_BUF_LEN`] bytes).
pub fn authenticate_response<'b>(
    buf: &'b mut [u8],
    algorithm: Algorithm,
    response: &[u8],
) -> Result<Command<'b>, EncodeError> {
    let needed = tlv::encoded_len(
        TAG_DYNAMIC_AUTH,
        tlv::encoded_len(TAG_RESPONSE, response.len()),
    );
    let mut w = tlv::Writer::new(buf);
    w.header(
        TAG_DYNAMIC_AUTH,
        tlv::encoded_len(TAG_RESPONSE, response.len()),
    )
    .and_then(|w| w.tlv(TAG_RESPONSE, response))
    .map_err(|_| EncodeError::BufferTooSmall(needed))?;
    Ok(general_authenticate(algorithm, w.finish()))
}

/// GENERAL AUTHENTICATE with the management key under `algorithm`, carrying `data`.
const fn general_authenticate(algorithm: Algorithm, data: &[u8]) -> Command<'_> {
    Command::new(
        0x00,
        INS_GENERAL_AUTHENTICATE,
        algorithm.piv_id(),
        MGMT_KEY_REF,
    )
    .with_data(data)
}

/// GENERAL AUTHENTICATE, second step of mutual authentication:
/// `7C .. 80 <D_K(witness)> 81 <host challenge>`, the data written into `buf` (up to
/// [`AUTH_BUF_LEN`] bytes); the card answers `7C .. 82 <E_K(challenge)>`.
pub fn authenticate_mutual<'b>(
    buf: &'b mut [u8],
    algorithm: Algorithm,
    decrypted_witness: &[u8],
    host_challenge: &[u8],
) -> Result<Command<'b>, EncodeError> {
    let inner = tlv::encoded_len(TAG_WITNESS, decrypted_witness.len())
        + tlv::encoded_len(TAG_CHALLENGE, host_challenge.len());
    let needed = tlv::encoded_len(TAG_DYNAMIC_AUTH, inner);
    let mut w = tlv::Writer::new(buf);
    w.header(TAG_DYNAMIC_AUTH, inner)
        .and_then(|w| w.tlv(TAG_WITNESS, decrypted_witness))
        .and_then(|w| w.tlv(TAG_CHALLENGE, host_challenge))
        .map_err(|_| EncodeError::BufferTooSmall(needed))?;
    Ok(general_authenticate(algorithm, w.finish()).with_le(256))
}

/// Extracts the value of `tag` from a `7C` dynamic authentication template, requiring exactly
/// `len` bytes. `None` for anything else (garbage, wrong tag, wrong length).
pub fn parse_auth_template(data: &[u8], tag: u32, len: usize) -> Option<&[u8]> {
    let (outer, rest) = tlv::read(data).ok()?;
    if outer.tag != TAG_DYNAMIC_AUTH || !rest.is_empty() {
        return None;
    }
    tlv::find(outer.value, tag).ok()?.filter(|v| v.len() == len)
}

/// What GET METADATA tells about a key or PIN.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Metadata {
    /// Algorithm byte (tag 01): `FF` for PIN/PUK, the PIV algorithm for keys.
    pub algorithm: Option<u8>,
    /// Whether the factory default value is still set (tag 05).
    pub is_default: Option<bool>,
    /// Total and remaining tries (tag 06).
    pub tries: Option<(u8, u8)>,
}

/// Parses a GET METADATA response. Unknown tags are skipped; malformed TLV gives `None`.
pub fn parse_metadata(data: &[u8]) -> Option<Metadata> {
    let mut m = Metadata::default();
    for item in tlv::iter(data) {
        let item = item.ok()?;
        match (item.tag, item.value) {
            (0x01, [alg]) => m.algorithm = Some(*alg),
            (0x05, [d]) => m.is_default = Some(*d != 0),
            (0x06, [total, left]) => m.tries = Some((*total, *left)),
            _ => {}
        }
    }
    Some(m)
}

/// The card identity the server keys its secrets on.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CardId {
    /// Where the identity comes from.
    pub kind: IdKind,
    bytes: [u8; 25],
    len: u8,
}

/// The source of a [`CardId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IdKind {
    /// CHUID GUID (tag 34), 16 bytes.
    Guid,
    /// CHUID FASC-N (tag 30), 25 bytes.
    FascN,
    /// A vendor serial number (YubiKey GET SERIAL, 4 bytes).
    Serial,
    /// A card serial from GET DATA (GIDS / ISO admin cards).
    CardSerial,
}

impl CardId {
    /// An identity of up to 25 bytes; `None` when empty or longer.
    pub fn new(kind: IdKind, bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() || bytes.len() > 25 {
            return None;
        }
        let mut b = [0u8; 25];
        b.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(Self {
            kind,
            bytes: b,
            len: bytes.len() as u8,
        })
    }

    /// The identity bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

impl core::fmt::Debug for CardId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "CardId({:?}, {})",
            self.kind,
            crate::apdu::Hex(self.as_bytes())
        )
    }
}

impl core::fmt::Display for CardId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Parses the CHUID (`53 <len> ... 30 <FASC-N> ... 34 <GUID> ...`): the GUID when present and not
/// all zero, else the FASC-N.
pub fn parse_chuid(data: &[u8]) -> Option<CardId> {
    let (outer, _) = tlv::read(data).ok()?;
    if outer.tag != 0x53 {
        return None;
    }
    let guid = tlv::find(outer.value, 0x34).ok().flatten();
    if let Some(guid) = guid.filter(|g| g.len() == 16 && g.iter().any(|&b| b != 0)) {
        return CardId::new(IdKind::Guid, guid);
    }
    let fascn = tlv::find(outer.value, 0x30).ok().flatten()?;
    CardId::new(IdKind::FascN, fascn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apdu::test_bytes as bytes;
    use hex_literal::hex;

    #[test]
    fn exact_bytes_from_the_design() {
        assert_eq!(
            &bytes(&select())[..],
            &hex!("00 A4 04 00 09 A0 00 00 03 08 00 00 10 00 00")
        );
        assert_eq!(&bytes(&verify_status(PIN_REF))[..], &hex!("00 20 00 80"));
        assert_eq!(
            &bytes(&get_chuid())[..],
            &hex!("00 CB 3F FF 05 5C 03 5F C1 02 00")
        );
        assert_eq!(
            &bytes(&get_metadata(MGMT_KEY_REF))[..],
            &hex!("00 F7 00 9B 00")
        );
        let puk = PivPuk::new(b"12345678").unwrap();
        let pin = PivPin::new(b"840259").unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(
            &bytes(&reset_retry_counter(&mut buf, &puk, &pin).unwrap())[..],
            &hex!("00 2C 00 80 10 31 32 33 34 35 36 37 38 38 34 30 32 35 39 FF FF")
        );
        let new_puk = PivPuk::new(b"87654321").unwrap();
        assert_eq!(
            &bytes(&change_reference_data(&mut buf, &puk, &new_puk).unwrap())[..],
            &hex!("00 24 00 81 10 31 32 33 34 35 36 37 38 38 37 36 35 34 33 32 31")
        );
        assert_eq!(
            &bytes(&authenticate_request(
                Algorithm::TripleDes,
                AuthMode::Mutual
            ))[..],
            &hex!("00 87 03 9B 04 7C 02 80 00 00")
        );
        assert_eq!(
            &bytes(&authenticate_request(Algorithm::Aes256, AuthMode::Single))[..],
            &hex!("00 87 0C 9B 04 7C 02 81 00 00")
        );
        let mut ab = [0u8; AUTH_BUF_LEN];
        assert_eq!(
            &bytes(&authenticate_response(&mut ab, Algorithm::TripleDes, &[0xAA; 8]).unwrap())[..],
            &hex!("00 87 03 9B 0C 7C 0A 82 08 AA AA AA AA AA AA AA AA")
        );
        assert_eq!(
            &bytes(&authenticate_mutual(&mut ab, Algorithm::Aes128, &[1; 16], &[2; 16]).unwrap())
                [..8],
            &hex!("00 87 08 9B 26 7C 24 80")
        );
    }

    #[test]
    fn builders_refuse_a_short_buffer_instead_of_truncating() {
        let puk = PivPuk::new(b"12345678").unwrap();
        let pin = PivPin::new(b"840259").unwrap();
        let mut small = [0u8; 15];
        assert_eq!(
            reset_retry_counter(&mut small, &puk, &pin),
            Err(EncodeError::BufferTooSmall(16))
        );
        assert!(authenticate_response(&mut small[..11], Algorithm::TripleDes, &[0; 8]).is_err());
        let key = crate::crypto::AdminKey::piv_default();
        assert!(set_management_key(&mut small, &key).is_err());
    }

    #[test]
    fn parses_templates_metadata_and_chuid() {
        let r = hex!("7C 0A 81 08 01 02 03 04 05 06 07 08");
        assert_eq!(parse_auth_template(&r, TAG_CHALLENGE, 8), Some(&r[4..]));
        assert_eq!(parse_auth_template(&r, TAG_CHALLENGE, 16), None);
        assert_eq!(parse_auth_template(&r, TAG_WITNESS, 8), None);
        assert_eq!(
            parse_auth_template(&hex!("7D 02 81 00"), TAG_CHALLENGE, 0),
            None
        );
        let m = parse_metadata(&hex!("01 01 03 02 02 00 01 05 01 01")).unwrap();
        assert_eq!(
            (m.algorithm, m.is_default, m.tries),
            (Some(3), Some(true), None)
        );
        let m = parse_metadata(&hex!("01 01 FF 05 01 00 06 02 03 01")).unwrap();
        assert_eq!(m.tries, Some((3, 1)));
        assert_eq!(parse_metadata(&hex!("06 05 01")), None);
        let mut chuid = [0u8; 64];
        let guid = hex!("00112233445566778899AABBCCDDEEFF");
        let mut w = tlv::Writer::new(&mut chuid);
        w.header(
            0x53,
            tlv::encoded_len(0x30, 25) + tlv::encoded_len(0x34, 16),
        )
        .unwrap();
        w.tlv(0x30, &[0xD4; 25]).unwrap().tlv(0x34, &guid).unwrap();
        let n = w.len();
        let id = parse_chuid(&chuid[..n]).unwrap();
        assert_eq!((id.kind, id.as_bytes()), (IdKind::Guid, &guid[..]));
        assert_eq!(parse_chuid(&hex!("53 02 30 00")), None);
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = parse_auth_template(&data, TAG_CHALLENGE, 8);
            let _ = parse_metadata(&data);
            let _ = parse_chuid(&data);
        }
    }
}
