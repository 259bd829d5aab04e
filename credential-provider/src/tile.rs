//! The "Unlock smart card" tile as a plain state machine, free of COM: it takes the worker's
//! [`Report`]s and what LogonUI passes on (typed text, the submit arrow, links), and says what
//! every field shows ([`Tile::view`]). The COM layer only translates.
//!
//! The forms mirror the window's screens: waiting for the card, the security questions, the
//! new PIN under "Enter new PIN to unlock the smart card." with the PIN rules and their
//! violations as status text, the offline challenge with a response field, the success, and one
//! form per failure (wrong answers with attempts left, locked, no questions -> offline, server
//! unreachable, card removed, no card).

pub mod fields;

use zeroize::{Zeroize, Zeroizing};

use crate::link::{Challenge, PinPolicy, Problem, ProblemKind, Reply, Report, TileEnd, User};
use fields::*;

/// The success line, the same as the CLI's and the window's.
pub const UNLOCKED: &str = "The smart card has been unlocked successfully.";
/// The PIN form's prompt.
pub const ENTER_NEW_PIN: &str = "Enter new PIN to unlock the smart card.";
/// The questions form's prompt.
pub const ANSWER_QUESTIONS: &str = "Answer your security questions.";
/// Room kept in each secret slot, so a typed value never moves (a growing `String` would
/// leave its old buffer behind unzeroized).
const SECRET_CAPACITY: usize = 128;

fn secret() -> Zeroizing<String> {
    Zeroizing::new(String::with_capacity(SECRET_CAPACITY))
}

/// The form on show.
pub enum Screen {
    /// Waiting for the card (or the worker's first word).
    Waiting(String),
    /// Work that needs no input.
    Busy(String),
    /// The security questions; the answers as typed.
    Questions {
        /// The questions.
        questions: Vec<String>,
        /// One answer per question.
        answers: Vec<Zeroizing<String>>,
    },
    /// New PIN and confirmation.
    NewPin {
        /// The server's (or profile's) policy.
        policy: PinPolicy,
        /// New PIN as typed.
        pin: Zeroizing<String>,
        /// Confirmation as typed.
        confirm: Zeroizing<String>,
        /// Why the last PIN was refused.
        refused: Vec<String>,
    },
    /// Offline unlock: the challenge to read out, the help desk's response to type.
    Challenge {
        /// What the card shows.
        challenge: Challenge,
        /// The response (or PUK) as typed.
        response: Zeroizing<String>,
    },
    /// The card is being unlocked.
    Unlocking,
    /// Done.
    Unlocked,
    /// A failure, with what can be done next.
    Failed(Problem),
}

impl Screen {
    /// A short name for tests and logs (never holds secrets).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Waiting(_) => "waiting",
            Self::Busy(_) => "busy",
            Self::Questions { .. } => "questions",
            Self::NewPin { .. } => "new-pin",
            Self::Challenge { .. } => "challenge",
            Self::Unlocking => "unlocking",
            Self::Unlocked => "unlocked",
            Self::Failed(_) => "failed",
        }
    }
}

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
    screen: Screen,
    card: Option<String>,
    user: Option<User>,
    attempts_left: Option<u32>,
    warnings: Vec<String>,
    /// What the tile itself says about the input (e.g. "Answer every question.").
    note: Option<String>,
    offline_offered: bool,
    worker_gone: bool,
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
            screen: Screen::Busy("Looking for the card...".into()),
            card: None,
            user: None,
            attempts_left: None,
            warnings: Vec::new(),
            note: None,
            offline_offered,
            worker_gone: false,
            wiped: Vec::new(),
            reported: false,
        }
    }

    /// The form on show.
    pub fn screen(&self) -> &Screen {
        &self.screen
    }

    /// Whether LogonUI should submit the tile by itself (the unlock finished: it then calls
    /// `GetSerialization`, which reports the success), once.
    pub fn auto_submit(&self) -> bool {
        matches!(self.screen, Screen::Unlocked) && !self.reported
    }

    /// The card line read at the start ("PIV card, id ..., PIN BLOCKED"), if any.
    pub fn card(&self) -> Option<&str> {
        self.card.as_deref()
    }

    fn show(&mut self, screen: Screen) {
        self.wipe_all();
        self.note = None;
        self.screen = screen;
    }

    /// Takes in everything the worker reported. Returns whether anything changed.
    pub fn pump(&mut self) -> bool {
        let mut changed = false;
        loop {
            match self.link.next() {
                Ok(Some(report)) => {
                    self.take(report);
                    changed = true;
                }
                Ok(None) => return changed,
                Err(_) => {
                    if !self.worker_gone {
                        self.worker_gone = true;
                        if !matches!(self.screen, Screen::Unlocked | Screen::Failed(_)) {
                            self.show(Screen::Failed(Problem {
                                kind: ProblemKind::Cancelled,
                                message: "The unlock stopped.".into(),
                            }));
                            changed = true;
                        }
                    }
                    return changed;
                }
            }
        }
    }

    fn take(&mut self, report: Report) {
        use crate::link::Ask;
        match report {
            Report::Waiting(text) => {
                self.card = None;
                self.user = None;
                self.attempts_left = None;
                self.warnings.clear();
                self.show(Screen::Waiting(text));
            }
            Report::Busy(text) => self.show(Screen::Busy(text)),
            Report::Card(description) => {
                self.card = Some(description);
                self.show(Screen::Busy(
                    "Card found. Contacting the unlock server...".into(),
                ));
            }
            Report::User(user) => self.user = Some(user),
            Report::WrongAnswers { attempts_left } => self.attempts_left = Some(attempts_left),
            Report::PinRefused(violations) => {
                if let Screen::NewPin { refused, .. } = &mut self.screen {
                    *refused = violations;
                } else {
                    self.warnings.extend(violations);
                }
            }
            Report::Unlocking => self.show(Screen::Unlocking),
            Report::Warning(w) => self.warnings.push(w),
            Report::Ask(Ask::Answers(questions)) if questions.len() > MAX_QUESTIONS => {
                self.link.reply(Reply::Cancel);
                self.show(Screen::Failed(Problem {
                    kind: ProblemKind::Usage,
                    message: format!(
                        "{} security questions are enrolled; this tile shows at most \
                         {MAX_QUESTIONS}. Use the unlock window or call your help desk.",
                        questions.len()
                    ),
                }));
            }
            Report::Ask(Ask::Answers(questions)) => {
                let answers = questions.iter().map(|_| secret()).collect();
                self.show(Screen::Questions { questions, answers });
            }
            Report::Ask(Ask::NewPin(policy)) => {
                let refused = match &mut self.screen {
                    Screen::NewPin { refused, .. } => std::mem::take(refused),
                    _ => Vec::new(),
                };
                self.show(Screen::NewPin {
                    policy,
                    pin: secret(),
                    confirm: secret(),
                    refused,
                });
            }
            Report::Ask(Ask::Response(challenge)) => self.show(Screen::Challenge {
                challenge,
                response: secret(),
            }),
            Report::Unlocked => {
                // The card line read before the unlock ("PIN BLOCKED") is stale now.
                self.card = None;
                self.show(Screen::Unlocked);
            }
            Report::Failed(problem) => self.show(Screen::Failed(problem)),
        }
    }

    /// The slot behind secret field `id` on this form.
    fn slot(&mut self, id: u32) -> Option<&mut Zeroizing<String>> {
        match &mut self.screen {
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
        let typed: Vec<u32> = fields::FIELDS
            .iter()
            .map(|f| f.id)
            .filter(|&id| is_secret(id))
            .filter(|&id| self.slot(id).is_some_and(|s| !s.is_empty()))
            .collect();
        for id in typed {
            if let Some(s) = self.slot(id) {
                s.zeroize();
            }
            if !self.wiped.contains(&id) {
                self.wiped.push(id);
            }
        }
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
        let (reply, busy) = match &mut self.screen {
            Screen::Questions { answers, .. } => {
                if answers.is_empty() || answers.iter().any(|a| a.trim().is_empty()) {
                    self.note = Some("Answer every question.".into());
                    return Submission::NotFinished;
                }
                (
                    Reply::Answers(std::mem::take(answers)),
                    "Checking your answers...",
                )
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
                let reply = Reply::NewPin(
                    std::mem::replace(pin, secret()),
                    std::mem::replace(confirm, secret()),
                );
                (reply, "Checking the new PIN...")
            }
            Screen::Challenge { response, .. } => {
                if response.trim().is_empty() {
                    self.note = Some("Type the response your help desk reads you.".into());
                    return Submission::NotFinished;
                }
                let reply = Reply::Response(std::mem::replace(response, secret()));
                (reply, "Checking the response...")
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
        self.link.reply(reply);
        self.show(Screen::Busy(busy.into()));
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
        self.link.reply(reply);
        self.attempts_left = None;
        self.show(Screen::Busy("Reading the card...".into()));
        Ok(())
    }

    /// Which links the form shows: (try again, unlock offline).
    fn links(&self) -> (bool, bool) {
        match &self.screen {
            Screen::Failed(p) if self.worker_gone => {
                let _ = p;
                (false, false)
            }
            Screen::Failed(p) => match p.kind {
                ProblemKind::Locked => (false, false),
                ProblemKind::NoQuestions => (false, self.offline_offered),
                _ => (true, false),
            },
            _ => (false, false),
        }
    }
}

mod view;
