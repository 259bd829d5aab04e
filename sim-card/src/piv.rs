//! PIV application (SP 800-73-4) with the YubiKey extensions hosts rely on.

use crate::applet::{ins, session_in_field, Outline, Session};
use rand::rngs::StdRng;
use rand::RngCore;
use zeroize::{Zeroize, Zeroizing};

use crate::apdu::{Command, Reply};
use crate::config::{Algorithm, PivConfig, DEFAULT_MGMT_KEY, DEFAULT_PIV_PIN, DEFAULT_PIV_PUK};
use crate::crypto::{ct_eq, Cipher};
use crate::{pin, sw, tlv};

mod card_auth;

pub(crate) use card_auth::{card_auth_public, card_auth_scalar};

/// The PIV AID with its version (`A0 00 00 03 08 00 00 10 00 01 00`). SELECT accepts any prefix
/// of it of at least 5 bytes.
pub const PIV_AID: [u8; 11] = [
    0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
];

/// The Application Property Template returned by SELECT (YubiKey's).
const APT: [u8; 19] = [
    0x61, 0x11, 0x4F, 0x06, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00, 0x79, 0x07, 0x4F, 0x05, 0xA0, 0x00,
    0x00, 0x03, 0x08,
];

/// FASC-N of the CHUID (agency 9999, as yubico-piv-tool writes it).
const FASCN: [u8; 25] = [
    0xD4, 0xE7, 0x39, 0xDA, 0x73, 0x9C, 0xED, 0x39, 0xCE, 0x73, 0x9D, 0x83, 0x68, 0x58, 0x21, 0x08,
    0x42, 0x10, 0x84, 0x21, 0xC8, 0x42, 0x10, 0xC3, 0xEB,
];

/// The Discovery Object (tag 7E, returned unwrapped as SP 800-73-4 and OpenSC expect): PIV AID,
/// PIN usage policy "PIV PIN only".
const DISCOVERY: [u8; 20] = [
    0x7E, 0x12, 0x4F, 0x0B, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00, 0x5F,
    0x2F, 0x02, 0x40, 0x00,
];

const INS_GENERATE_ASYMMETRIC: u8 = 0x47;
const INS_GET_METADATA: u8 = 0xF7;
const INS_GET_SERIAL: u8 = 0xF8;
const INS_GET_VERSION: u8 = 0xFD;
const INS_SET_MGMT_KEY: u8 = 0xFF;

const REF_PIN: u8 = 0x80;
const REF_PUK: u8 = 0x81;
const REF_MGMT: u8 = 0x9B;

/// A challenge or witness waiting for the host's answer.
pub(crate) enum Pending {
    /// Single (external) authentication: the card's challenge C.
    Challenge(Zeroizing<Vec<u8>>),
    /// Mutual authentication: the plain witness W.
    Witness(Zeroizing<Vec<u8>>),
}

pub(crate) struct Piv {
    pub(crate) cfg: PivConfig,
    session: Session<Pending>,
}

impl Outline for Piv {
    type Pending = Pending;
    type State = ();
    /// Only GENERAL AUTHENTICATE keeps a pending challenge or witness.
    const CONTINUES: u8 = ins::GENERAL_AUTHENTICATE;

    const INSTRUCTIONS: &'static [u8] = &[
        ins::VERIFY,
        ins::CHANGE_REFERENCE_DATA,
        ins::RESET_RETRY_COUNTER,
        ins::GENERAL_AUTHENTICATE,
        INS_GENERATE_ASYMMETRIC,
        ins::GET_DATA_BER,
        INS_GET_SERIAL,
        INS_GET_VERSION,
        INS_SET_MGMT_KEY,
    ];

    session_in_field!();

    /// GET METADATA only where the configuration says the card has it.
    fn knows(&self, ins: u8) -> bool {
        Self::INSTRUCTIONS.contains(&ins) || (ins == INS_GET_METADATA && self.cfg.supports_metadata)
    }

    fn select(&mut self, cmd: &Command<'_>) -> Reply {
        if cmd.p1 != 0x04 || !matches!(cmd.p2, 0x00 | 0x0C) {
            return sw::WRONG_P1P2.into();
        }
        if cmd.data.len() < 5 || !PIV_AID.starts_with(cmd.data) {
            return sw::NOT_FOUND.into();
        }
        self.enter(cmd.p2, || APT.to_vec())
    }

    fn dispatch(&mut self, cmd: &Command<'_>, rng: &mut StdRng) -> Reply {
        match cmd.ins {
            ins::VERIFY => self.verify(cmd).into(),
            ins::CHANGE_REFERENCE_DATA => self.change_reference(cmd).into(),
            ins::RESET_RETRY_COUNTER => self.reset_retry_counter(cmd).into(),
            ins::GENERAL_AUTHENTICATE if cmd.p2 == card_auth::REF_CARD_AUTH => {
                self.card_auth_sign(cmd)
            }
            ins::GENERAL_AUTHENTICATE => self.general_authenticate(cmd, rng),
            INS_GENERATE_ASYMMETRIC => self.generate(cmd, rng),
            ins::GET_DATA_BER => self.get_data(cmd),
            INS_GET_METADATA => self.get_metadata(cmd),
            INS_GET_SERIAL => self.get_serial(cmd),
            INS_GET_VERSION => self.get_version(cmd),
            _ => self.set_mgmt_key(cmd).into(),
        }
    }
}

impl Piv {
    pub(crate) fn new(cfg: PivConfig) -> Self {
        Piv {
            cfg,
            session: Session::default(),
        }
    }

    fn verify(&mut self, cmd: &Command<'_>) -> u16 {
        if cmd.p2 != REF_PIN {
            return sw::REF_NOT_FOUND;
        }
        match cmd.p1 {
            0x00 => {}
            0xFF if cmd.data.is_empty() => {
                self.session.access.pin_verified = false;
                return sw::OK;
            }
            0xFF => return sw::WRONG_DATA,
            _ => return sw::WRONG_P1P2,
        }
        let data = cmd.data;
        let cfg = &mut self.cfg;
        pin::verify(
            data,
            pin::piv_value(data).is_some(),
            || matches_padded(&cfg.pin, data),
            cfg.pin_max_tries,
            &mut cfg.pin_tries_left,
            &mut self.session.access.pin_verified,
        )
    }

    fn change_reference(&mut self, cmd: &Command<'_>) -> u16 {
        if cmd.p1 != 0x00 {
            return sw::WRONG_P1P2;
        }
        if !matches!(cmd.p2, REF_PIN | REF_PUK) {
            return sw::REF_NOT_FOUND;
        }
        let (old, new) = cmd.data.split_at(cmd.data.len().min(8));
        // Formats first: a malformed request never costs a try.
        let (Some(_), Some(new_value)) = (pin::piv_value(old), pin::piv_value(new)) else {
            return sw::WRONG_DATA;
        };
        let is_pin = cmd.p2 == REF_PIN;
        if is_pin && self.cfg.enforce_pin_complexity && pin::is_trivial(new_value) {
            return sw::CONDITIONS_NOT_SATISFIED;
        }
        let cfg = &mut self.cfg;
        let (stored, left, max) = if is_pin {
            (&mut cfg.pin, &mut cfg.pin_tries_left, cfg.pin_max_tries)
        } else {
            (&mut cfg.puk, &mut cfg.puk_tries_left, cfg.puk_max_tries)
        };
        if *left == 0 {
            return sw::AUTH_BLOCKED;
        }
        if matches_padded(stored, old) {
            stored.zeroize();
            *stored = new_value.to_vec();
            *left = max;
            if is_pin {
                self.session.access.pin_verified = true;
            }
            sw::OK
        } else {
            if is_pin {
                self.session.access.pin_verified = false;
            }
            sw::wrong_try(left)
        }
    }

    fn reset_retry_counter(&mut self, cmd: &Command<'_>) -> u16 {
        if cmd.p1 != 0x00 {
            return sw::WRONG_P1P2;
        }
        if cmd.p2 != REF_PIN {
            return sw::REF_NOT_FOUND;
        }
        let (puk, new) = cmd.data.split_at(cmd.data.len().min(8));
        let (Some(_), Some(new_pin)) = (pin::piv_value(puk), pin::piv_value(new)) else {
            return sw::WRONG_DATA;
        };
        if self.cfg.enforce_pin_complexity && pin::is_trivial(new_pin) {
            return sw::CONDITIONS_NOT_SATISFIED;
        }
        let cfg = &mut self.cfg;
        if cfg.puk_tries_left == 0 {
            return sw::AUTH_BLOCKED;
        }
        if !matches_padded(&cfg.puk, puk) {
            return sw::wrong_try(&mut cfg.puk_tries_left);
        }
        cfg.pin.zeroize();
        cfg.pin = new_pin.to_vec();
        cfg.pin_tries_left = cfg.pin_max_tries;
        cfg.puk_tries_left = cfg.puk_max_tries;
        self.session.access.pin_verified = false;
        sw::OK
    }

    fn general_authenticate(&mut self, cmd: &Command<'_>, rng: &mut StdRng) -> Reply {
        // Single use: whatever happens now, the previous challenge is gone.
        let pending = self.session.pending.take();
        if cmd.p2 != REF_MGMT {
            return sw::WRONG_P1P2.into();
        }
        if Algorithm::from_piv_id(cmd.p1) != Some(self.cfg.mgmt_algorithm) {
            return sw::WRONG_DATA.into();
        }
        let Some(items) = tlv::single(cmd.data, 0x7C).and_then(tlv::parse_all) else {
            return sw::WRONG_DATA.into();
        };
        let Some(cipher) = Cipher::new(self.cfg.mgmt_algorithm, &self.cfg.mgmt_key) else {
            return sw::NO_DIAGNOSIS.into();
        };
        let blk = cipher.block_len();
        let shape: Vec<(u32, usize)> = items.iter().map(|t| (t.tag, t.value.len())).collect();
        match shape.as_slice() {
            // Request a challenge (single / external authentication).
            [(0x81, 0)] => {
                let mut c = Zeroizing::new(vec![0u8; blk]);
                rng.fill_bytes(&mut c);
                let reply = template(0x81, &c);
                self.session.pending = Some(Pending::Challenge(c));
                Reply::ok(reply)
            }
            // Request a witness (mutual authentication).
            [(0x80, 0)] => {
                let mut w = Zeroizing::new(vec![0u8; blk]);
                rng.fill_bytes(&mut w);
                let Some(enc) = cipher.encrypt_ecb(&w) else {
                    return sw::NO_DIAGNOSIS.into();
                };
                self.session.pending = Some(Pending::Witness(w));
                Reply::ok(template(0x80, &enc))
            }
            // Response to the challenge.
            [(0x82, n)] if *n > 0 => {
                let Some(Pending::Challenge(c)) = pending else {
                    return sw::CONDITIONS_NOT_SATISFIED.into();
                };
                if *n != blk {
                    return sw::WRONG_DATA.into();
                }
                let Some(expected) = cipher.encrypt_ecb(&c) else {
                    return sw::NO_DIAGNOSIS.into();
                };
                self.finish_auth(ct_eq(&expected, items[0].value), Vec::new())
            }
            // Decrypted witness and the host's challenge, optionally asking for the response.
            [(0x80, w), (0x81, h)] | [(0x80, w), (0x81, h), (0x82, 0)] if *w > 0 && *h > 0 => {
                let Some(Pending::Witness(witness)) = pending else {
                    return sw::CONDITIONS_NOT_SATISFIED.into();
                };
                if *w != blk || *h != blk {
                    return sw::WRONG_DATA.into();
                }
                let Some(answer) = cipher.encrypt_ecb(items[1].value) else {
                    return sw::NO_DIAGNOSIS.into();
                };
                let ok = ct_eq(&witness, items[0].value);
                self.finish_auth(ok, template(0x82, &answer))
            }
            _ => sw::WRONG_DATA.into(),
        }
    }

    fn finish_auth(&mut self, ok: bool, data: Vec<u8>) -> Reply {
        self.session.access.admin_authenticated = ok;
        if ok {
            Reply::ok(data)
        } else {
            sw::SECURITY_NOT_SATISFIED.into()
        }
    }

    fn get_data(&self, cmd: &Command<'_>) -> Reply {
        if cmd.p1p2() != 0x3FFF {
            return sw::WRONG_P1P2.into();
        }
        let tag = match cmd.data {
            [0x5C, n @ 1..=3, tag @ ..] if tag.len() == usize::from(*n) => tag,
            _ => return sw::WRONG_DATA.into(),
        };
        match tag {
            [0x5F, 0xC1, 0x02] => Reply::ok(self.chuid()),
            [0x5F, 0xC1, 0x01] => self.card_auth_certificate(),
            [0x7E] => Reply::ok(DISCOVERY.to_vec()),
            _ => sw::NOT_FOUND.into(),
        }
    }

    /// CHUID: FASC-N, GUID, expiry 2035-12-31, empty signature, empty error-detection code.
    fn chuid(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(64);
        tlv::push(&mut body, &[0x30], &FASCN);
        tlv::push(&mut body, &[0x34], &self.cfg.guid);
        tlv::push(&mut body, &[0x35], b"20351231");
        tlv::push(&mut body, &[0x3E], &[]);
        tlv::push(&mut body, &[0xFE], &[]);
        let mut out = Vec::with_capacity(body.len() + 2);
        tlv::push(&mut out, &[0x53], &body);
        out
    }

    fn get_metadata(&self, cmd: &Command<'_>) -> Reply {
        if cmd.p1 != 0x00 {
            return sw::WRONG_P1P2.into();
        }
        let cfg = &self.cfg;
        match cmd.p2 {
            REF_MGMT => {
                let is_default =
                    matches!(cfg.mgmt_algorithm, Algorithm::TripleDes | Algorithm::Aes192)
                        && ct_eq(&cfg.mgmt_key, &DEFAULT_MGMT_KEY);
                Reply::ok(vec![
                    0x01,
                    0x01,
                    cfg.mgmt_algorithm.piv_id(),
                    0x02,
                    0x02,
                    0x00,
                    0x01,
                    0x05,
                    0x01,
                    u8::from(is_default),
                ])
            }
            REF_PIN => Reply::ok(pin_metadata(
                ct_eq(&cfg.pin, DEFAULT_PIV_PIN),
                cfg.pin_max_tries,
                cfg.pin_tries_left,
            )),
            REF_PUK => Reply::ok(pin_metadata(
                ct_eq(&cfg.puk, DEFAULT_PIV_PUK),
                cfg.puk_max_tries,
                cfg.puk_tries_left,
            )),
            _ => sw::REF_NOT_FOUND.into(),
        }
    }

    fn get_serial(&self, cmd: &Command<'_>) -> Reply {
        if cmd.p1p2() != 0 {
            return sw::WRONG_P1P2.into();
        }
        Reply::ok(self.cfg.serial.to_be_bytes().to_vec())
    }

    fn get_version(&self, cmd: &Command<'_>) -> Reply {
        if cmd.p1p2() != 0 {
            return sw::WRONG_P1P2.into();
        }
        let version = if self.cfg.supports_metadata {
            [5, 7, 1]
        } else {
            [4, 3, 7]
        };
        Reply::ok(version.to_vec())
    }

    fn set_mgmt_key(&mut self, cmd: &Command<'_>) -> u16 {
        if cmd.p1 != 0xFF || !matches!(cmd.p2, 0xFF | 0xFE) {
            return sw::WRONG_P1P2;
        }
        if !self.session.access.admin_authenticated {
            return sw::SECURITY_NOT_SATISFIED;
        }
        let [id, REF_MGMT, len, key @ ..] = cmd.data else {
            return sw::WRONG_DATA;
        };
        // The YubiKey names 3DES `03` here; the `00` alias of GENERAL AUTHENTICATE is refused.
        let alg = match Algorithm::from_piv_id(*id) {
            Some(a) if *id != 0x00 => a,
            _ => return sw::WRONG_DATA,
        };
        if usize::from(*len) != alg.key_len() || key.len() != alg.key_len() {
            return sw::WRONG_DATA;
        }
        self.cfg.mgmt_key.zeroize();
        self.cfg.mgmt_key = key.to_vec();
        self.cfg.mgmt_algorithm = alg;
        sw::OK
    }
}

/// Compare an 8-byte FF-padded field with a stored unpadded value.
fn matches_padded(stored: &[u8], field: &[u8]) -> bool {
    pin::piv_padded(stored).is_some_and(|padded| ct_eq(&padded[..], field))
}

/// `7C <len> <tag> <len> <value>`.
fn template(tag: u8, value: &[u8]) -> Vec<u8> {
    tlv::nested(&[0x7C], &[tag], value)
}

/// YubiKey metadata of the PIN or PUK.
fn pin_metadata(is_default: bool, max: u8, left: u8) -> Vec<u8> {
    vec![
        0x01,
        0x01,
        0xFF,
        0x05,
        0x01,
        u8::from(is_default),
        0x06,
        0x02,
        max,
        left,
    ]
}
