//! The screens of the window, one function each: each draws its part and returns what the user
//! did ([`Outcome`]); [`super::UnlockApp`] sends it to the worker.

use eframe::egui::{self, Color32, RichText};
use zeroize::Zeroizing;

use super::ARROW;
use crate::link::{
    attempts_left_line, explain, group, next_steps, secret, Challenge, PinPolicy, Problem,
    ProblemKind, Reply, ANSWER_QUESTIONS, ENTER_NEW_PIN, UNLOCKED,
};

/// What a frame's keyboard did that the screens care about.
#[derive(Clone, Copy)]
pub(super) struct Input {
    /// Enter was pressed this frame.
    pub(super) enter: bool,
    /// The screen is new: focus its first field.
    pub(super) fresh: bool,
}

/// What the user did on a screen this frame.
pub(super) enum Outcome {
    /// Nothing that changes the screen.
    Stay,
    /// Submitted something: it goes to the worker.
    Reply(Reply),
    /// Closed the window (OK after success, Close after a failure).
    Close,
}

/// The waiting, busy and unlocking screens: a line and a spinner.
pub(super) fn waiting(ui: &mut egui::Ui, text: &str, size: f32) -> Outcome {
    ui.label(RichText::new(text).size(size));
    ui.add_space(8.0);
    ui.spinner();
    Outcome::Stay
}

/// The security questions, with the attempts left after wrong answers.
pub(super) fn questions_screen(
    ui: &mut egui::Ui,
    input: Input,
    questions: &[String],
    answers: &mut Vec<Zeroizing<String>>,
    attempts_left: Option<u32>,
) -> Outcome {
    if let Some(n) = attempts_left {
        ui.label(RichText::new(attempts_left_line(n)).color(RED));
        ui.add_space(6.0);
    }
    if questions.is_empty() {
        ui.spinner();
        return Outcome::Stay;
    }
    ui.label(ANSWER_QUESTIONS);
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
pub(super) fn new_pin_screen(
    ui: &mut egui::Ui,
    input: Input,
    policy: &PinPolicy,
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
pub(super) fn challenge_screen(
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
pub(super) fn unlocked_screen(ui: &mut egui::Ui, input: Input) -> Outcome {
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
pub(super) fn failed_screen(ui: &mut egui::Ui, input: Input, problem: &Problem) -> Outcome {
    // The window always offers offline unlock after "no questions".
    let (title, text) = explain(problem, true);
    let main = match next_steps(problem, true) {
        (true, _) => Some(("Try again", Action::Retry)),
        (false, true) => Some(("Unlock offline", Action::Offline)),
        (false, false) => None,
    };
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
