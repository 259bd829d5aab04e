//! The window: one screen at a time, driven by the worker's [`Report`]s.
//!
//! Keyboard only works throughout, as on a login screen: the first field of each screen takes
//! the focus, Tab moves between fields and buttons, Enter submits the screen (when what it holds
//! is complete) or presses its main button.

use eframe::egui::{self, Color32, Key, RichText};
use zeroize::Zeroizing;

mod screens;

use screens::{
    challenge_screen, failed_screen, new_pin_screen, questions_screen, unlocked_screen, waiting,
    Input, Outcome,
};

use crate::link::{
    Ask, Challenge, PinPolicy, Problem, ProblemKind, Reply, Report, User, WindowEnd,
};

/// The success line, the same as the CLI's.
pub const UNLOCKED: &str = "The smart card has been unlocked successfully.";
/// The PIN screen's prompt.
pub const ENTER_NEW_PIN: &str = "Enter new PIN to unlock the smart card.";
/// The arrow that submits answers, PINs and responses.
pub const ARROW: &str = "→";
/// Room kept in each secret field, so typing never moves the text (a `String` that grows leaves
/// its old buffer behind unzeroized).
const SECRET_CAPACITY: usize = 128;

fn secret() -> Zeroizing<String> {
    Zeroizing::new(String::with_capacity(SECRET_CAPACITY))
}

/// The screen on show.
pub enum Screen {
    /// Waiting for the card.
    Waiting(String),
    /// Work that needs no input.
    Busy(String),
    /// The security questions; answers hidden as typed.
    Questions {
        /// The questions.
        questions: Vec<String>,
        /// One answer per question.
        answers: Vec<Zeroizing<String>>,
        /// Set after wrong answers.
        attempts_left: Option<u32>,
    },
    /// New PIN and confirmation.
    NewPin {
        /// The server's (or profile's) policy.
        policy: PinPolicy,
        /// New PIN as typed.
        pin: Zeroizing<String>,
        /// Confirmation as typed.
        confirm: Zeroizing<String>,
        /// What the unlock refused last time, if it did.
        refused: Vec<String>,
    },
    /// Offline unlock: the challenge to read out, the operator's response to type.
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

/// The unlock window's state.
pub struct UnlockApp {
    link: WindowEnd,
    screen: Screen,
    card: Option<String>,
    user: Option<User>,
    warnings: Vec<String>,
    /// The screen changed since the last frame: focus its first field.
    fresh: bool,
    /// The worker ended (after success, cancel, or a fatal error).
    worker_gone: bool,
    /// The user closed the window through its own buttons.
    closed: bool,
}

impl UnlockApp {
    /// A window talking to the worker at the other end of `link`.
    pub fn new(link: WindowEnd) -> Self {
        Self {
            link,
            screen: Screen::Waiting("Looking for the card...".into()),
            card: None,
            user: None,
            warnings: Vec::new(),
            fresh: true,
            worker_gone: false,
            closed: false,
        }
    }

    /// The screen on show.
    pub fn screen(&self) -> &Screen {
        &self.screen
    }

    /// Whether the user closed the window (OK after success, Close after a failure).
    pub fn closed(&self) -> bool {
        self.closed
    }

    fn show(&mut self, screen: Screen) {
        self.screen = screen;
        self.fresh = true;
    }

    /// Takes in what the worker reported.
    fn drain(&mut self) {
        loop {
            match self.link.next() {
                Ok(Some(report)) => self.take(report),
                Ok(None) => break,
                Err(_) => {
                    if !self.worker_gone {
                        self.worker_gone = true;
                        if !matches!(self.screen, Screen::Unlocked | Screen::Failed(_)) {
                            self.show(Screen::Failed(Problem {
                                kind: ProblemKind::Cancelled,
                                message: "The unlock stopped.".into(),
                            }));
                        }
                    }
                    break;
                }
            }
        }
    }

    fn take(&mut self, report: Report) {
        match report {
            Report::Waiting(text) => {
                self.card = None;
                self.user = None;
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
            Report::WrongAnswers { attempts_left } => {
                // The questions come again right after; remember why.
                self.show(Screen::Questions {
                    questions: Vec::new(),
                    answers: Vec::new(),
                    attempts_left: Some(attempts_left),
                });
            }
            Report::PinRefused(violations) => {
                if let Screen::NewPin { refused, .. } = &mut self.screen {
                    *refused = violations;
                } else {
                    self.warnings.extend(violations);
                }
            }
            Report::Unlocking => self.show(Screen::Unlocking),
            Report::Warning(w) => self.warnings.push(w),
            Report::Ask(Ask::Answers(questions)) => {
                let attempts_left = match &self.screen {
                    Screen::Questions { attempts_left, .. } => *attempts_left,
                    _ => None,
                };
                let answers = questions.iter().map(|_| secret()).collect();
                self.show(Screen::Questions {
                    questions,
                    answers,
                    attempts_left,
                });
            }
            Report::Ask(Ask::NewPin(policy)) => {
                let refused = match &self.screen {
                    Screen::NewPin { refused, .. } => refused.clone(),
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

    /// Draws one frame (eframe's `App::ui` and the test harness both call this).
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        self.link
            .set_wake(|| std::sync::Arc::new(move || ctx.request_repaint()));
        self.drain();
        let enter = ui.input(|i| i.key_pressed(Key::Enter));
        let fresh = std::mem::take(&mut self.fresh);
        ui.vertical_centered(|ui| {
            ui.add_space(12.0);
            ui.heading("Smart card unlock");
            ui.add_space(8.0);
            self.header(ui);
            ui.separator();
            ui.add_space(8.0);
            self.body(ui, enter, fresh);
            if !self.warnings.is_empty() {
                ui.add_space(8.0);
                for w in &self.warnings {
                    ui.label(RichText::new(w).color(Color32::from_rgb(230, 180, 60)));
                }
            }
        });
        if matches!(
            self.screen,
            Screen::Waiting(_) | Screen::Busy(_) | Screen::Unlocking
        ) {
            // Animate the spinner; reports also wake the window.
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(100));
        }
    }

    /// The picture placeholder, the user's name and e-mail once known, the card line.
    fn header(&self, ui: &mut egui::Ui) {
        let (rect, _) = ui.allocate_exact_size(egui::vec2(72.0, 72.0), egui::Sense::hover());
        let painter = ui.painter();
        let fg = ui.visuals().weak_text_color();
        painter.rect_stroke(
            rect,
            6.0,
            egui::Stroke::new(1.5, fg),
            egui::StrokeKind::Inside,
        );
        painter.circle_filled(rect.center() - egui::vec2(0.0, 12.0), 13.0, fg);
        let body = egui::Rect::from_center_size(
            rect.center() + egui::vec2(0.0, 22.0),
            egui::vec2(44.0, 24.0),
        );
        painter.rect_filled(body, 12.0, fg);
        if let Some(user) = &self.user {
            ui.label(RichText::new(&user.name).strong().size(18.0));
            ui.label(&user.email);
        }
        if let Some(card) = &self.card {
            ui.label(RichText::new(card).small().weak());
        }
    }

    /// The screen's own part of the window; what the user submitted goes to the worker.
    fn body(&mut self, ui: &mut egui::Ui, enter: bool, fresh: bool) {
        let input = Input { enter, fresh };
        let outcome = match &mut self.screen {
            Screen::Waiting(text) => waiting(ui, text, 18.0),
            Screen::Busy(text) => waiting(ui, text, 14.0),
            Screen::Questions {
                questions,
                answers,
                attempts_left,
            } => questions_screen(ui, input, questions, answers, *attempts_left),
            Screen::NewPin {
                policy,
                pin,
                confirm,
                refused,
            } => new_pin_screen(ui, input, policy, pin, confirm, refused),
            Screen::Challenge {
                challenge,
                response,
            } => challenge_screen(ui, input, challenge, response),
            Screen::Unlocking => waiting(
                ui,
                "Unlocking the smart card. Keep it in the reader...",
                14.0,
            ),
            Screen::Unlocked => unlocked_screen(ui, input),
            Screen::Failed(problem) => failed_screen(ui, input, problem),
        };
        match outcome {
            Outcome::Stay => {}
            Outcome::Close => {
                if matches!(self.screen, Screen::Failed(_)) {
                    self.link.reply(Reply::Cancel);
                }
                self.closed = true;
                ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
            }
            Outcome::Reply(reply) => {
                let next = match &reply {
                    Reply::Answers(_) => Screen::Busy("Checking your answers...".into()),
                    Reply::NewPin(..) => Screen::Busy("Checking the new PIN...".into()),
                    Reply::Response(_) => Screen::Busy("Checking the response...".into()),
                    Reply::Retry | Reply::Offline => Screen::Busy("Reading the card...".into()),
                    Reply::Cancel => Screen::Busy("Cancelling...".into()),
                };
                self.link.reply(reply);
                self.show(next);
            }
        }
    }
}
