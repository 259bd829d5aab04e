//! PIV card presence: the card signs the server's nonce with its Card Authentication key (9E,
//! no PIN needed), and enrollment reads that key's public half for the server.
//!
//! Enrollment never replaces a key in 9E (an issued Card Authentication key opens doors): the
//! public key comes from the slot's certificate; without one, from two signatures of the key
//! in the slot (ECDSA public-key recovery); only a slot that holds no key gets one generated,
//! after the management key was authenticated.

use cardunlock_core::driver::Driver;
use cardunlock_core::piv;
use cardunlock_core::sw::Status;
use cardunlock_core::Transport;
use cardunlock_protocol::presence::{digest, token_hash};
use cardunlock_protocol::{Signature as WireSignature, StartReply};
use ecdsa::RecoveryId;
use embassy_futures::block_on;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::Decode;

/// id-ecPublicKey (RFC 5480).
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp256r1 / prime256v1 (RFC 5480).
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

use crate::failure::{CardError, Failure, Kind};

/// An uncompressed P-256 point, `04 || X || Y`.
pub type PublicKey = [u8; piv::P256_POINT_LEN];

fn communication(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::new(Kind::Communication, format!("{what}: {e}"))
}

/// The card's 9E signature of `digest`: `Ok(Err(status))` when the card refuses to sign.
fn sign<T: Transport>(
    driver: &mut Driver<T>,
    digest: &[u8; 32],
) -> Result<Result<Signature, Status>, Failure>
where
    T::Error: CardError,
{
    let mut buf = [0u8; piv::SIGN_BUF_LEN];
    let cmd = piv::sign_card_auth(&mut buf, digest)
        .map_err(|e| Failure::new(Kind::Communication, format!("card authentication: {e}")))?;
    let response =
        block_on(driver.transceive(&cmd)).map_err(|e| communication("card authentication", e))?;
    if !response.status.is_success() {
        return Ok(Err(response.status));
    }
    let der = piv::parse_signature(response.data).ok_or_else(|| {
        Failure::new(
            Kind::Communication,
            "card authentication: the card's signature is malformed",
        )
    })?;
    Signature::from_der(der).map(Ok).map_err(|_| {
        Failure::new(
            Kind::Communication,
            "card authentication: the card's signature is not a P-256 ECDSA signature",
        )
    })
}

/// Online unlock of a PIV card: the card's signature of the nonce of `started` with its Card
/// Authentication key (DER, hex), for `prove` ([`crate::api::Api::prove`]). A card that
/// refuses to sign gives an empty signature: the server's refusal is the one every unverified
/// card gets, and it tells the user what to do.
pub fn sign_nonce<T: Transport>(
    driver: &mut Driver<T>,
    started: &StartReply,
) -> Result<WireSignature, Failure>
where
    T::Error: CardError,
{
    let bad_server = || Failure::new(Kind::Server, "the server's PIV nonce is not 64 hex digits");
    let nonce = started.nonce.as_ref().ok_or_else(bad_server)?.to_array();
    let hash = token_hash(&started.session).ok_or_else(bad_server)?;
    Ok(match sign(driver, &digest(&hash, &nonce))? {
        Ok(signature) => WireSignature::der(signature.to_der().as_bytes()),
        Err(_) => WireSignature::der([]),
    })
}

/// The public key of a signature over `digest` that also verifies `other` over `other_digest`.
fn recover(
    digest: &[u8; 32],
    signature: &Signature,
    other_digest: &[u8; 32],
    other: &Signature,
) -> Option<PublicKey> {
    (0u8..4).find_map(|id| {
        let key = VerifyingKey::recover_from_prehash(digest, signature, RecoveryId::from_byte(id)?)
            .ok()?;
        key.verify_prehash(other_digest, other).ok()?;
        key.to_encoded_point(false).as_bytes().try_into().ok()
    })
}

/// The P-256 public key of the certificate in the Card Authentication certificate object;
/// `None` when the object is empty or absent; a failure when it holds something else.
fn from_certificate<T: Transport>(driver: &mut Driver<T>) -> Result<Option<PublicKey>, Failure>
where
    T::Error: CardError,
{
    let cmd = piv::get_card_auth_certificate();
    let response = block_on(driver.transceive(&cmd))
        .map_err(|e| communication("card authentication certificate", e))?;
    if !response.status.is_success() {
        return Ok(None);
    }
    let Some(object) = piv::parse_certificate_object(response.data) else {
        return Ok(None);
    };
    let refuse = |why: &str| {
        Failure::new(
            Kind::Refused,
            format!("card authentication certificate: {why}; online unlock needs a P-256 key"),
        )
    };
    if object.compressed {
        return Err(refuse("it is compressed"));
    }
    let cert = x509_cert::Certificate::from_der(object.certificate)
        .map_err(|_| refuse("it is not an X.509 certificate"))?;
    let spki = cert.tbs_certificate.subject_public_key_info;
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    if spki.algorithm.oid != ID_EC_PUBLIC_KEY || curve != Some(PRIME256V1) {
        return Err(refuse("its key is not an ECC P-256 key"));
    }
    let point = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| refuse("its public key is malformed"))?;
    let key = VerifyingKey::from_sec1_bytes(point)
        .map_err(|_| refuse("its public key is not a P-256 point"))?;
    Ok(key.to_encoded_point(false).as_bytes().try_into().ok())
}

/// What the Card Authentication slot holds, as enrollment finds it.
pub enum Slot {
    /// A key whose public half is known (from its certificate or its signatures).
    Key(PublicKey),
    /// No key: one may be generated (after the management-key authentication).
    Empty,
}

/// Reads the public key of the card's Card Authentication key without changing the card:
/// from its certificate, else recovered from two signatures. [`Slot::Empty`] when the card
/// says the slot holds no key (`69 85`, `6A 82`, `6A 88`).
pub fn read_card_auth_key<T: Transport>(driver: &mut Driver<T>) -> Result<Slot, Failure>
where
    T::Error: CardError,
{
    if let Some(key) = from_certificate(driver)? {
        return Ok(Slot::Key(key));
    }
    let mut first = [0u8; 32];
    let mut second = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut first);
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut second);
    let a = match sign(driver, &first)? {
        Ok(signature) => signature,
        Err(status) if matches!(status.to_u16(), 0x6985 | 0x6A82 | 0x6A88) => {
            return Ok(Slot::Empty)
        }
        Err(status) => {
            return Err(Failure::new(
                Kind::Refused,
                format!(
                    "card authentication: the card refused to sign ({:04X}); online unlock needs \
                     a P-256 Card Authentication key",
                    status.to_u16()
                ),
            ))
        }
    };
    let b = sign(driver, &second)?.map_err(|status| {
        Failure::new(
            Kind::Refused,
            format!(
                "card authentication: the card refused to sign ({:04X})",
                status.to_u16()
            ),
        )
    })?;
    recover(&first, &a, &second, &b)
        .map(Slot::Key)
        .ok_or_else(|| {
            Failure::new(
                Kind::Refused,
                "card authentication: the card's key is not an ECC P-256 key",
            )
        })
}

/// GENERATE ASYMMETRIC KEY PAIR into the empty Card Authentication slot (the management key
/// must have been authenticated in this session); the new public key.
pub fn generate_card_auth_key<T: Transport>(driver: &mut Driver<T>) -> Result<PublicKey, Failure>
where
    T::Error: CardError,
{
    let cmd = piv::generate_card_auth_key();
    let response = block_on(driver.transceive(&cmd))
        .map_err(|e| communication("card authentication key", e))?;
    if !response.status.is_success() {
        return Err(Failure::new(
            Kind::Refused,
            format!(
                "card authentication key: the card refused to generate one ({:04X})",
                response.status.to_u16()
            ),
        ));
    }
    let point = piv::parse_generated_p256(response.data).ok_or_else(|| {
        Failure::new(
            Kind::Communication,
            "card authentication key: the card's answer is not a P-256 public key",
        )
    })?;
    VerifyingKey::from_sec1_bytes(point).map_err(|_| {
        Failure::new(
            Kind::Communication,
            "card authentication key: the card's public key is not on the P-256 curve",
        )
    })?;
    Ok(*point)
}
