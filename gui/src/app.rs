//! The window: one screen at a time, driven by the worker's [`Report`](crate::link::Report)s.
//!
//! Keyboard only works throughout, as on a login screen: the first field of each screen takes
//! the focus, Tab moves between fields and buttons, Enter submits the screen (when what it holds
//! is complete) or presses its main button.

use eframe::egui::{self, Color32, Key, RichText};

mod screens;

use screens::{
    challenge_screen, failed_screen, new_pin_screen, questions_screen, unlocked_screen, waiting,
    Input, Outcome,
};

use crate::link::{Front, Reply, WindowEnd};
pub use crate::link::{Screen, ENTER_NEW_PIN, UNLOCKED};

/// The arrow that submits answers, PINs and responses.
pub const ARROW: &str = "→";

/// The unlock window's state.
pub struct UnlockApp {
    link: WindowEnd,
    /// The screen on show and what the worker said, as the tile keeps it.
    front: Front,
    /// The screen changed since the last frame: focus its first field.
    fresh: bool,
    /// The user closed the window through its own buttons.
    closed: bool,
}

impl UnlockApp {
    /// A window talking to the worker at the other end of `link`.
    pub fn new(link: WindowEnd) -> Self {
        Self {
            link,
            front: Front::new(
                Screen::Waiting("Looking for the card...".into()),
                usize::MAX,
            ),
            fresh: true,
            closed: false,
        }
    }

    /// The screen on show.
    pub fn screen(&self) -> &Screen {
        self.front.screen()
    }

    /// Whether the user closed the window (OK after success, Close after a failure).
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// Takes in what the worker reported.
    fn drain(&mut self) {
        let fresh = &mut self.fresh;
        self.front.pump(&self.link, |_| *fresh = true);
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
            if !self.front.warnings().is_empty() {
                ui.add_space(8.0);
                for w in self.front.warnings() {
                    ui.label(RichText::new(w).color(Color32::from_rgb(230, 180, 60)));
                }
            }
        });
        if matches!(
            self.front.screen(),
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
        if let Some(user) = self.front.user() {
            ui.label(RichText::new(&user.name).strong().size(18.0));
            ui.label(&user.email);
        }
        if let Some(card) = self.front.card() {
            ui.label(RichText::new(card).small().weak());
        }
    }

    /// The screen's own part of the window; what the user submitted goes to the worker.
    fn body(&mut self, ui: &mut egui::Ui, enter: bool, fresh: bool) {
        let input = Input { enter, fresh };
        let attempts_left = self.front.attempts_left();
        let outcome = match self.front.screen_mut() {
            Screen::Waiting(text) => waiting(ui, text, 18.0),
            Screen::Busy(text) => waiting(ui, text, 14.0),
            Screen::Questions { questions, answers } => {
                questions_screen(ui, input, questions, answers, attempts_left)
            }
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
                if matches!(self.front.screen(), Screen::Failed(_)) {
                    self.link.reply(Reply::Cancel);
                }
                self.closed = true;
                ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
            }
            Outcome::Reply(reply) => {
                let fresh = &mut self.fresh;
                self.front.reply(&self.link, reply, |_| *fresh = true);
            }
        }
    }
}
