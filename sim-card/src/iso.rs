//! ISO 7816-4 admin challenge-response application (Windows-minidriver style): GET CHALLENGE,
//! EXTERNAL AUTHENTICATE with the admin key, RESET RETRY COUNTER, VERIFY, GET DATA (serial).

use crate::applet::{Access, Applet};
use rand::rngs::StdRng;
use rand::RngCore;
use zeroize::{Zeroize, Zeroizing};

use crate::apdu::{Command, Reply};
use crate::config::IsoConfig;
use crate::crypto::{ct_eq, Cipher};
use crate::pin::verify_raw_pin;
use crate::sw;

/// The simulated card's application AID, `F0 43 55 4E 4C 4F 43 4B`: "CUNLOCK" in the proprietary
/// `F` category of ISO/IEC 7816-5, so it collides with no registered application. Selected by
/// exact match; SELECT of the MF `3F 00` selects the same application.
pub const ISO_ADMIN_AID: [u8; 8] = [0xF0, 0x43, 0x55, 0x4E, 0x4C, 0x4F, 0x43, 0x4B];

/// The simulated ISO admin card's profile for the core's flows: [`ISO_ADMIN_AID`], admin key
/// 01, PIN 80, 3DES (the factory [`crate::IsoConfig`]). Tests and the demo use it; a
/// workstation's ISO profiles come from its configuration.
pub const ISO_PROFILE: cardunlock_core::iso::IsoProfile<'static> =
    cardunlock_core::iso::IsoProfile {
        aid: &ISO_ADMIN_AID,
        admin_key_ref: 0x01,
        pin_ref: 0x80,
        algorithm: cardunlock_core::crypto::Algorithm::TripleDes,
    };

const INS_VERIFY: u8 = 0x20;
/// CHANGE REFERENCE DATA; P1 = 01 changes the admin key (this card's vendor-specific form).
const INS_CHANGE_REFERENCE_DATA: u8 = 0x24;
const INS_RESET_RETRY_COUNTER: u8 = 0x2C;
const INS_EXTERNAL_AUTHENTICATE: u8 = 0x82;
const INS_GET_CHALLENGE: u8 = 0x84;
const INS_SELECT: u8 = 0xA4;
const INS_GET_DATA: u8 = 0xCA;

/// PIN length bounds of VERIFY and RESET RETRY COUNTER.
const PIN_LEN: core::ops::RangeInclusive<usize> = 4..=16;

#[derive(Default)]
struct Session {
    access: Access,
    challenge: Option<Zeroizing<Vec<u8>>>,
}

pub(crate) struct Iso {
    pub(crate) cfg: IsoConfig,
    session: Session,
}

impl Applet for Iso {
    fn process(&mut self, cmd: &Command<'_>, rng: &mut StdRng) -> Reply {
        Iso::process(self, cmd, rng)
    }

    /// Any command other than EXTERNAL AUTHENTICATE drops the pending challenge.
    fn note_command(&mut self, ins: u8) {
        if ins != INS_EXTERNAL_AUTHENTICATE {
            self.session.challenge = None;
        }
    }

    fn reset_session(&mut self) {
        self.session = Session::default();
    }

    fn access(&self) -> Access {
        self.session.access
    }
}

impl Iso {
    pub(crate) fn new(cfg: IsoConfig) -> Self {
        Iso {
            cfg,
            session: Session::default(),
        }
    }

    fn process(&mut self, cmd: &Command<'_>, rng: &mut StdRng) -> Reply {
        if cmd.ins == INS_SELECT {
            return self.select(cmd);
        }
        if !matches!(
            cmd.ins,
            INS_VERIFY
                | INS_CHANGE_REFERENCE_DATA
                | INS_RESET_RETRY_COUNTER
                | INS_EXTERNAL_AUTHENTICATE
                | INS_GET_CHALLENGE
                | INS_GET_DATA
        ) {
            return sw::INS_NOT_SUPPORTED.into();
        }
        if !self.session.access.selected {
            return sw::CONDITIONS_NOT_SATISFIED.into();
        }
        match cmd.ins {
            INS_VERIFY => self.verify(cmd).into(),
            INS_RESET_RETRY_COUNTER => self.reset_retry_counter(cmd).into(),
            INS_CHANGE_REFERENCE_DATA => self.change_admin_key(cmd).into(),
            INS_EXTERNAL_AUTHENTICATE => self.external_authenticate(cmd).into(),
            INS_GET_CHALLENGE => self.get_challenge(cmd, rng),
            _ => self.get_data(cmd),
        }
    }

    fn select(&mut self, cmd: &Command<'_>) -> Reply {
        if !matches!(cmd.p2, 0x00 | 0x0C) {
            return sw::WRONG_P1P2.into();
        }
        let fci_name: &[u8] = match (cmd.p1, cmd.data) {
            (0x04, aid) if aid == self.cfg.aid.as_slice() => &self.cfg.aid,
            (0x00, [] | [0x3F, 0x00]) => &[0x3F, 0x00],
            (0x00 | 0x04, _) => return sw::NOT_FOUND.into(),
            _ => return sw::WRONG_P1P2.into(),
        };
        self.session = Session {
            access: Access::selected(),
            ..Session::default()
        };
        if cmd.p2 == 0x0C {
            return Reply::sw(sw::OK);
        }
        // FCI: 6F { 84 DF name } for the AID, 6F { 83 file id } for the MF.
        let tag = if fci_name.len() == 2 { 0x83 } else { 0x84 };
        let mut inner = Vec::with_capacity(fci_name.len() + 2);
        crate::tlv::push(&mut inner, &[tag], fci_name);
        let mut fci = Vec::with_capacity(inner.len() + 2);
        crate::tlv::push(&mut fci, &[0x6F], &inner);
        Reply::ok(fci)
    }

    fn get_challenge(&mut self, cmd: &Command<'_>, rng: &mut StdRng) -> Reply {
        if cmd.p1p2() != 0x0000 {
            return sw::WRONG_P1P2.into();
        }
        let blk = self.cfg.admin_algorithm.block_len();
        if !cmd.data.is_empty() || cmd.le.map(|le| le.ne()) != Some(blk) {
            return sw::WRONG_LENGTH.into();
        }
        let mut c = Zeroizing::new(vec![0u8; blk]);
        rng.fill_bytes(&mut c);
        let out = c.to_vec();
        self.session.challenge = Some(c);
        Reply::ok(out)
    }

    fn external_authenticate(&mut self, cmd: &Command<'_>) -> u16 {
        // Single use: consumed by this attempt, right or wrong.
        let challenge = self.session.challenge.take();
        if cmd.p1 != 0x00 {
            return sw::WRONG_P1P2;
        }
        let Some(challenge) = challenge else {
            return sw::CONDITIONS_NOT_SATISFIED;
        };
        if cmd.p2 != self.cfg.admin_key_ref {
            return sw::REF_NOT_FOUND;
        }
        if self.cfg.admin_tries_left == 0 {
            return sw::AUTH_BLOCKED;
        }
        let Some(expected) = Cipher::new(self.cfg.admin_algorithm, &self.cfg.admin_key)
            .and_then(|c| c.encrypt_ecb(&challenge))
        else {
            return sw::NO_DIAGNOSIS;
        };
        if cmd.data.len() != expected.len() {
            return sw::WRONG_DATA;
        }
        if ct_eq(&expected, cmd.data) {
            self.session.access.admin_authenticated = true;
            self.cfg.admin_tries_left = self.cfg.admin_max_tries;
            sw::OK
        } else {
            self.session.access.admin_authenticated = false;
            sw::wrong_try(&mut self.cfg.admin_tries_left)
        }
    }

    fn verify(&mut self, cmd: &Command<'_>) -> u16 {
        if cmd.p1 != 0x00 {
            return sw::WRONG_P1P2;
        }
        if cmd.p2 != self.cfg.pin_ref {
            return sw::REF_NOT_FOUND;
        }
        verify_raw_pin(
            cmd.data,
            &self.cfg.pin,
            self.cfg.pin_max_tries,
            &mut self.cfg.pin_tries_left,
            &mut self.session.access.pin_verified,
            PIN_LEN,
        )
    }

    /// `00 24 01 <admin key ref> <len> <new key>` after EXTERNAL AUTHENTICATE: personalisation.
    /// The new key must have the configured algorithm's length (`6A 80` otherwise).
    fn change_admin_key(&mut self, cmd: &Command<'_>) -> u16 {
        if cmd.p1 != 0x01 {
            return sw::WRONG_P1P2;
        }
        if cmd.p2 != self.cfg.admin_key_ref {
            return sw::REF_NOT_FOUND;
        }
        if !self.session.access.admin_authenticated {
            return sw::SECURITY_NOT_SATISFIED;
        }
        if cmd.data.len() != self.cfg.admin_algorithm.key_len() {
            return sw::WRONG_DATA;
        }
        self.cfg.admin_key.zeroize();
        self.cfg.admin_key = cmd.data.to_vec();
        self.cfg.admin_tries_left = self.cfg.admin_max_tries;
        self.session.access.admin_authenticated = false;
        sw::OK
    }

    fn reset_retry_counter(&mut self, cmd: &Command<'_>) -> u16 {
        if cmd.p1 != 0x02 {
            return sw::WRONG_P1P2;
        }
        if cmd.p2 != self.cfg.pin_ref {
            return sw::REF_NOT_FOUND;
        }
        if !self.session.access.admin_authenticated {
            return sw::SECURITY_NOT_SATISFIED;
        }
        if !PIN_LEN.contains(&cmd.data.len()) {
            return sw::WRONG_DATA;
        }
        self.cfg.pin.zeroize();
        self.cfg.pin = cmd.data.to_vec();
        self.cfg.pin_tries_left = self.cfg.pin_max_tries;
        self.session.access.pin_verified = false;
        // One unblock per authentication.
        self.session.access.admin_authenticated = false;
        sw::OK
    }

    fn get_data(&self, cmd: &Command<'_>) -> Reply {
        if cmd.p1p2() != 0x0100 {
            return sw::REF_NOT_FOUND.into();
        }
        Reply::ok(self.cfg.serial.to_vec())
    }
}
