//! What the client's tests share: a scripted person in front of the card.

// Each test binary uses a part of it.
#![allow(dead_code)]

use std::cell::RefCell;

use cardunlock_client::demo::{DEMO_ANSWERS, DEMO_NEW_PIN};
use cardunlock_client::offline::{Challenge, OfflineUi};
use cardunlock_client::online::{Event, Person, Ui};
use cardunlock_client::Failure;
use cardunlock_core::policy::PinPolicy;
use zeroize::Zeroizing;

/// Plays the operator: the response to a challenge.
pub type Operator = Box<dyn Fn(&str) -> String>;

/// A script that records what it was shown and asked, in order.
#[derive(Default)]
pub struct Script {
    pub answers: Vec<&'static str>,
    pub pin: &'static str,
    pub puk: Option<&'static str>,
    pub response: Option<Operator>,
    pub log: RefCell<Vec<String>>,
}

impl Script {
    pub fn seed() -> Self {
        Script {
            answers: DEMO_ANSWERS.to_vec(),
            pin: DEMO_NEW_PIN,
            ..Script::default()
        }
    }

    pub fn note(&self, s: impl Into<String>) {
        self.log.borrow_mut().push(s.into());
    }

    pub fn log(&self) -> Vec<String> {
        self.log.borrow().clone()
    }

    fn event(&self, event: Event<'_>) {
        self.note(match event {
            Event::Card { description } => format!("card: {description}"),
            Event::User(u) => format!("user: {} <{}>", u.name, u.email),
            Event::WrongAnswers { attempts_left } => format!("wrong answers: {attempts_left}"),
            Event::PinRefused { violations } => format!("pin refused: {}", violations.len()),
            Event::Unlocking => "unlocking".into(),
            Event::Warning(w) => format!("warning: {w}"),
            Event::Unlocked => "unlocked".into(),
            _ => "other".into(),
        });
    }

    fn pins(&self) -> (Zeroizing<String>, Zeroizing<String>) {
        self.note("asked: new PIN");
        (
            Zeroizing::new(self.pin.to_string()),
            Zeroizing::new(self.pin.to_string()),
        )
    }
}

impl Person for Script {
    fn show(&mut self, event: Event<'_>) {
        self.event(event)
    }

    fn can_retry(&self) -> bool {
        false
    }

    fn new_pin(
        &mut self,
        _: &PinPolicy<'_>,
    ) -> Result<(Zeroizing<String>, Zeroizing<String>), Failure> {
        Ok(self.pins())
    }
}

impl Ui for Script {
    fn answers(&mut self, questions: &[String]) -> Result<Vec<Zeroizing<String>>, Failure> {
        self.note(format!("asked: {} answers", questions.len()));
        Ok(self
            .answers
            .iter()
            .map(|a| Zeroizing::new(a.to_string()))
            .collect())
    }
}

impl OfflineUi for Script {
    fn response(&mut self, challenge: Challenge<'_>) -> Result<Zeroizing<String>, Failure> {
        match challenge {
            Challenge::Puk => {
                self.note("asked: PUK");
                Ok(Zeroizing::new(self.puk.unwrap_or("").to_string()))
            }
            Challenge::Admin { challenge_hex, .. } => {
                self.note("asked: response");
                let respond = self.response.as_ref().expect("a response function");
                Ok(Zeroizing::new(respond(challenge_hex)))
            }
        }
    }
}
