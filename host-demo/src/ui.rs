//! How online unlock talks to the person in front of the card: a terminal, or a script.

use std::io::{BufRead, IsTerminal, Write};

use zeroize::Zeroizing;

use crate::online::Ui;
use crate::{exit, Failure};

/// A person at a terminal: questions answered on visible lines, PINs typed hidden.
pub struct Terminal;

impl Ui for Terminal {
    fn say(&mut self, line: &str) {
        println!("{line}");
    }

    fn answers(&mut self, questions: &[String]) -> Result<Vec<Zeroizing<String>>, Failure> {
        let stdin = std::io::stdin();
        let mut out = Vec::with_capacity(questions.len());
        for q in questions {
            print!("{q}\n> ");
            std::io::stdout().flush().ok();
            let mut line = Zeroizing::new(String::new());
            let n = stdin
                .lock()
                .read_line(&mut line)
                .map_err(|e| Failure::new(exit::USAGE, format!("cannot read the answer: {e}")))?;
            if n == 0 {
                return Err(Failure::new(exit::USAGE, "no answer given (end of input)"));
            }
            out.push(Zeroizing::new(
                line.trim_end_matches(['\r', '\n']).to_string(),
            ));
        }
        Ok(out)
    }

    fn can_retry(&self) -> bool {
        true
    }

    fn new_pin(&mut self) -> Result<(Zeroizing<String>, Zeroizing<String>), Failure> {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::new(
                exit::USAGE,
                "the new PIN is read from a terminal; pass --new-pin in scripts",
            ));
        }
        let read = |label: &str| {
            rpassword::prompt_password(format!("{label}: "))
                .map(Zeroizing::new)
                .map_err(|e| Failure::new(exit::USAGE, format!("cannot read {label}: {e}")))
        };
        Ok((read("New PIN")?, read("Confirm new PIN")?))
    }
}

/// A script: answers and PIN given up front; shown as a person would see them, PIN masked.
pub struct Scripted {
    pub answers: Vec<String>,
    pub new_pin: String,
    /// Show the answers as typed (the demo) instead of masked (scripts: answers are secrets).
    pub show_answers: bool,
}

impl Ui for Scripted {
    fn say(&mut self, line: &str) {
        println!("{line}");
    }

    fn answers(&mut self, questions: &[String]) -> Result<Vec<Zeroizing<String>>, Failure> {
        if self.answers.len() != questions.len() {
            return Err(Failure::new(
                exit::USAGE,
                format!(
                    "{} security questions, {} answers given (--answer)",
                    questions.len(),
                    self.answers.len()
                ),
            ));
        }
        for (q, a) in questions.iter().zip(&self.answers) {
            if self.show_answers {
                println!("{q}\n> {a}");
            } else {
                println!("{q}\n> {}", "*".repeat(a.chars().count()));
            }
        }
        Ok(self
            .answers
            .iter()
            .map(|a| Zeroizing::new(a.clone()))
            .collect())
    }

    fn can_retry(&self) -> bool {
        false
    }

    fn new_pin(&mut self) -> Result<(Zeroizing<String>, Zeroizing<String>), Failure> {
        let masked = "*".repeat(self.new_pin.chars().count());
        println!("New PIN: {masked}\nConfirm new PIN: {masked}");
        Ok((
            Zeroizing::new(self.new_pin.clone()),
            Zeroizing::new(self.new_pin.clone()),
        ))
    }
}
