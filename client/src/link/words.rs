//! The sentences both front ends show, written once: the prompts, the success line, what each
//! failure means and what can be done about it.

use super::{Problem, ProblemKind};

/// The success line, the same as the CLI's.
pub const UNLOCKED: &str = "The smart card has been unlocked successfully.";
/// The PIN screen's prompt.
pub const ENTER_NEW_PIN: &str = "Enter new PIN to unlock the smart card.";
/// The questions screen's prompt.
pub const ANSWER_QUESTIONS: &str = "Answer your security questions.";

/// The title and the explanation of a failure screen. `offline_offered`: whether this computer
/// offers offline unlock (after [`ProblemKind::NoQuestions`]).
pub fn explain(problem: &Problem, offline_offered: bool) -> (String, String) {
    let (title, detail): (&str, String) = match &problem.kind {
        ProblemKind::WrongAnswers { attempts_left } => (
            "The answers are not correct.",
            format!(
                "{attempts_left} attempt{} left before online unlock is locked.",
                if *attempts_left == 1 { "" } else { "s" }
            ),
        ),
        ProblemKind::Locked => (
            "Online unlock is locked for this card.",
            "Too many wrong answers. Your help desk can lift the lock or unlock the card offline."
                .into(),
        ),
        ProblemKind::NoQuestions if offline_offered => (
            "No security questions are set up for you.",
            "Online unlock is not available. Unlock the card offline with your help desk: the \
             card shows a code, the help desk gives you the response."
                .into(),
        ),
        ProblemKind::NoQuestions => (
            "No security questions are set up for you.",
            "Online unlock is not available and offline unlock is not offered on this \
             computer. Call your help desk."
                .into(),
        ),
        ProblemKind::ServerUnreachable => (
            "The unlock server cannot be reached.",
            "Check the network connection and try again. Your card was not changed.".into(),
        ),
        ProblemKind::CardRemoved => (
            "The card was removed.",
            "Insert the card again and keep it in the reader until the unlock is finished.".into(),
        ),
        ProblemKind::NoCard => (
            "No card found.",
            "Insert your card into the reader, then try again.".into(),
        ),
        ProblemKind::Refused => (
            "The unlock was refused.",
            "The card or the server refused the unlock. Contact your help desk.".into(),
        ),
        ProblemKind::Policy => (
            "The new PIN does not meet the PIN rules.",
            "Your card was not changed.".into(),
        ),
        ProblemKind::Usage => ("The input was not valid.", String::new()),
        ProblemKind::Cancelled => ("The unlock was cancelled.", String::new()),
    };
    (title.into(), detail)
}

/// What can be done after `problem`: (try again, unlock offline).
pub fn next_steps(problem: &Problem, offline_offered: bool) -> (bool, bool) {
    match problem.kind {
        ProblemKind::Locked => (false, false),
        ProblemKind::NoQuestions => (false, offline_offered),
        _ => (true, false),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_is_grouped_by_four() {
        assert_eq!(group("0123456789ABCDEF"), "0123 4567 89AB CDEF");
        assert_eq!(group("ABCDE"), "ABCD E");
        assert_eq!(group("0123 4567"), "0123 4567");
        assert_eq!(group("01 23"), "0123");
    }

    #[test]
    fn one_attempt_is_singular() {
        assert_eq!(
            attempts_left_line(1),
            "The answers are not correct. 1 attempt left."
        );
        assert_eq!(
            attempts_left_line(2),
            "The answers are not correct. 2 attempts left."
        );
        let one = Problem {
            kind: ProblemKind::WrongAnswers { attempts_left: 1 },
            message: String::new(),
        };
        assert_eq!(
            explain(&one, true).1,
            "1 attempt left before online unlock is locked."
        );
    }

    #[test]
    fn offline_is_offered_only_after_no_questions_and_only_where_allowed() {
        let problem = |kind| Problem {
            kind,
            message: String::new(),
        };
        assert_eq!(
            next_steps(&problem(ProblemKind::NoQuestions), true),
            (false, true)
        );
        assert_eq!(
            next_steps(&problem(ProblemKind::NoQuestions), false),
            (false, false)
        );
        assert_eq!(
            next_steps(&problem(ProblemKind::Locked), true),
            (false, false)
        );
        assert_eq!(
            next_steps(&problem(ProblemKind::CardRemoved), true),
            (true, false)
        );
        assert!(explain(&problem(ProblemKind::NoQuestions), false)
            .1
            .contains("not offered"));
    }
}
