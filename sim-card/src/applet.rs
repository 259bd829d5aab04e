//! What the card asks of each applet (PIV, GIDS, ISO admin), and the outline they share: the
//! session (what it granted, the exchange waiting for its second step), the order in which a
//! command is checked (SELECT, then a known instruction, then a selected applet), and the
//! SELECT reply. Each applet writes only its [`Outline`]: its instructions, its SELECT and
//! what each command does.

use rand::rngs::StdRng;

use crate::apdu::{Command, Reply};
use crate::sw;

/// The ISO/IEC 7816-4 instruction bytes the applets share (each applet's own are in its file).
pub(crate) mod ins {
    /// MANAGE SECURITY ENVIRONMENT.
    pub(crate) const MSE: u8 = 0x22;
    /// VERIFY.
    pub(crate) const VERIFY: u8 = 0x20;
    /// CHANGE REFERENCE DATA.
    pub(crate) const CHANGE_REFERENCE_DATA: u8 = 0x24;
    /// RESET RETRY COUNTER.
    pub(crate) const RESET_RETRY_COUNTER: u8 = 0x2C;
    /// EXTERNAL AUTHENTICATE.
    pub(crate) const EXTERNAL_AUTHENTICATE: u8 = 0x82;
    /// GET CHALLENGE.
    pub(crate) const GET_CHALLENGE: u8 = 0x84;
    /// GENERAL AUTHENTICATE.
    pub(crate) const GENERAL_AUTHENTICATE: u8 = 0x87;
    /// SELECT, the one instruction every applet answers before it is selected.
    pub(crate) const SELECT: u8 = 0xA4;
    /// GET DATA with simple tags in P1-P2.
    pub(crate) const GET_DATA: u8 = 0xCA;
    /// GET DATA with a BER-TLV tag list in the data (the odd instruction).
    pub(crate) const GET_DATA_BER: u8 = 0xCB;
}

/// What the current session has granted; a reset or a new SELECT starts from nothing.
#[derive(Clone, Copy, Default)]
pub(crate) struct Access {
    /// The applet is selected.
    pub(crate) selected: bool,
    /// The PIN was verified.
    pub(crate) pin_verified: bool,
    /// The management key (PIV) or admin key (GIDS, ISO) authenticated.
    pub(crate) admin_authenticated: bool,
}

/// One applet's session: what it granted, the exchange `P` (challenge, witness, randoms)
/// waiting for the command that continues it, and the applet's own session state `S`. A reset
/// or a new SELECT starts a new one.
pub(crate) struct Session<P, S = ()> {
    /// What the session has granted.
    pub(crate) access: Access,
    /// The exchange waiting for its second step.
    pub(crate) pending: Option<P>,
    /// What else the applet keeps for the session (GIDS: the key MSE SET chose).
    pub(crate) state: S,
}

impl<P, S: Default> Default for Session<P, S> {
    fn default() -> Self {
        Self {
            access: Access::default(),
            pending: None,
            state: S::default(),
        }
    }
}

/// Writes an [`Outline`]'s `session` and `session_mut` for the applet's field `session`.
macro_rules! session_in_field {
    () => {
        fn session(&self) -> &crate::applet::Session<Self::Pending, Self::State> {
            &self.session
        }

        fn session_mut(&mut self) -> &mut crate::applet::Session<Self::Pending, Self::State> {
            &mut self.session
        }
    };
}
pub(crate) use session_in_field;

/// The part of an applet that is its own; [`Applet`] comes from it.
pub(crate) trait Outline {
    /// The exchange a first step leaves waiting.
    type Pending;
    /// The applet's own session state.
    type State: Default;
    /// The instruction that continues a pending exchange: any other drops it.
    const CONTINUES: u8;

    /// The session.
    fn session(&self) -> &Session<Self::Pending, Self::State>;
    /// The session, mutably.
    fn session_mut(&mut self) -> &mut Session<Self::Pending, Self::State>;
    /// The instructions the applet answers, SELECT aside.
    const INSTRUCTIONS: &'static [u8];

    /// Whether the applet answers `ins` (other than SELECT).
    fn knows(&self, ins: u8) -> bool {
        Self::INSTRUCTIONS.contains(&ins)
    }
    /// SELECT: checks P1, P2 and the name, then [`Outline::enter`].
    fn select(&mut self, cmd: &Command<'_>) -> Reply;
    /// A known instruction other than SELECT, the applet selected.
    fn dispatch(&mut self, cmd: &Command<'_>, rng: &mut StdRng) -> Reply;

    /// A SELECT that found the applet: a new session; `90 00` alone when P2 is `0C` (no
    /// response data), else the applet's `fci`.
    fn enter(&mut self, p2: u8, fci: impl FnOnce() -> Vec<u8>) -> Reply
    where
        Self: Sized,
    {
        let session = self.session_mut();
        *session = Session::default();
        session.access.selected = true;
        if p2 == 0x0C {
            Reply::sw(sw::OK)
        } else {
            Reply::ok(fci())
        }
    }
}

/// One applet of the simulated card, as the card drives it.
pub(crate) trait Applet {
    /// Answers one (unchained) command.
    fn process(&mut self, cmd: &Command<'_>, rng: &mut StdRng) -> Reply;
    /// A command with instruction `ins` arrived: a pending exchange survives only the command
    /// that continues it.
    fn note_command(&mut self, ins: u8);
    /// A reset: the session starts from nothing.
    fn reset_session(&mut self);
    /// What the session has granted.
    fn access(&self) -> Access;
}

impl<A: Outline> Applet for A {
    /// SELECT first (it needs no selected applet), then `6D 00` for an unknown instruction,
    /// then `69 85` while the applet is not selected, then the applet's own handling.
    fn process(&mut self, cmd: &Command<'_>, rng: &mut StdRng) -> Reply {
        if cmd.ins == ins::SELECT {
            return self.select(cmd);
        }
        if !self.knows(cmd.ins) {
            return sw::INS_NOT_SUPPORTED.into();
        }
        if !self.session().access.selected {
            return sw::CONDITIONS_NOT_SATISFIED.into();
        }
        self.dispatch(cmd, rng)
    }

    fn note_command(&mut self, ins: u8) {
        if ins != A::CONTINUES {
            self.session_mut().pending = None;
        }
    }

    fn reset_session(&mut self) {
        *self.session_mut() = Session::default();
    }

    fn access(&self) -> Access {
        self.session().access
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, GidsConfig, IsoConfig, PivConfig, SimCard};

    fn sw(reply: &[u8]) -> u16 {
        u16::from_be_bytes([reply[reply.len() - 2], reply[reply.len() - 1]])
    }

    /// An applet with its SELECT, a command that starts an exchange and the one that
    /// continues it (wrongly: the point is whether the exchange was still there).
    type Case = (Config, Vec<u8>, Vec<u8>, Vec<u8>);

    fn applets() -> [Case; 3] {
        let mut piv_select = vec![0x00, 0xA4, 0x04, 0x0C, 0x05];
        piv_select.extend_from_slice(&crate::PIV_AID[..5]);
        let mut gids_select = vec![0x00, 0xA4, 0x04, 0x0C, 0x09];
        gids_select.extend_from_slice(&crate::GIDS_AID[..9]);
        let mut iso_select = vec![0x00, 0xA4, 0x04, 0x0C, 0x08];
        iso_select.extend_from_slice(&crate::ISO_ADMIN_AID);
        let mut iso_auth = vec![0x00, 0x82, 0x00, 0x01, 0x08];
        iso_auth.extend_from_slice(&[0; 8]);
        let mut piv_auth = vec![0x00, 0x87, 0x03, 0x9B, 0x0C, 0x7C, 0x0A, 0x82, 0x08];
        piv_auth.extend_from_slice(&[0; 8]);
        [
            (
                Config::Piv(PivConfig::factory()),
                piv_select,
                vec![0x00, 0x87, 0x03, 0x9B, 0x04, 0x7C, 0x02, 0x81, 0x00],
                piv_auth,
            ),
            (
                Config::Gids(GidsConfig::factory()),
                gids_select,
                vec![],
                vec![],
            ),
            (
                Config::Iso(IsoConfig::factory()),
                iso_select,
                vec![0x00, 0x84, 0x00, 0x00, 0x08],
                iso_auth,
            ),
        ]
    }

    /// Proves the outline every applet shares: an unknown instruction is `6D 00` and a known
    /// one before SELECT `69 85`; SELECT with P2 `0C` answers `90 00` alone and opens a
    /// session; a reset ends it; a pending exchange survives only the command that continues
    /// it (an unexpected step is `69 85`, a wrong answer to a live one `63 Cx` / `69 82`).
    #[test]
    fn every_applet_follows_the_outline() {
        for (config, select, start, answer) in applets() {
            let mut card = SimCard::new(config);
            assert_eq!(card.transmit(&[0x00, 0x01, 0x00, 0x00]), [0x6D, 0x00]);
            assert_eq!(sw(&card.transmit(&[0x00, 0x20, 0x00, 0x80])), 0x6985);
            assert_eq!(card.transmit(&select), [0x90, 0x00]);
            assert!(card.is_selected());
            card.reset();
            assert!(!card.is_selected());
            assert_eq!(sw(&card.transmit(&[0x00, 0x20, 0x00, 0x80])), 0x6985);
            if start.is_empty() {
                continue;
            }
            card.transmit(&select);
            // A live exchange: the wrong answer costs a try (not 69 85).
            assert_eq!(sw(&card.transmit(&start)), 0x9000);
            assert_ne!(sw(&card.transmit(&answer)), 0x6985);
            // Another command in between drops it.
            assert_eq!(sw(&card.transmit(&start)), 0x9000);
            card.transmit(&[0x00, 0x20, 0x00, 0x80]);
            assert_eq!(sw(&card.transmit(&answer)), 0x6985);
        }
    }
}
