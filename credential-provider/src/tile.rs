//! The "Unlock smart card" tile as a plain state machine, free of COM: it takes the worker's
//! [`Report`](crate::link::Report)s and what LogonUI passes on (typed text, the submit arrow, links), and says what
//! every field shows ([`Tile::view`]). The COM layer only translates.
//!
//! The forms mirror the window's screens: waiting for the card, the security questions, the
//! new PIN under "Enter new PIN to unlock the smart card." with the PIN rules and their
//! violations as status text, the offline challenge with a response field, the success, and one
//! form per failure (wrong answers with attempts left, locked, no questions -> offline, server
//! unreachable, card removed, no card).

pub mod fields;

use zeroize::{Zeroize, Zeroizing};

use crate::link::{secret, Front, Reply, TileEnd, SECRET_CAPACITY};
pub use crate::link::{Screen, ANSWER_QUESTIONS, ENTER_NEW_PIN, UNLOCKED};
use fields::*;

/// What `GetSerialization` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submission {
    /// Nothing to log on with and not finished: the form stays (or the next one comes).
    NotFinished,
    /// Finished: nothing to log on with (this tile unlocks a card, it logs nobody on); LogonUI
    /// shows `text` with OK.
    Finished {
        /// The status text.
        text: String,
        /// Whether it is a success.
        success: bool,
    },
}

/// Something LogonUI asked that the tile cannot do (an `E_INVALIDARG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotThatField(pub u32);

impl std::fmt::Display for NotThatField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "field {}: not possible on this form", self.0)
    }
}

impl std::error::Error for NotThatField {}

/// The tile.
pub struct Tile {
    link: TileEnd,
    /// The form on show and what the worker said, as the window keeps it.
    front: Front,
    /// What the tile itself says about the input (e.g. "Answer every question.").
    note: Option<String>,
    offline_offered: bool,
    /// Secret fields whose text the tile wiped; LogonUI's copy must be wiped too.
    wiped: Vec<u32>,
    /// The success was reported to LogonUI (it is not submitted again).
    reported: bool,
}

impl Tile {
    /// A tile talking to the worker at the other end of `link`.
    pub fn new(link: TileEnd, offline_offered: bool) -> Self {
        Self {
            link,
            front: Front::new(
                Screen::Busy("Looking for the card...".into()),
                MAX_QUESTIONS,
            ),
            note: None,
            offline_offered,
            wiped: Vec::new(),
            reported: false,
        }
    }

    /// The form on show.
    pub fn screen(&self) -> &Screen {
        self.front.screen()
    }

    /// Whether LogonUI should submit the tile by itself (the unlock finished: it then calls
    /// `GetSerialization`, which reports the success), once.
    pub fn auto_submit(&self) -> bool {
        matches!(self.front.screen(), Screen::Unlocked) && !self.reported
    }

    /// The card line read at the start ("PIV card, id ..., PIN BLOCKED"), if any.
    pub fn card(&self) -> Option<&str> {
        self.front.card()
    }

    /// Takes in everything the worker reported. Returns whether anything changed.
    pub fn pump(&mut self) -> bool {
        let (note, wiped) = (&mut self.note, &mut self.wiped);
        self.front.pump(&self.link, |old| {
            wipe(old, wiped);
            *note = None;
        })
    }

    /// Sends `reply` to the worker; the next form says what it is doing about it.
    fn reply(&mut self, reply: Reply) {
        let (note, wiped) = (&mut self.note, &mut self.wiped);
        self.front.reply(&self.link, reply, |old| {
            wipe(old, wiped);
            *note = None;
        });
    }

    /// The slot behind secret field `id` on this form.
    fn slot(&mut self, id: u32) -> Option<&mut Zeroizing<String>> {
        slot(self.front.screen_mut(), id)
    }

    /// LogonUI's `SetStringValue`: the person typed in field `id`.
    pub fn set_string(&mut self, id: u32, value: &str) -> Result<(), NotThatField> {
        let slot = self.slot(id).ok_or(NotThatField(id))?;
        slot.zeroize();
        if value.len() > SECRET_CAPACITY {
            // Never grow (and so copy) the slot: a value this long is no answer or PIN.
            return Err(NotThatField(id));
        }
        slot.push_str(value);
        Ok(())
    }

    /// LogonUI's `GetStringValue`: what field `id` holds (typed text for input fields).
    pub fn string(&mut self, id: u32) -> Zeroizing<String> {
        if is_secret(id) {
            return Zeroizing::new(self.slot(id).map(|s| s.to_string()).unwrap_or_default());
        }
        Zeroizing::new(self.view().field(id).text)
    }

    fn wipe_all(&mut self) {
        wipe(self.front.screen_mut(), &mut self.wiped);
    }

    /// The person left the tile (`SetDeselected`): everything typed is wiped.
    pub fn deselected(&mut self) {
        self.wipe_all();
    }

    /// The secret fields the tile wiped since the last call: LogonUI's copies are to be wiped
    /// too (`SetFieldString(id, "")`).
    pub fn take_wiped(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.wiped)
    }

    /// The submit arrow (`GetSerialization`).
    pub fn submit(&mut self) -> Submission {
        let reply = match self.front.screen_mut() {
            Screen::Questions { answers, .. } => {
                if answers.is_empty() || answers.iter().any(|a| a.trim().is_empty()) {
                    self.note = Some("Answer every question.".into());
                    return Submission::NotFinished;
                }
                Reply::Answers(std::mem::take(answers))
            }
            Screen::NewPin {
                policy,
                pin,
                confirm,
                refused,
            } => {
                let violations = policy.violations(pin, confirm);
                if !violations.is_empty() {
                    // Refused here: nothing reaches the card or the server.
                    *refused = violations;
                    self.wipe_all();
                    return Submission::NotFinished;
                }
                Reply::NewPin(
                    std::mem::replace(pin, secret()),
                    std::mem::replace(confirm, secret()),
                )
            }
            Screen::Challenge { response, .. } => {
                if response.trim().is_empty() {
                    self.note = Some("Type the response your help desk reads you.".into());
                    return Submission::NotFinished;
                }
                Reply::Response(std::mem::replace(response, secret()))
            }
            Screen::Unlocked => {
                self.reported = true;
                return Submission::Finished {
                    text: UNLOCKED.into(),
                    success: true,
                };
            }
            _ => return Submission::NotFinished,
        };
        self.reply(reply);
        // What LogonUI still shows of the typed text goes too.
        self.wiped.extend(
            fields::FIELDS
                .iter()
                .map(|f| f.id)
                .filter(|&id| is_secret(id)),
        );
        self.wiped.sort_unstable();
        self.wiped.dedup();
        Submission::NotFinished
    }

    /// A link was clicked (`CommandLinkClicked`).
    pub fn command_link(&mut self, id: u32) -> Result<(), NotThatField> {
        let (retry, offline) = self.links();
        let reply = match id {
            RETRY if retry => Reply::Retry,
            OFFLINE if offline => Reply::Offline,
            _ => return Err(NotThatField(id)),
        };
        self.reply(reply);
        Ok(())
    }

    /// Which links the form shows: (try again, unlock offline); none once the worker ended.
    fn links(&self) -> (bool, bool) {
        match self.front.screen() {
            Screen::Failed(p) if !self.front.worker_gone() => {
                crate::link::next_steps(p, self.offline_offered)
            }
            _ => (false, false),
        }
    }
}

/// The slot behind secret field `id` on `screen`.
fn slot(screen: &mut Screen, id: u32) -> Option<&mut Zeroizing<String>> {
    match screen {
        Screen::Questions { answers, .. } => ANSWERS
            .iter()
            .position(|&a| a == id)
            .and_then(|i| answers.get_mut(i)),
        Screen::NewPin { pin, confirm, .. } => match id {
            NEW_PIN => Some(pin),
            CONFIRM_PIN => Some(confirm),
            _ => None,
        },
        Screen::Challenge { response, .. } if id == RESPONSE => Some(response),
        _ => None,
    }
}

/// Wipes what was typed on `screen` and notes the fields whose LogonUI copy must go too.
fn wipe(screen: &mut Screen, wiped: &mut Vec<u32>) {
    for id in fields::FIELDS
        .iter()
        .map(|f| f.id)
        .filter(|&id| is_secret(id))
    {
        if let Some(s) = slot(screen, id).filter(|s| !s.is_empty()) {
            s.zeroize();
            if !wiped.contains(&id) {
                wiped.push(id);
            }
        }
    }
}

mod view;
