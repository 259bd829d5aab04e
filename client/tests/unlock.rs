//! The client's flows end to end against the real server in-process and the simulated card:
//! what the person sees and in which order, and what the card and the server end up with.

use cardunlock_client::demo::{Demo, Scenario, SharedCard, DEMO_NEW_PIN};
use cardunlock_client::offline::{self, PIV_OFFLINE};
use cardunlock_client::online;
use cardunlock_client::Kind;
use cardunlock_core::driver::Driver;
use cardunlock_server::Argon2Params;
use cardunlock_sim::{Config, PivConfig, SimCard};
use cardunlock_testkit::{ErrorKind, Fault, Faulty};

mod common;
use common::Script;

/// Cheap answer hashes: the tests are about the flows, not Argon2's cost.
const FAST: Argon2Params = Argon2Params::TEST_ONLY_FAST;

fn demo(scenario: Scenario) -> Demo {
    Demo::start_with(scenario, FAST).unwrap()
}

fn position(log: &[String], prefix: &str) -> usize {
    log.iter()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("{prefix:?} not in {log:#?}"))
}

#[test]
fn online_unlock_shows_the_user_only_after_the_answers_and_rotates_the_puk() {
    let demo = demo(Scenario::Seed);
    let card = demo.card();
    assert_eq!(card.with(|c| c.pin_tries_left()), 0);
    let mut ui = Script::seed();
    online::unlock(&mut Driver::new(card.clone()), demo.api(), &mut ui).unwrap();
    let log = ui.log();
    // The card, the questions, then (verified) the user, then the new PIN, then the card work.
    assert!(log[0].starts_with("card: PIV card, id "), "{log:#?}");
    assert!(log[0].contains("PIN BLOCKED, PUK tries left 3"), "{log:#?}");
    let answers = position(&log, "asked: 2 answers");
    let user = position(&log, "user: Michael Benson <Michael.Benson@demo.local>");
    let pin = position(&log, "asked: new PIN");
    let unlocking = position(&log, "unlocking");
    assert!(answers < user && user < pin && pin < unlocking, "{log:#?}");
    assert_eq!(log.last().map(String::as_str), Some("unlocked"), "{log:#?}");
    assert!(card.with(|c| c.pin_is(DEMO_NEW_PIN.as_bytes())));
    assert_eq!(card.with(|c| c.pin_tries_left()), 3);
    assert_eq!(demo.puk_agreement().unwrap(), Some((1, true)));
}

#[test]
fn wrong_answers_are_a_kind_with_the_attempts_left_and_the_card_is_untouched() {
    let demo = demo(Scenario::Seed);
    let card = demo.card();
    let mut ui = Script {
        answers: vec!["Fido", "Springfield"],
        ..Script::seed()
    };
    let e = online::unlock(&mut Driver::new(card.clone()), demo.api(), &mut ui).unwrap_err();
    assert_eq!(e.kind, Kind::WrongAnswers { attempts_left: 2 }, "{e}");
    assert_eq!(e.exit_code(), 1);
    assert!(e.message.contains("2 attempts left"), "{e}");
    let log = ui.log();
    assert!(
        !log.iter().any(|l| l.starts_with("user:")),
        "user shown: {log:#?}"
    );
    assert!(!log.iter().any(|l| l == "asked: new PIN"), "{log:#?}");
    assert_eq!(card.with(|c| c.pin_tries_left()), 0);
    assert_eq!(card.with(|c| c.puk_tries_left()), Some(3));
}

/// Two wrong PUKs leave one try: a wrong candidate would block the PUK for good.
fn spend_puk_tries(card: &SharedCard, n: usize) {
    // RESET RETRY COUNTER with PUK "00000000" and new PIN "840259", FF-padded.
    let mut rrc = vec![0x00, 0x2C, 0x00, 0x80, 0x10];
    rrc.extend_from_slice(b"00000000840259");
    rrc.extend_from_slice(&[0xFF, 0xFF]);
    for _ in 0..n {
        let answer = card.with(|c| c.transmit(&rrc));
        assert_eq!(answer[0], 0x63, "a wrong PUK: {answer:02X?}");
    }
}

#[test]
fn online_unlock_stops_before_the_last_puk_try() {
    let demo = demo(Scenario::Seed);
    let card = demo.card();
    spend_puk_tries(&card, 2);
    assert_eq!(card.with(|c| c.puk_tries_left()), Some(1));
    let mut ui = Script::seed();
    let e = online::unlock(&mut Driver::new(card.clone()), demo.api(), &mut ui).unwrap_err();
    assert_eq!(e.kind, Kind::Refused, "{e}");
    assert!(
        e.message.starts_with("PUK: the card has 1 PUK try left"),
        "{e}"
    );
    assert!(e.message.contains("cannot block it"), "{e}");
    // Stopped before the questions: nothing asked, no try spent, nothing changed.
    assert!(
        !ui.log().iter().any(|l| l.starts_with("asked:")),
        "{:#?}",
        ui.log()
    );
    assert_eq!(card.with(|c| c.puk_tries_left()), Some(1));
    assert_eq!(card.with(|c| c.pin_tries_left()), 0);
}

#[test]
fn a_card_without_questions_is_sent_offline_and_the_operator_unlocks_it() {
    let demo = demo(Scenario::NoQuestions);
    let card = demo.card();
    let mut ui = Script::seed();
    let e = online::unlock(&mut Driver::new(card.clone()), demo.api(), &mut ui).unwrap_err();
    assert_eq!(e.kind, Kind::NoQuestions, "{e}");
    assert!(e.message.contains("--offline"), "{e}");
    assert_eq!(card.with(|c| c.pin_tries_left()), 0);

    let demo = std::rc::Rc::new(demo);
    let operator = demo.clone();
    let mut ui = Script {
        pin: "Tq83z",
        response: Some(Box::new(move |challenge| {
            operator.operator_response(challenge).unwrap()
        })),
        ..Script::default()
    };
    offline::unlock(&mut Driver::new(card.clone()), &mut ui).unwrap();
    let log = ui.log();
    // The new PIN is checked before the card's challenge exists.
    assert!(
        position(&log, "asked: new PIN") < position(&log, "asked: response"),
        "{log:#?}"
    );
    assert_eq!(log.last().map(String::as_str), Some("unlocked"));
    assert!(card.with(|c| c.pin_is(b"Tq83z")));
}

#[test]
fn a_wrong_operator_response_is_refused_by_the_card() {
    let demo = demo(Scenario::NoQuestions);
    let card = demo.card();
    let mut ui = Script {
        pin: "Tq83z",
        response: Some(Box::new(|_| "0000 0000 0000 0000".into())),
        ..Script::default()
    };
    let e = offline::unlock(&mut Driver::new(card.clone()), &mut ui).unwrap_err();
    assert_eq!(e.kind, Kind::Refused, "{e}");
    assert!(e.message.contains("not accepted"), "{e}");
    assert_eq!(card.with(|c| c.pin_tries_left()), 0);
}

#[test]
fn piv_offline_says_what_it_means_before_asking_anything() {
    let card = SharedCard::new(SimCard::new(Config::Piv(PivConfig::factory().blocked())));
    let mut ui = Script {
        pin: DEMO_NEW_PIN,
        puk: Some("12345678"),
        ..Script::default()
    };
    offline::unlock(&mut Driver::new(card.clone()), &mut ui).unwrap();
    let log = ui.log();
    let told = position(&log, &format!("warning: {PIV_OFFLINE}"));
    assert!(told < position(&log, "asked: PUK"), "{log:#?}");
    assert!(
        position(&log, "asked: PUK") < position(&log, "asked: new PIN"),
        "{log:#?}"
    );
    assert!(card.with(|c| c.pin_is(DEMO_NEW_PIN.as_bytes())));

    // A wrong PUK: the card's answer, tries left named.
    let card = SharedCard::new(SimCard::new(Config::Piv(PivConfig::factory().blocked())));
    let mut ui = Script {
        pin: DEMO_NEW_PIN,
        puk: Some("87654321"),
        ..Script::default()
    };
    let e = offline::unlock(&mut Driver::new(card.clone()), &mut ui).unwrap_err();
    assert_eq!(
        (e.kind.clone(), e.message.as_str()),
        (Kind::Refused, "Wrong PUK. 2 tries left.")
    );
}

#[test]
fn a_pin_the_policy_refuses_never_reaches_the_card() {
    let demo = demo(Scenario::Seed);
    let card = demo.card();
    let before = card.with(|c| c.commands_seen());
    let mut ui = Script {
        pin: "123456",
        ..Script::seed()
    };
    let e = online::unlock(&mut Driver::new(card.clone()), demo.api(), &mut ui).unwrap_err();
    assert_eq!(e.kind, Kind::Policy, "{e}");
    assert_eq!(e.exit_code(), 3);
    assert!(e.message.contains("card was not touched"), "{e}");
    // Only the status read reached the card (no RESET RETRY COUNTER).
    let after = card.with(|c| c.commands_seen());
    assert!(after - before <= 8, "{} commands", after - before);
    assert_eq!(card.with(|c| c.puk_tries_left()), Some(3));
    assert_eq!(card.with(|c| c.pin_tries_left()), 0);
}

/// The transport error under `failure`, found by walking its `source()` chain.
fn transport_error_in(failure: &cardunlock_client::Failure) -> Option<ErrorKind> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(failure);
    while let Some(e) = next {
        if let Some(kind) = e.downcast_ref::<ErrorKind>() {
            return Some(*kind);
        }
        next = e.source();
    }
    None
}

/// Proves a card failure keeps the transport's error as its `source()`, both when the card is
/// pulled during the status read (`failure::card`) and at the unblock itself
/// (`failure::unlock`), with the message and exit code unchanged (dropping the `caused_by`
/// in either fails this).
#[test]
fn a_pulled_card_keeps_the_transport_error_as_the_failures_source() {
    let blocked = || SharedCard::new(SimCard::new(Config::Piv(PivConfig::factory().blocked())));
    let ui = || Script {
        pin: DEMO_NEW_PIN,
        puk: Some("12345678"),
        ..Script::default()
    };
    // A clean run counts the exchanges: the last one is the unblock's.
    let mut clean = Driver::new(Faulty::new(blocked()));
    offline::unlock(&mut clean, &mut ui()).unwrap();
    let exchanges = clean.transport().attempts();
    assert!(exchanges > 1);
    for at in [0, exchanges - 1] {
        let card = blocked();
        let faulty = Faulty::new(card.clone()).with_fault(at, Fault::Fail(ErrorKind::CardRemoved));
        let mut ui = ui();
        let e = offline::unlock(&mut Driver::new(faulty), &mut ui).unwrap_err();
        assert_eq!(e.kind, Kind::Communication, "at {at}: {e}");
        assert_eq!(e.exit_code(), 5);
        assert_eq!(e.message, ErrorKind::CardRemoved.to_string(), "at {at}");
        assert_eq!(
            transport_error_in(&e),
            Some(ErrorKind::CardRemoved),
            "at {at}: {e:?}"
        );
        let unblocking = ui.log().iter().any(|l| l == "unlocking");
        assert_eq!(unblocking, at > 0, "at {at}: {:#?}", ui.log());
        assert_eq!(card.with(|c| c.pin_tries_left()), 0, "at {at}");
    }
}
