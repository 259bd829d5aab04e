//! The Card Authentication key (9E): a real P-256 key that signs a host's digest without the
//! PIN (GENERAL AUTHENTICATE, SP 800-73-4 Part 2 §3.2.4 and Appendix A.4.2), its certificate
//! object (`5F C1 01`), and GENERATE ASYMMETRIC KEY PAIR into it (management key needed).

use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::SecretKey;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::Piv;
use crate::apdu::{Command, Reply};
use crate::applet::Applet;
use crate::{sw, tlv};

/// Key reference of the Card Authentication key.
pub(crate) const REF_CARD_AUTH: u8 = 0x9E;
/// PIV algorithm identifier of ECC P-256.
const ALG_P256: u8 = 0x11;

/// A valid P-256 private scalar derived from `seed` (the factory key of a simulated card).
pub(crate) fn card_auth_scalar(seed: u64) -> [u8; 32] {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x9E9E_9E9E_9E9E_9E9E);
    SecretKey::random(&mut rng).to_bytes().into()
}

/// The uncompressed SEC1 point of a private scalar; `None` if it is not a valid scalar.
pub(crate) fn card_auth_public(scalar: &[u8; 32]) -> Option<[u8; 65]> {
    let secret = SecretKey::from_bytes(scalar.into()).ok()?;
    let point = secret.public_key().to_encoded_point(false);
    point.as_bytes().try_into().ok()
}

impl Piv {
    /// `00 87 11 9E .. 7C .. 82 00 81 20 <digest>` -> `7C .. 82 <DER signature>`. No PIN
    /// needed. An empty slot answers `69 85` (as piv-authenticator does).
    pub(super) fn card_auth_sign(&mut self, cmd: &Command<'_>) -> Reply {
        if cmd.p1 != ALG_P256 {
            return sw::WRONG_DATA.into();
        }
        let Some(items) = tlv::single(cmd.data, 0x7C).and_then(tlv::parse_all) else {
            return sw::WRONG_DATA.into();
        };
        let shape: Vec<(u32, usize)> = items.iter().map(|t| (t.tag, t.value.len())).collect();
        let digest = match shape.as_slice() {
            [(0x82, 0), (0x81, 32)] => items[1].value,
            [(0x81, 32), (0x82, 0)] => items[0].value,
            _ => return sw::WRONG_DATA.into(),
        };
        let Some(scalar) = self.cfg.card_auth_key else {
            return sw::CONDITIONS_NOT_SATISFIED.into();
        };
        let Ok(key) = SigningKey::from_bytes(&scalar.into()) else {
            return sw::NO_DIAGNOSIS.into();
        };
        let signature: Signature = match key.sign_prehash(digest) {
            Ok(s) => s,
            Err(_) => return sw::NO_DIAGNOSIS.into(),
        };
        let der = signature.to_der();
        let mut inner = Vec::with_capacity(der.as_bytes().len() + 2);
        tlv::push(&mut inner, &[0x82], der.as_bytes());
        let mut out = Vec::with_capacity(inner.len() + 2);
        tlv::push(&mut out, &[0x7C], &inner);
        Reply::ok(out)
    }

    /// `00 47 00 9E .. AC 03 80 01 11`: a new P-256 key in 9E (replacing any), after the
    /// management key; answers `7F 49 43 86 41 <point>`.
    pub(super) fn generate(&mut self, cmd: &Command<'_>, rng: &mut StdRng) -> Reply {
        if cmd.p1 != 0x00 || cmd.p2 != REF_CARD_AUTH {
            return sw::WRONG_P1P2.into();
        }
        if !self.access().admin_authenticated {
            return sw::SECURITY_NOT_SATISFIED.into();
        }
        let Some(items) = tlv::single(cmd.data, 0xAC).and_then(tlv::parse_all) else {
            return sw::WRONG_DATA.into();
        };
        if !items.iter().any(|t| t.tag == 0x80 && t.value == [ALG_P256]) {
            return sw::WRONG_DATA.into();
        }
        let scalar: [u8; 32] = SecretKey::random(rng).to_bytes().into();
        let Some(point) = card_auth_public(&scalar) else {
            return sw::NO_DIAGNOSIS.into();
        };
        self.cfg.card_auth_key = Some(scalar);
        let mut inner = Vec::with_capacity(67);
        tlv::push(&mut inner, &[0x86], &point);
        let mut out = Vec::with_capacity(70);
        tlv::push(&mut out, &[0x7F, 0x49], &inner);
        Reply::ok(out)
    }

    /// The certificate object `53 .. 70 <cert> 71 01 00 FE 00`, or `6A 82` when empty.
    pub(super) fn card_auth_certificate(&self) -> Reply {
        let Some(cert) = &self.cfg.card_auth_certificate else {
            return sw::NOT_FOUND.into();
        };
        let mut body = Vec::with_capacity(cert.len() + 10);
        tlv::push(&mut body, &[0x70], cert);
        tlv::push(&mut body, &[0x71], &[0x00]);
        tlv::push(&mut body, &[0xFE], &[]);
        let mut out = Vec::with_capacity(body.len() + 4);
        tlv::push(&mut out, &[0x53], &body);
        Reply::ok(out)
    }
}
