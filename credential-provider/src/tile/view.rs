//! What every field of the tile shows on the current form.

use super::fields::*;
use super::{Screen, Tile, ANSWER_QUESTIONS, ENTER_NEW_PIN, UNLOCKED};
use crate::link::{attempts_left_line, explain, group, Challenge};

impl Tile {
    /// Every field as the current form shows it.
    pub fn view(&self) -> View {
        let mut fields = FieldView::all_hidden();
        let mut set = |id: u32, text: String| {
            if let Some(f) = fields.get_mut(id as usize) {
                f.shown = Shown::Selected;
                f.text = text;
            }
        };
        let title = self
            .front
            .user()
            .map_or(TILE_NAME.to_string(), |u| u.name.clone());
        set(TITLE, title);
        set(IMAGE, String::new());
        if let Some(u) = self.front.user() {
            set(SUBTITLE, u.email.clone());
        }
        // The card line read at the start heads the status text on every form.
        let mut status: Vec<String> = self.front.card().map(String::from).into_iter().collect();
        let mut inputs: Vec<u32> = Vec::new();
        let prompt = match self.front.screen() {
            Screen::Waiting(text) | Screen::Busy(text) => text.clone(),
            Screen::Questions { questions, .. } => {
                if let Some(n) = self.front.attempts_left() {
                    status.push(attempts_left_line(n));
                }
                for (i, q) in questions.iter().enumerate().take(MAX_QUESTIONS) {
                    set(QUESTIONS[i], q.clone());
                    set(ANSWERS[i], String::new());
                    inputs.push(ANSWERS[i]);
                }
                ANSWER_QUESTIONS.into()
            }
            Screen::NewPin {
                policy,
                pin,
                confirm,
                refused,
            } => {
                set(NEW_PIN, String::new());
                set(CONFIRM_PIN, String::new());
                inputs.extend([NEW_PIN, CONFIRM_PIN]);
                status.push(format!("PIN rules: {}.", policy.describe()));
                // Every violation, as typed (as the window shows them), then what was refused.
                let mut lines = if pin.is_empty() {
                    Vec::new()
                } else {
                    policy.violations(pin, confirm)
                };
                for r in refused {
                    if !lines.contains(r) {
                        lines.push(r.clone());
                    }
                }
                status.extend(lines.into_iter().map(|v| format!("\u{2022} {v}")));
                ENTER_NEW_PIN.into()
            }
            Screen::Challenge { challenge, .. } => {
                set(RESPONSE, String::new());
                inputs.push(RESPONSE);
                match challenge {
                    Challenge::Admin {
                        challenge_hex,
                        algorithm,
                    } => {
                        set(CHALLENGE, format!("{} ({algorithm})", group(challenge_hex)));
                        "Offline unlock: call your help desk and read them this code.".into()
                    }
                    Challenge::Puk => {
                        "Offline unlock: your help desk reads you the PUK of this card.".into()
                    }
                }
            }
            Screen::Unlocking => "Unlocking the smart card. Keep it in the reader...".into(),
            Screen::Unlocked => UNLOCKED.into(),
            Screen::Failed(problem) => {
                let (title, detail) = explain(problem, self.offline_offered);
                status.extend([detail, problem.message.clone()]);
                title
            }
        };
        set(PROMPT, prompt);
        status.extend(self.note.clone());
        status.extend(self.front.warnings().iter().cloned());
        status.retain(|s| !s.is_empty());
        if !status.is_empty() {
            set(STATUS, status.join("\n"));
        }
        let (retry, offline) = self.links();
        if retry {
            set(RETRY, FIELDS[RETRY as usize].label.into());
        }
        if offline {
            set(OFFLINE, FIELDS[OFFLINE as usize].label.into());
        }
        let submit_beside = inputs.last().copied();
        if submit_beside.is_some() {
            set(SUBMIT, String::new());
        }
        for id in [IMAGE, TITLE] {
            if let Some(f) = fields.get_mut(id as usize) {
                f.shown = Shown::Both;
            }
        }
        if let Some(f) = inputs.first().and_then(|&id| fields.get_mut(id as usize)) {
            f.focused = true;
        }
        View {
            fields,
            submit_beside: submit_beside.unwrap_or(CONFIRM_PIN),
        }
    }
}
