//! What every field of the tile shows on the current form.

use super::fields::*;
use super::{Screen, Tile, ANSWER_QUESTIONS, ENTER_NEW_PIN, UNLOCKED};
use crate::link::{Challenge, Problem, ProblemKind};

/// The prompt and the explanation of a failure form.
pub fn explain(problem: &Problem, offline_offered: bool) -> (String, String) {
    match &problem.kind {
        ProblemKind::WrongAnswers { attempts_left } => (
            "The answers are not correct.".into(),
            format!(
                "{attempts_left} attempt{} left before online unlock is locked.",
                if *attempts_left == 1 { "" } else { "s" }
            ),
        ),
        ProblemKind::Locked => (
            "Online unlock is locked for this card.".into(),
            "Too many wrong answers. Your help desk can lift the lock or unlock the card offline."
                .into(),
        ),
        ProblemKind::NoQuestions if offline_offered => (
            "No security questions are set up for you.".into(),
            "Online unlock is not available. Unlock the card offline with your help desk: the \
             card shows a code, the help desk gives you the response."
                .into(),
        ),
        ProblemKind::NoQuestions => (
            "No security questions are set up for you.".into(),
            "Online unlock is not available and offline unlock is not offered on this \
             computer. Call your help desk."
                .into(),
        ),
        ProblemKind::ServerUnreachable => (
            "The unlock server cannot be reached.".into(),
            "Check the network connection and try again. Your card was not changed.".into(),
        ),
        ProblemKind::CardRemoved => (
            "The card was removed.".into(),
            "Insert the card again and keep it in the reader until the unlock is finished.".into(),
        ),
        ProblemKind::NoCard => (
            "No card found.".into(),
            "Insert your card into the reader, then try again.".into(),
        ),
        ProblemKind::Refused => (
            "The unlock was refused.".into(),
            "The card or the server refused the unlock. Contact your help desk.".into(),
        ),
        ProblemKind::Policy => (
            "The new PIN does not meet the PIN rules.".into(),
            "Your card was not changed.".into(),
        ),
        ProblemKind::Usage => ("The input was not valid.".into(), String::new()),
        ProblemKind::Cancelled => ("The unlock was cancelled.".into(), String::new()),
    }
}

/// "The answers are not correct. 2 attempts left."
pub fn attempts_left_line(n: u32) -> String {
    format!(
        "The answers are not correct. {n} {} left.",
        if n == 1 { "attempt" } else { "attempts" }
    )
}

/// `0123456789ABCDEF` as `0123 4567 89AB CDEF`, easier to read out.
pub fn group(hex: &str) -> String {
    let chars: Vec<char> = hex.chars().filter(|c| !c.is_whitespace()).collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Tile {
    /// Every field as the current form shows it.
    pub fn view(&self) -> View {
        let mut fields: Vec<FieldView> = FIELDS
            .iter()
            .map(|_| FieldView {
                shown: Shown::Hidden,
                focused: false,
                text: String::new(),
            })
            .collect();
        let mut set = |id: u32, text: String| {
            if let Some(f) = fields.get_mut(id as usize) {
                f.shown = Shown::Selected;
                f.text = text;
            }
        };
        let title = self
            .user
            .as_ref()
            .map_or(TILE_NAME.to_string(), |u| u.name.clone());
        set(TITLE, title);
        set(IMAGE, String::new());
        if let Some(u) = &self.user {
            set(SUBTITLE, u.email.clone());
        }
        // The card line read at the start heads the status text on every form.
        let mut status: Vec<String> = self.card.iter().cloned().collect();
        let mut inputs: Vec<u32> = Vec::new();
        let prompt = match &self.screen {
            Screen::Waiting(text) | Screen::Busy(text) => text.clone(),
            Screen::Questions { questions, .. } => {
                if let Some(n) = self.attempts_left {
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
        status.extend(self.warnings.iter().cloned());
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

#[cfg(test)]
mod tests {
    use super::group;

    #[test]
    fn challenge_is_grouped_by_four() {
        assert_eq!(group("0123456789ABCDEF"), "0123 4567 89AB CDEF");
        assert_eq!(group("01 23"), "0123");
    }
}
