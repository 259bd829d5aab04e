//! The presentation: how the unlock flows talk to the person at a terminal, or to a script,
//! and how results are printed (text, or JSON with `--json`).

use std::io::{BufRead, IsTerminal, Write};

use cardunlock_client::offline::{Challenge, OfflineUi};
use cardunlock_client::online::{Event, Person, Ui};
use cardunlock_client::{Failure, Kind};
use cardunlock_core::policy::PinPolicy;
use serde::Serialize;
use zeroize::Zeroizing;

/// Prints an event as a person reads it.
pub fn show(event: Event<'_>) {
    match event {
        Event::Card { description } => println!("Card: {description}"),
        Event::User(user) => println!("{}\n{}", user.name, user.email),
        Event::WrongAnswers { attempts_left } => println!(
            "{}",
            cardunlock_client::online::wrong_answers_message(attempts_left)
        ),
        Event::PinRefused { violations } => {
            println!("The new PIN does not meet the PIN policy (the card was not touched):");
            for v in violations {
                println!("  - {v}");
            }
        }
        Event::Unlocking => {}
        Event::Warning(w) => println!("{w}"),
        Event::Unlocked => println!("{}", cardunlock_client::status::UNLOCKED),
        _ => {}
    }
}

/// Asks `label` at the terminal with the input hidden.
pub fn hidden(label: &str) -> Result<Zeroizing<String>, Failure> {
    hidden_at(&format!("{label}: "), label)
}

/// Shows `prompt` and reads `subject` with the input hidden.
fn hidden_at(prompt: &str, subject: &str) -> Result<Zeroizing<String>, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            subject,
            "standard input is not a terminal, so it cannot be asked; give it with its option \
             (--x-stdin, --x-file) instead",
        ));
    }
    rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .map_err(|e| Failure::usage(subject, format!("cannot read it from the terminal ({e})")))
}

/// "Enter new PIN ...", then the new PIN and its confirmation, hidden: the one place that asks.
pub fn new_pin_twice() -> Result<(Zeroizing<String>, Zeroizing<String>), Failure> {
    println!("Enter new PIN to unlock the smart card.");
    Ok((hidden("New PIN")?, hidden("Confirm new PIN")?))
}

/// The person at the terminal, or a script: what was given up front (answers, new PIN, PUK) is
/// used and shown masked; what was not is asked at the terminal, hidden (answers, PUK, PINs),
/// or on a visible line (the operator's response: no secret, it answers one challenge once).
#[derive(Default)]
pub struct Console {
    /// The answers, in question order, when given.
    pub answers: Option<Vec<Zeroizing<String>>>,
    /// The new PIN (also its confirmation), when given.
    pub new_pin: Option<Zeroizing<String>>,
    /// The PUK of a PIV card offline, when given.
    pub puk: Option<Zeroizing<String>>,
    /// Show given answers as typed (the demo's well-known ones) instead of masked.
    pub show_answers: bool,
    /// Print nothing but prompts (`--json`).
    pub quiet: bool,
}

fn masked(s: &str) -> String {
    "*".repeat(s.chars().count())
}

impl Person for Console {
    fn show(&mut self, event: Event<'_>) {
        if !self.quiet {
            show(event)
        }
    }

    fn can_retry(&self) -> bool {
        self.answers.is_none() && self.new_pin.is_none()
    }

    fn new_pin(
        &mut self,
        _policy: &PinPolicy<'_>,
    ) -> Result<(Zeroizing<String>, Zeroizing<String>), Failure> {
        let Some(pin) = &self.new_pin else {
            return new_pin_twice();
        };
        if !self.quiet {
            let m = masked(pin);
            println!("Enter new PIN to unlock the smart card.\nNew PIN: {m}\nConfirm new PIN: {m}");
        }
        Ok((pin.clone(), pin.clone()))
    }
}

impl Ui for Console {
    fn answers(&mut self, questions: &[String]) -> Result<Vec<Zeroizing<String>>, Failure> {
        let Some(given) = &self.answers else {
            let mut out = Vec::with_capacity(questions.len());
            for q in questions {
                println!("{q}");
                out.push(hidden_at("> ", "answer")?);
            }
            return Ok(out);
        };
        if given.len() != questions.len() {
            return Err(Failure::usage(
                "answers",
                format!(
                    "the card's user has {} security questions, {} answers were given",
                    questions.len(),
                    given.len()
                ),
            ));
        }
        if !self.quiet {
            for (q, a) in questions.iter().zip(given) {
                let shown = if self.show_answers {
                    a.to_string()
                } else {
                    masked(a)
                };
                println!("{q}\n> {shown}");
            }
        }
        Ok(given.clone())
    }
}

impl OfflineUi for Console {
    fn response(&mut self, challenge: Challenge<'_>) -> Result<Zeroizing<String>, Failure> {
        match challenge {
            Challenge::Puk => match &self.puk {
                Some(puk) => Ok(puk.clone()),
                None => hidden("PUK (read out by your operator)").map_err(|f| {
                    Failure::new(
                        f.kind,
                        "PUK: it is asked at a terminal, and standard input is not one: give \
                         --puk-stdin or --puk-file",
                    )
                }),
            },
            Challenge::Admin {
                challenge_hex,
                algorithm,
            } => {
                println!("Challenge: {challenge_hex}");
                println!(
                    "Read the challenge to your operator ({algorithm} admin key) and type the \
                     response."
                );
                print!("Response: ");
                std::io::stdout().flush().ok();
                let mut line = Zeroizing::new(String::new());
                let n = std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .map_err(|e| Failure::usage("response", e))?;
                if n == 0 {
                    return Err(Failure::new(
                        Kind::Cancelled,
                        "response: none typed (end of input); nothing was sent to the card",
                    ));
                }
                Ok(Zeroizing::new(line.trim().to_string()))
            }
        }
    }
}

/// `{"ok":true, ...fields}`, in field order.
#[derive(Serialize)]
struct Success<T> {
    ok: bool,
    #[serde(flatten)]
    fields: T,
}

/// `{"ok":false,"exit":N,"error":"..."}`.
#[derive(Serialize)]
struct Refusal<'a> {
    ok: bool,
    exit: u8,
    error: &'a str,
}

/// Prints a success: `{"ok":true, ...fields}` with `--json`, else `text` (when not empty).
pub fn print_ok<T: Serialize>(json: bool, fields: T, text: &str) {
    if json {
        match serde_json::to_string(&Success { ok: true, fields }) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("error: JSON output: {e}"),
        }
    } else if !text.is_empty() {
        println!("{text}");
    }
}

/// Prints a failure: `{"ok":false,"exit":N,"error":"..."}` on stdout with `--json`, and
/// `error: ...` on stderr.
pub fn print_failure(json: bool, failure: &Failure) {
    if json {
        let refusal = Refusal {
            ok: false,
            exit: failure.exit_code(),
            error: &failure.message,
        };
        if let Ok(line) = serde_json::to_string(&refusal) {
            println!("{line}");
        }
    }
    eprintln!("error: {}", failure.message);
}
