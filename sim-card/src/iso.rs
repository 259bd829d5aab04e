//! ISO 7816-4 admin challenge-response application (Windows-minidriver style): GET CHALLENGE,
//! EXTERNAL AUTHENTICATE with the admin key, RESET RETRY COUNTER, VERIFY, GET DATA (serial).

use crate::applet::{ins, session_in_field, Outline, Session};
use rand::rngs::StdRng;
use rand::RngCore;
use zeroize::{Zeroize, Zeroizing};

use crate::apdu::{Command, Reply};
use crate::config::IsoConfig;
use crate::crypto::{ct_eq, Cipher};
use crate::pin::RawPin;
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

/// PIN length bounds of VERIFY and RESET RETRY COUNTER.
const PIN_LEN: core::ops::RangeInclusive<usize> = 4..=16;

/// The challenge GET CHALLENGE left for EXTERNAL AUTHENTICATE.
pub(crate) type Challenge = Zeroizing<Vec<u8>>;

pub(crate) struct Iso {
    pub(crate) cfg: IsoConfig,
    session: Session<Challenge>,
}

impl Outline for Iso {
    type Pending = Challenge;
    type State = ();
    /// Only EXTERNAL AUTHENTICATE keeps the pending challenge.
    const CONTINUES: u8 = ins::EXTERNAL_AUTHENTICATE;

    const INSTRUCTIONS: &'static [u8] = &[
        ins::VERIFY,
        ins::CHANGE_REFERENCE_DATA,
        ins::RESET_RETRY_COUNTER,
        ins::EXTERNAL_AUTHENTICATE,
        ins::GET_CHALLENGE,
        ins::GET_DATA,
    ];

    session_in_field!();

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
        let fci_name = fci_name.to_vec();
        // FCI: 6F { 84 DF name } for the AID, 6F { 83 file id } for the MF.
        let tag = if fci_name.len() == 2 { 0x83 } else { 0x84 };
        self.enter(cmd.p2, || crate::tlv::nested(&[0x6F], &[tag], &fci_name))
    }

    fn dispatch(&mut self, cmd: &Command<'_>, rng: &mut StdRng) -> Reply {
        match cmd.ins {
            ins::VERIFY => self.verify(cmd).into(),
            ins::RESET_RETRY_COUNTER => self.reset_retry_counter(cmd).into(),
            ins::CHANGE_REFERENCE_DATA => self.change_admin_key(cmd).into(),
            ins::EXTERNAL_AUTHENTICATE => self.external_authenticate(cmd).into(),
            ins::GET_CHALLENGE => self.get_challenge(cmd, rng),
            _ => self.get_data(cmd),
        }
    }
}

/// The card's PIN, as VERIFY and RESET RETRY COUNTER see it.
fn pin(cfg: &mut IsoConfig) -> RawPin<'_> {
    RawPin {
        value: &mut cfg.pin,
        left: &mut cfg.pin_tries_left,
        max: cfg.pin_max_tries,
        len: PIN_LEN,
    }
}

impl Iso {
    pub(crate) fn new(cfg: IsoConfig) -> Self {
        Iso {
            cfg,
            session: Session::default(),
        }
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
        self.session.pending = Some(c);
        Reply::ok(out)
    }

    fn external_authenticate(&mut self, cmd: &Command<'_>) -> u16 {
        // Single use: consumed by this attempt, right or wrong.
        let challenge = self.session.pending.take();
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

    fn verify(&mut self, cmd: &Command<'_>) -> u16 {
        if cmd.p1 != 0x00 {
            return sw::WRONG_P1P2;
        }
        if cmd.p2 != self.cfg.pin_ref {
            return sw::REF_NOT_FOUND;
        }
        pin(&mut self.cfg).verify(cmd.data, &mut self.session.access.pin_verified)
    }

    /// RESET RETRY COUNTER (see [`RawPin::reset`]); one unblock per authentication.
    fn reset_retry_counter(&mut self, cmd: &Command<'_>) -> u16 {
        let pin_ref = self.cfg.pin_ref;
        let status = pin(&mut self.cfg).reset(cmd, pin_ref, &mut self.session.access);
        if status == sw::OK {
            self.session.access.admin_authenticated = false;
        }
        status
    }

    fn get_data(&self, cmd: &Command<'_>) -> Reply {
        if cmd.p1p2() != 0x0100 {
            return sw::REF_NOT_FOUND.into();
        }
        Reply::ok(self.cfg.serial.to_vec())
    }
}
