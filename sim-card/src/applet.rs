//! What the card asks of each applet (PIV, GIDS, ISO admin), and the session rights they share.

use rand::rngs::StdRng;

use crate::apdu::{Command, Reply};

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

impl Access {
    /// Just selected: nothing verified.
    pub(crate) fn selected() -> Self {
        Self {
            selected: true,
            ..Self::default()
        }
    }
}

/// One applet of the simulated card.
pub(crate) trait Applet {
    /// Answers one (unchained) command.
    fn process(&mut self, cmd: &Command<'_>, rng: &mut StdRng) -> Reply;
    /// A command with instruction `ins` arrived: a pending challenge survives only the command
    /// that continues it.
    fn note_command(&mut self, ins: u8);
    /// A reset: the session starts from nothing.
    fn reset_session(&mut self);
    /// What the session has granted.
    fn access(&self) -> Access;
}
