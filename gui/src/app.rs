//! The window: one screen at a time, driven by the worker's [`Report`]s.
//!
//! Keyboard only works throughout, as on a login screen: the first field of each screen takes
//! the focus, Tab moves between fields and buttons, Enter submits the screen (when what it holds
//! is complete) or presses its main button.

use eframe::egui::{self, Color32, Key, RichText};
use zeroize::Zeroizing;

use crate::link::{
    Ask, Challenge, OwnedPolicy, Problem, ProblemKind, Reply, Report, User, WindowEnd,
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
        policy: OwnedPolicy,
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
        self.link.set_context(ui.ctx());
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

/// What a frame's keyboard did that the screens care about.
#[derive(Clone, Copy)]
struct Input {
    /// Enter was pressed this frame.
    enter: bool,
    /// The screen is new: focus its first field.
    fresh: bool,
}

/// What the user did on a screen this frame.
enum Outcome {
    /// Nothing that changes the screen.
    Stay,
    /// Submitted something: it goes to the worker.
    Reply(Reply),
    /// Closed the window (OK after success, Close after a failure).
    Close,
}

/// The waiting, busy and unlocking screens: a line and a spinner.
fn waiting(ui: &mut egui::Ui, text: &str, size: f32) -> Outcome {
    ui.label(RichText::new(text).size(size));
    ui.add_space(8.0);
    ui.spinner();
    Outcome::Stay
}

/// The security questions, with the attempts left after wrong answers.
fn questions_screen(
    ui: &mut egui::Ui,
    input: Input,
    questions: &[String],
    answers: &mut Vec<Zeroizing<String>>,
    attempts_left: Option<u32>,
) -> Outcome {
    if let Some(n) = attempts_left {
        ui.label(
            RichText::new(format!(
                "The answers are not correct. {n} {} left.",
                if n == 1 { "attempt" } else { "attempts" }
            ))
            .color(RED),
        );
        ui.add_space(6.0);
    }
    if questions.is_empty() {
        ui.spinner();
        return Outcome::Stay;
    }
    ui.label("Answer your security questions.");
    ui.add_space(6.0);
    for (i, (q, a)) in questions.iter().zip(answers.iter_mut()).enumerate() {
        let label = ui.label(q.as_str());
        let field = secret_field(ui, a, ("answer", i), 260.0, true).labelled_by(label.id);
        if input.fresh && i == 0 {
            field.request_focus();
        }
        ui.add_space(4.0);
    }
    let complete = answers.iter().all(|a| !a.trim().is_empty());
    let arrow = ui.add_enabled(complete, arrow_button());
    if complete && (arrow.clicked() || input.enter) {
        return Outcome::Reply(Reply::Answers(std::mem::take(answers)));
    }
    Outcome::Stay
}

/// New PIN and its confirmation, the PIN rules, and what breaks them as the user types.
fn new_pin_screen(
    ui: &mut egui::Ui,
    input: Input,
    policy: &OwnedPolicy,
    pin: &mut Zeroizing<String>,
    confirm: &mut Zeroizing<String>,
    refused: &mut Vec<String>,
) -> Outcome {
    ui.label(RichText::new(ENTER_NEW_PIN).size(16.0));
    ui.label(RichText::new(format!("PIN rules: {}.", policy.describe())).weak());
    ui.add_space(6.0);
    let label = ui.label("New PIN");
    let field = secret_field(ui, pin, "new-pin", 200.0, true).labelled_by(label.id);
    if input.fresh {
        field.request_focus();
    }
    let label = ui.label("Confirm new PIN");
    secret_field(ui, confirm, "confirm-pin", 200.0, true).labelled_by(label.id);
    let mut violations = if pin.is_empty() {
        Vec::new()
    } else {
        policy.violations(pin, confirm)
    };
    if confirm.is_empty() {
        // Not a mistake yet: the confirmation is still to be typed.
        let mismatch = cardunlock_core::policy::Violation::ConfirmationMismatch.to_string();
        violations.retain(|v| *v != mismatch);
    }
    for v in refused.iter().chain(violations.iter()) {
        ui.label(RichText::new(format!("• {v}")).color(RED));
    }
    let ok = !pin.is_empty() && !confirm.is_empty() && violations.is_empty();
    ui.add_space(6.0);
    let arrow = ui.add_enabled(ok, arrow_button());
    if ok && (arrow.clicked() || input.enter) {
        refused.clear();
        return Outcome::Reply(Reply::NewPin(
            std::mem::replace(pin, secret()),
            std::mem::replace(confirm, secret()),
        ));
    }
    Outcome::Stay
}

/// Offline unlock: the challenge grouped for reading aloud (or the PUK prompt) and the field for
/// what the help desk says.
fn challenge_screen(
    ui: &mut egui::Ui,
    input: Input,
    challenge: &Challenge,
    response: &mut Zeroizing<String>,
) -> Outcome {
    let label = match challenge {
        Challenge::Admin {
            challenge_hex,
            algorithm,
        } => {
            ui.label("Offline unlock: call your help desk and read them this code.");
            ui.add_space(6.0);
            ui.label(
                RichText::new(group(challenge_hex))
                    .monospace()
                    .size(22.0)
                    .strong(),
            );
            ui.label(RichText::new(format!("({algorithm} challenge)")).weak());
            ui.add_space(6.0);
            ui.label("Response from your help desk")
        }
        Challenge::Puk => {
            ui.label("Offline unlock: your help desk reads you the PUK of this card.");
            ui.add_space(6.0);
            ui.label("PUK")
        }
    };
    let puk = matches!(challenge, Challenge::Puk);
    let field = secret_field(ui, response, "response", 260.0, puk).labelled_by(label.id);
    if input.fresh {
        field.request_focus();
    }
    let ok = !response.trim().is_empty();
    let arrow = ui.add_enabled(ok, arrow_button());
    if ok && (arrow.clicked() || input.enter) {
        return Outcome::Reply(Reply::Response(std::mem::replace(response, secret())));
    }
    Outcome::Stay
}

/// The success line and OK, which closes the window.
fn unlocked_screen(ui: &mut egui::Ui, input: Input) -> Outcome {
    ui.label(RichText::new(UNLOCKED).size(18.0).strong());
    ui.add_space(10.0);
    let ok = ui.button("OK");
    if input.fresh {
        ok.request_focus();
    }
    if ok.clicked() || input.enter {
        return Outcome::Close;
    }
    Outcome::Stay
}

/// A failure: what happened, what to do, the main way on (retry, offline) and Close.
fn failed_screen(ui: &mut egui::Ui, input: Input, problem: &Problem) -> Outcome {
    let (title, text, main) = explain(problem);
    ui.label(RichText::new(title).size(18.0).strong().color(RED));
    ui.add_space(4.0);
    ui.label(text);
    // The client's own words, where they add to the screen's (what failed, where).
    let detail = !matches!(
        problem.kind,
        ProblemKind::NoQuestions | ProblemKind::Locked | ProblemKind::WrongAnswers { .. }
    );
    if detail && !problem.message.is_empty() {
        ui.add_space(4.0);
        ui.label(RichText::new(problem.message.as_str()).small().weak());
    }
    ui.add_space(10.0);
    let mut chosen = None;
    if let Some((label, action)) = main {
        let b = ui.button(label);
        if input.fresh {
            b.request_focus();
        }
        if b.clicked() {
            chosen = Some(action);
        }
        ui.add_space(4.0);
    }
    let close = ui.button("Close");
    if input.fresh && main.is_none() {
        close.request_focus();
    }
    if close.clicked() {
        chosen = Some(Action::Close);
    }
    if chosen.is_none() && input.enter {
        chosen = Some(main.map_or(Action::Close, |(_, a)| a));
    }
    match chosen {
        Some(Action::Retry) => Outcome::Reply(Reply::Retry),
        Some(Action::Offline) => Outcome::Reply(Reply::Offline),
        Some(Action::Close) => Outcome::Close,
        None => Outcome::Stay,
    }
}

/// The colour of mistakes and failures.
const RED: Color32 = Color32::from_rgb(240, 90, 90);

/// A one-line field for a secret: hidden as typed (`hidden`), Enter left to the screen, and
/// egui's undo history of it (copies of the text) dropped every frame.
fn secret_field(
    ui: &mut egui::Ui,
    text: &mut Zeroizing<String>,
    salt: impl std::hash::Hash + std::fmt::Debug,
    width: f32,
    hidden: bool,
) -> egui::Response {
    let response = ui.add(
        egui::TextEdit::singleline(&mut **text)
            .password(hidden)
            .return_key(None)
            .id_salt(salt)
            .desired_width(width),
    );
    let ctx = ui.ctx();
    if let Some(mut state) = egui::text_edit::TextEditState::load(ctx, response.id) {
        state.clear_undoer();
        state.store(ctx, response.id);
    }
    response
}

/// The arrow button (drawn with the monospace font: the proportional one has no arrows).
fn arrow_button() -> egui::Button<'static> {
    egui::Button::new(RichText::new(ARROW).monospace().size(20.0)).min_size(egui::vec2(56.0, 30.0))
}

/// What a failure screen's main button does.
#[derive(Clone, Copy)]
enum Action {
    Retry,
    Offline,
    Close,
}

/// Title, explanation and main button of a failure screen.
fn explain(problem: &Problem) -> (String, String, Option<(&'static str, Action)>) {
    let retry = Some(("Try again", Action::Retry));
    match &problem.kind {
        ProblemKind::WrongAnswers { attempts_left } => (
            "The answers are not correct.".into(),
            format!("{attempts_left} attempts left before online unlock is locked."),
            retry,
        ),
        ProblemKind::Locked => (
            "Online unlock is locked for this card.".into(),
            "Too many wrong answers. Your help desk can lift the lock or unlock the card offline."
                .into(),
            None,
        ),
        ProblemKind::NoQuestions => (
            "No security questions are set up for you.".into(),
            "Online unlock is not available. Unlock the card offline with your help desk: the \
             card shows a code, the help desk gives you the response."
                .into(),
            Some(("Unlock offline", Action::Offline)),
        ),
        ProblemKind::ServerUnreachable => (
            "The unlock server cannot be reached.".into(),
            "Check the network connection and try again. Your card was not changed.".into(),
            retry,
        ),
        ProblemKind::CardRemoved => (
            "The card was removed.".into(),
            "Insert the card again and keep it in the reader until the unlock is finished.".into(),
            retry,
        ),
        ProblemKind::NoCard => (
            "No card found.".into(),
            "Insert your card into the reader, then try again.".into(),
            retry,
        ),
        ProblemKind::Refused => (
            "The unlock was refused.".into(),
            "The card or the server refused the unlock. Contact your help desk.".into(),
            retry,
        ),
        ProblemKind::Policy => (
            "The new PIN does not meet the PIN rules.".into(),
            "Your card was not changed.".into(),
            retry,
        ),
        ProblemKind::Usage => ("The input was not valid.".into(), String::new(), retry),
        ProblemKind::Cancelled => ("The unlock was cancelled.".into(), String::new(), retry),
    }
}

/// `0123456789ABCDEF` as `0123 4567 89AB CDEF`, easier to read out.
fn group(hex: &str) -> String {
    let chars: Vec<char> = hex.chars().filter(|c| !c.is_whitespace()).collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::group;

    #[test]
    fn challenge_is_grouped_by_four() {
        assert_eq!(group("0123456789ABCDEF"), "0123 4567 89AB CDEF");
        assert_eq!(group("ABCDE"), "ABCD E");
        assert_eq!(group("0123 4567"), "0123 4567");
    }
}
