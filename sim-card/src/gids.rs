//! GIDS application: PIN status, PIN verification and the 3DES admin-key mutual authentication
//! (the exchange OpenSC's `card-gids.c` implements), then RESET RETRY COUNTER; and the read-only
//! minidriver file system (masterfile, cardid, cardapps, cardcf, an empty cmapfile) OpenSC's
//! PKCS#15 emulation reads.

use crate::applet::{ins, session_in_field, Outline, Session};
use rand::rngs::StdRng;
use rand::RngCore;
use zeroize::{Zeroize, Zeroizing};

use crate::apdu::{Command, Reply};
use crate::config::{Algorithm, GidsConfig};
use crate::crypto::{ct_eq, Cipher};
use crate::pin::RawPin;
use crate::{sw, tlv};

/// The GIDS v2 AID (`A0 00 00 03 97 42 54 46 59 02 01`). SELECT accepts any prefix of it of at
/// least 9 bytes.
pub const GIDS_AID: [u8; 11] = [
    0xA0, 0x00, 0x00, 0x03, 0x97, 0x42, 0x54, 0x46, 0x59, 0x02, 0x01,
];

/// GET DATA with simple tags (`00 CA 01 00`): the card serial, the identity the host keys on.
const INS_GET_SERIAL: u8 = 0xCA;

const REF_PIN: u8 = 0x80;
/// VERIFY with this P2 and no data de-authenticates the PIN (OpenSC's logout).
const REF_DEAUTHENTICATE: u8 = 0x82;
const REF_ADMIN_KEY: u8 = 0x80;

/// PIN length bounds of VERIFY and RESET RETRY COUNTER.
const PIN_LEN: core::ops::RangeInclusive<usize> = 4..=15;

/// The randoms of a mutual authentication in progress: host's R1, card's R2.
pub(crate) struct Pending {
    r1: Zeroizing<[u8; 16]>,
    r2: Zeroizing<[u8; 16]>,
}

/// What GIDS keeps for a session besides its grants: whether MSE SET chose the admin key.
#[derive(Default)]
pub(crate) struct KeyChoice {
    admin_key_selected: bool,
}

pub(crate) struct Gids {
    pub(crate) cfg: GidsConfig,
    session: Session<Pending, KeyChoice>,
}

impl Outline for Gids {
    type Pending = Pending;
    type State = KeyChoice;
    /// Only GENERAL AUTHENTICATE keeps the randoms of step 1.
    const CONTINUES: u8 = ins::GENERAL_AUTHENTICATE;

    const INSTRUCTIONS: &'static [u8] = &[
        ins::VERIFY,
        ins::CHANGE_REFERENCE_DATA,
        ins::MSE,
        ins::RESET_RETRY_COUNTER,
        ins::GENERAL_AUTHENTICATE,
        ins::GET_DATA_BER,
        INS_GET_SERIAL,
    ];

    session_in_field!();

    fn select(&mut self, cmd: &Command<'_>) -> Reply {
        if cmd.p1 != 0x04 || !matches!(cmd.p2, 0x00 | 0x0C) {
            return sw::WRONG_P1P2.into();
        }
        if cmd.data.len() < 9 || !GIDS_AID.starts_with(cmd.data) {
            return sw::NOT_FOUND.into();
        }
        // Application template with the full AID (OpenSC reads the version from it).
        self.enter(cmd.p2, || tlv::nested(&[0x61], &[0x4F], &GIDS_AID))
    }

    fn dispatch(&mut self, cmd: &Command<'_>, rng: &mut StdRng) -> Reply {
        match cmd.ins {
            ins::VERIFY => self.verify(cmd).into(),
            ins::MSE => self.mse_set(cmd).into(),
            ins::CHANGE_REFERENCE_DATA => self.change_admin_key(cmd).into(),
            ins::RESET_RETRY_COUNTER => pin(&mut self.cfg)
                .reset(cmd, REF_PIN, &mut self.session.access)
                .into(),
            ins::GENERAL_AUTHENTICATE => self.general_authenticate(cmd, rng),
            INS_GET_SERIAL if cmd.p1 == 0x01 && cmd.p2 == 0x00 => {
                Reply::ok(self.cfg.serial.to_vec())
            }
            INS_GET_SERIAL => sw::REF_NOT_FOUND.into(),
            _ => self.get_data(cmd),
        }
    }
}

impl Gids {
    pub(crate) fn new(cfg: GidsConfig) -> Self {
        Gids {
            cfg,
            session: Session::default(),
        }
    }

    /// `00 24 01 80 18 <new 3DES key>` after mutual authentication: personalisation.
    fn change_admin_key(&mut self, cmd: &Command<'_>) -> u16 {
        if cmd.p1 != 0x01 || cmd.p2 != 0x80 {
            return sw::WRONG_P1P2;
        }
        if !self.session.access.admin_authenticated {
            return sw::SECURITY_NOT_SATISFIED;
        }
        let Ok(key) = <[u8; 24]>::try_from(cmd.data) else {
            return sw::WRONG_DATA;
        };
        self.cfg.admin_key.zeroize();
        self.cfg.admin_key = key;
        self.cfg.admin_tries_left = self.cfg.admin_max_tries;
        self.session.access.admin_authenticated = false;
        sw::OK
    }

    fn get_data(&self, cmd: &Command<'_>) -> Reply {
        if let ([0x5C, 0x02, hi, lo], Some(file)) = (cmd.data, MinidriverFile::of(cmd.p1p2())) {
            let data_object = u16::from_be_bytes([*hi, *lo]);
            return match file.read(data_object, &self.cfg.serial) {
                Some(value) => {
                    let mut out = Vec::with_capacity(value.len() + 5);
                    tlv::push(&mut out, &[*hi, *lo], &value);
                    Reply::ok(out)
                }
                None => sw::NOT_FOUND.into(),
            };
        }
        match cmd.data {
            [0x5C, 0x02, 0x7F, 0x71] if cmd.p1p2() == 0x3FFF => {
                let cfg = &self.cfg;
                Reply::ok(vec![
                    0x7F,
                    0x71,
                    0x06,
                    0x97,
                    0x01,
                    cfg.pin_tries_left,
                    0x93,
                    0x01,
                    cfg.pin_max_tries,
                ])
            }
            [0x5C, n @ 1..=3, tag @ ..] if tag.len() == usize::from(*n) => sw::NOT_FOUND.into(),
            _ => sw::WRONG_DATA.into(),
        }
    }

    fn verify(&mut self, cmd: &Command<'_>) -> u16 {
        if cmd.p1 != 0x00 {
            return sw::WRONG_P1P2;
        }
        match cmd.p2 {
            REF_PIN => {}
            REF_DEAUTHENTICATE if cmd.data.is_empty() => {
                self.session.access.pin_verified = false;
                return sw::OK;
            }
            _ => return sw::REF_NOT_FOUND,
        }
        pin(&mut self.cfg).verify(cmd.data, &mut self.session.access.pin_verified)
    }

    fn mse_set(&mut self, cmd: &Command<'_>) -> u16 {
        if cmd.p1p2() != 0xC1A4 {
            return sw::WRONG_P1P2;
        }
        match cmd.data {
            [0x83, 0x01, REF_ADMIN_KEY] => {
                self.session.state.admin_key_selected = true;
                sw::OK
            }
            [0x83, 0x01, _] => sw::REF_NOT_FOUND,
            _ => sw::WRONG_DATA,
        }
    }

    fn general_authenticate(&mut self, cmd: &Command<'_>, rng: &mut StdRng) -> Reply {
        let pending = self.session.pending.take();
        if cmd.p1p2() != 0x0000 {
            return sw::WRONG_P1P2.into();
        }
        if !self.session.state.admin_key_selected {
            return sw::CONDITIONS_NOT_SATISFIED.into();
        }
        let Some(items) = tlv::single(cmd.data, 0x7C).and_then(tlv::parse_all) else {
            return sw::WRONG_DATA.into();
        };
        let step = match items.as_slice() {
            [t] if t.tag == 0x81 && t.value.len() == 16 => Step::One(t.value),
            [t] if t.tag == 0x82 && t.value.len() == 40 => Step::Two(t.value),
            _ => return sw::WRONG_DATA.into(),
        };
        if self.cfg.admin_tries_left == 0 {
            return sw::AUTH_BLOCKED.into();
        }
        let Some(cipher) = Cipher::new(Algorithm::TripleDes, &self.cfg.admin_key) else {
            return sw::NO_DIAGNOSIS.into();
        };
        match step {
            Step::One(host_random) => {
                let mut r1 = Zeroizing::new([0u8; 16]);
                r1.copy_from_slice(host_random);
                let mut r2 = Zeroizing::new([0u8; 16]);
                rng.fill_bytes(&mut r2[..]);
                let out = tlv::nested(&[0x7C], &[0x81], &r2[..]);
                self.session.pending = Some(Pending { r1, r2 });
                Reply::ok(out)
            }
            Step::Two(cryptogram) => {
                let Some(p) = pending else {
                    return sw::CONDITIONS_NOT_SATISFIED.into();
                };
                // Expect R2 || R1 || Z1 (7 random bytes, then 80).
                let ok = cipher.decrypt_cbc(cryptogram).is_some_and(|plain| {
                    let r2_ok = ct_eq(&plain[..16], &p.r2[..]);
                    let r1_ok = ct_eq(&plain[16..32], &p.r1[..]);
                    r2_ok & r1_ok & (plain[39] == 0x80)
                });
                if !ok {
                    self.session.access.admin_authenticated = false;
                    return sw::wrong_try(&mut self.cfg.admin_tries_left).into();
                }
                self.session.access.admin_authenticated = true;
                self.cfg.admin_tries_left = self.cfg.admin_max_tries;
                // Answer R1 || R2 || Z2.
                let mut plain = Zeroizing::new([0u8; 40]);
                plain[..16].copy_from_slice(&p.r1[..]);
                plain[16..32].copy_from_slice(&p.r2[..]);
                rng.fill_bytes(&mut plain[32..39]);
                plain[39] = 0x80;
                let Some(enc) = cipher.encrypt_cbc(&plain[..]) else {
                    return sw::NO_DIAGNOSIS.into();
                };
                Reply::ok(tlv::nested(&[0x7C], &[0x82], &enc))
            }
        }
    }
}

/// The card's PIN, as VERIFY and RESET RETRY COUNTER see it.
fn pin(cfg: &mut GidsConfig) -> RawPin<'_> {
    RawPin {
        value: &mut cfg.pin,
        left: &mut cfg.pin_tries_left,
        max: cfg.pin_max_tries,
        len: PIN_LEN,
    }
}

/// The EF of the minidriver file system a GET DATA `00 CB <FI> 5C 02 <DO>` reads from (OpenSC's
/// `card-gids.h` names: the access conditions of each EF are those `gids_initialize` gives it).
#[derive(Clone, Copy)]
enum MinidriverFile {
    /// `A0 00` (UserCreateDeleteDirAc): the masterfile.
    UserCreateDeleteDir,
    /// `A0 10` (EveryoneReadUserWriteAc): cardapps, cardcf, cmapfile.
    EveryoneReadUserWrite,
    /// `A0 12` (EveryoneReadAdminWriteAc): cardid.
    EveryoneReadAdminWrite,
}

/// Data objects of the minidriver file system.
const DO_MASTERFILE: u16 = 0xDF1F;
const DO_CARDID: u16 = 0xDF20;
const DO_CARDAPPS: u16 = 0xDF21;
const DO_CARDCF: u16 = 0xDF22;
const DO_CMAPFILE: u16 = 0xDF23;

/// The masterfile's entries, as a card freshly initialised by the minidriver (or OpenSC's
/// `gids-tool -X`) holds them: (directory, file name, data object, file identifier). The first
/// is the `mscp` directory itself.
const MASTERFILE_ENTRIES: [(&str, &str, u16, u16); 5] = [
    ("mscp", "", 0x0000, 0xA000),
    ("", "cardid", DO_CARDID, 0xA012),
    ("", "cardapps", DO_CARDAPPS, 0xA010),
    ("", "cardcf", DO_CARDCF, 0xA010),
    ("mscp", "cmapfile", DO_CMAPFILE, 0xA010),
];

/// Bytes of one masterfile record: directory (9, NUL-padded), file name (9), 2 bytes of
/// padding, the data object and the file identifier as 32-bit little-endian integers (the
/// in-memory layout of the minidriver's C struct, which OpenSC reads as is).
const MASTERFILE_RECORD_LEN: usize = 28;

impl MinidriverFile {
    fn of(file_identifier: u16) -> Option<Self> {
        match file_identifier {
            0xA000 => Some(Self::UserCreateDeleteDir),
            0xA010 => Some(Self::EveryoneReadUserWrite),
            0xA012 => Some(Self::EveryoneReadAdminWrite),
            _ => None,
        }
    }

    /// The value of `data_object` in this EF (all readable without authentication), or `None`.
    fn read(self, data_object: u16, serial: &[u8; 16]) -> Option<Vec<u8>> {
        match (self, data_object) {
            (Self::UserCreateDeleteDir, DO_MASTERFILE) => Some(masterfile()),
            (Self::EveryoneReadAdminWrite, DO_CARDID) => Some(serial.to_vec()),
            // The applications on the card (minidriver spec): "mscp", NUL-padded to 8 bytes.
            (Self::EveryoneReadUserWrite, DO_CARDAPPS) => Some(b"mscp\0\0\0\0".to_vec()),
            // Cache freshness counters (version, PINs, containers, files): never changes here.
            (Self::EveryoneReadUserWrite, DO_CARDCF) => Some(vec![0; 6]),
            // Container map: no key containers.
            (Self::EveryoneReadUserWrite, DO_CMAPFILE) => Some(Vec::new()),
            _ => None,
        }
    }
}

/// The masterfile: version `01`, then one record per entry of [`MASTERFILE_ENTRIES`].
fn masterfile() -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + MASTERFILE_ENTRIES.len() * MASTERFILE_RECORD_LEN);
    out.push(0x01);
    for (directory, file, data_object, file_identifier) in MASTERFILE_ENTRIES {
        let mut record = [0u8; MASTERFILE_RECORD_LEN];
        record[..directory.len()].copy_from_slice(directory.as_bytes());
        record[9..9 + file.len()].copy_from_slice(file.as_bytes());
        record[20..24].copy_from_slice(&u32::from(data_object).to_le_bytes());
        record[24..28].copy_from_slice(&u32::from(file_identifier).to_le_bytes());
        out.extend_from_slice(&record);
    }
    out
}

enum Step<'a> {
    One(&'a [u8]),
    Two(&'a [u8]),
}
