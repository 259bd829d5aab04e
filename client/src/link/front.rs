//! What a front end shows, as one state machine for the window and the login-screen tile: the
//! screen on show, the card line, the user, the attempts left and the warnings, updated from the
//! worker's [`Report`]s and from what the front end [`Front::reply`]s. The front end only draws
//! the [`Screen`] and types into its secret fields.

use zeroize::Zeroizing;

use super::{Ask, Challenge, PinPolicy, Problem, ProblemKind, Reply, Report, UiEnd, User};

/// Room kept in each secret field, so typing never moves the text (a `String` that grows leaves
/// its old buffer behind unzeroized).
pub const SECRET_CAPACITY: usize = 128;

/// An empty secret field with [`SECRET_CAPACITY`] reserved.
pub fn secret() -> Zeroizing<String> {
    Zeroizing::new(String::with_capacity(SECRET_CAPACITY))
}

/// The screen (the tile's form) on show.
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

/// What the front end shows next after sending `reply` to the worker.
pub fn busy_text(reply: &Reply) -> &'static str {
    match reply {
        Reply::Answers(_) => "Checking your answers...",
        Reply::NewPin(..) => "Checking the new PIN...",
        Reply::Response(_) => "Checking the response...",
        Reply::Retry | Reply::Offline => "Reading the card...",
        Reply::Cancel => "Cancelling...",
    }
}

/// The state of a front end, driven by the worker's reports.
///
/// Every screen change goes through a `leave` callback that sees the screen about to go (the
/// window marks the next screen for focus; the tile wipes LogonUI's copies of what was typed).
pub struct Front {
    screen: Screen,
    card: Option<String>,
    user: Option<User>,
    attempts_left: Option<u32>,
    warnings: Vec<String>,
    worker_gone: bool,
    max_questions: usize,
}

impl Front {
    /// A front end showing `first`, which can show at most `max_questions` questions (more
    /// cancel the unlock with a clear failure).
    pub fn new(first: Screen, max_questions: usize) -> Self {
        Self {
            screen: first,
            card: None,
            user: None,
            attempts_left: None,
            warnings: Vec::new(),
            worker_gone: false,
            max_questions,
        }
    }

    /// The screen on show.
    pub fn screen(&self) -> &Screen {
        &self.screen
    }

    /// The screen on show, to type into its fields or take what was typed.
    pub fn screen_mut(&mut self) -> &mut Screen {
        &mut self.screen
    }

    /// The card line read at the start ("PIV card, id ..., PIN BLOCKED"), if any.
    pub fn card(&self) -> Option<&str> {
        self.card.as_deref()
    }

    /// The user, once the server released the name and e-mail.
    pub fn user(&self) -> Option<&User> {
        self.user.as_ref()
    }

    /// The attempts left after wrong answers, until the card is read again.
    pub fn attempts_left(&self) -> Option<u32> {
        self.attempts_left
    }

    /// What the user should know that did not stop the unlock.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Whether the worker ended (after success, cancel, or a fatal error).
    pub fn worker_gone(&self) -> bool {
        self.worker_gone
    }

    /// Shows `screen`, after `leave` has seen the one that goes.
    pub fn show(&mut self, screen: Screen, mut leave: impl FnMut(&mut Screen)) {
        leave(&mut self.screen);
        self.screen = screen;
    }

    /// Sends `reply` to the worker and shows what it is doing about it ("Checking your
    /// answers..."). A retry or an offline unlock reads the card again: the attempts left go.
    pub fn reply(&mut self, end: &UiEnd, reply: Reply, leave: impl FnMut(&mut Screen)) {
        let busy = busy_text(&reply);
        if matches!(reply, Reply::Retry | Reply::Offline) {
            self.attempts_left = None;
        }
        end.reply(reply);
        self.show(Screen::Busy(busy.into()), leave);
    }

    /// Takes in everything the worker reported on `end`. Returns whether anything changed.
    /// When the worker ended before a result, the failure "The unlock stopped." is shown.
    pub fn pump(&mut self, end: &UiEnd, mut leave: impl FnMut(&mut Screen)) -> bool {
        let mut changed = false;
        loop {
            match end.next() {
                Ok(Some(report)) => {
                    self.take(end, report, &mut leave);
                    changed = true;
                }
                Ok(None) => return changed,
                Err(_) => {
                    if !self.worker_gone {
                        self.worker_gone = true;
                        if !matches!(self.screen, Screen::Unlocked | Screen::Failed(_)) {
                            self.show(
                                Screen::Failed(Problem {
                                    kind: ProblemKind::Cancelled,
                                    message: "The unlock stopped.".into(),
                                }),
                                &mut leave,
                            );
                            changed = true;
                        }
                    }
                    return changed;
                }
            }
        }
    }

    fn take(&mut self, end: &UiEnd, report: Report, leave: &mut impl FnMut(&mut Screen)) {
        match report {
            Report::Waiting(text) => {
                // Another card (or none): nothing said about the last one holds.
                self.card = None;
                self.user = None;
                self.attempts_left = None;
                self.warnings.clear();
                self.show(Screen::Waiting(text), leave);
            }
            Report::Busy(text) => self.show(Screen::Busy(text), leave),
            Report::Card(description) => {
                self.card = Some(description);
                let busy = "Card found. Contacting the unlock server...";
                self.show(Screen::Busy(busy.into()), leave);
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
            Report::Unlocking => self.show(Screen::Unlocking, leave),
            Report::Warning(w) => self.warnings.push(w),
            Report::Ask(Ask::Answers(questions)) if questions.len() > self.max_questions => {
                end.reply(Reply::Cancel);
                let message = format!(
                    "{} security questions are enrolled; this screen shows at most {}. Use \
                     the unlock window or call your help desk.",
                    questions.len(),
                    self.max_questions
                );
                let kind = ProblemKind::Usage;
                self.show(Screen::Failed(Problem { kind, message }), leave);
            }
            Report::Ask(Ask::Answers(questions)) => {
                let answers = questions.iter().map(|_| secret()).collect();
                self.show(Screen::Questions { questions, answers }, leave);
            }
            Report::Ask(Ask::NewPin(policy)) => {
                let refused = match &mut self.screen {
                    Screen::NewPin { refused, .. } => std::mem::take(refused),
                    _ => Vec::new(),
                };
                let (pin, confirm) = (secret(), secret());
                let screen = Screen::NewPin {
                    policy,
                    pin,
                    confirm,
                    refused,
                };
                self.show(screen, leave);
            }
            Report::Ask(Ask::Response(challenge)) => {
                let response = secret();
                self.show(
                    Screen::Challenge {
                        challenge,
                        response,
                    },
                    leave,
                );
            }
            Report::Unlocked => {
                // The card line read before the unlock ("PIN BLOCKED") is stale now.
                self.card = None;
                self.show(Screen::Unlocked, leave);
            }
            Report::Failed(problem) => self.show(Screen::Failed(problem), leave),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::channel;
    use super::*;

    /// A front end that shows at most two questions refuses three: the worker is told to stop
    /// (not left waiting for answers that cannot be typed) and the user reads why.
    #[test]
    fn too_many_questions_cancel_the_unlock() {
        let (ui, worker) = channel();
        let mut front = Front::new(Screen::Busy(String::new()), 2);
        let questions = vec!["a".to_string(), "b".into(), "c".into()];
        worker.report(Report::Ask(Ask::Answers(questions))).unwrap();
        assert!(front.pump(&ui, |_| {}));
        let Screen::Failed(problem) = front.screen() else {
            panic!("not refused: {}", front.screen().name());
        };
        assert_eq!(problem.kind, ProblemKind::Usage);
        assert!(problem.message.contains("at most 2"));
        assert!(matches!(worker.poll(), Ok(Some(Reply::Cancel))));
    }

    /// The attempts left stay until the card is read again (a retry or a new card), and every
    /// screen change shows `leave` the screen that goes, with what was typed in it.
    #[test]
    fn attempts_left_last_until_the_card_is_read_again() {
        let (ui, worker) = channel();
        let mut front = Front::new(Screen::Busy(String::new()), 4);
        worker
            .report(Report::Ask(Ask::Answers(vec!["q".into()])))
            .unwrap();
        front.pump(&ui, |_| {});
        if let Screen::Questions { answers, .. } = front.screen_mut() {
            answers[0].push_str("typed");
        }
        let mut left = Vec::new();
        let answers = match front.screen_mut() {
            Screen::Questions { answers, .. } => std::mem::take(answers),
            _ => panic!("no questions"),
        };
        front.reply(&ui, Reply::Answers(answers), |old| left.push(old.name()));
        assert_eq!(left, ["questions"]);
        assert!(matches!(worker.poll(), Ok(Some(Reply::Answers(a))) if *a[0] == "typed"));
        worker
            .report(Report::WrongAnswers { attempts_left: 2 })
            .unwrap();
        front.pump(&ui, |_| {});
        assert_eq!(front.attempts_left(), Some(2));
        assert_eq!(front.screen().name(), "busy", "no screen of its own");
        worker.report(Report::Warning("w".into())).unwrap();
        front.pump(&ui, |_| {});
        front.reply(&ui, Reply::Retry, |_| {});
        assert_eq!(front.attempts_left(), None);
        worker
            .report(Report::WrongAnswers { attempts_left: 1 })
            .unwrap();
        worker.report(Report::Waiting("Insert".into())).unwrap();
        front.pump(&ui, |_| {});
        assert_eq!(front.attempts_left(), None);
        assert!(front.warnings().is_empty(), "the last card's warnings go");
    }

    /// A worker that ends before a result leaves a failure on screen, never a spinner.
    #[test]
    fn a_worker_that_ends_early_shows_a_failure() {
        let (ui, worker) = channel();
        let mut front = Front::new(Screen::Busy(String::new()), 4);
        drop(worker);
        assert!(front.pump(&ui, |_| {}));
        assert!(front.worker_gone());
        assert!(matches!(front.screen(), Screen::Failed(p) if p.message == "The unlock stopped."));
        assert!(!front.pump(&ui, |_| {}), "said once");
    }
}
