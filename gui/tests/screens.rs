//! Every screen of the window, driven headlessly through egui_kittest the way a person does it
//! (keyboard: type, Tab, Enter; or a click on the arrow), against the real client code: the
//! in-process unlock server on a temporary SQLite file and the simulated card of the seed.
//! Only the card's removal is staged, by a transport that stops answering like a pulled card.

mod common;

use std::time::{Duration, Instant};

use cardunlock_client::api::Api;
use cardunlock_client::demo::{Scenario, DEMO_ANSWERS, DEMO_QUESTIONS, DEMO_USER};
use cardunlock_gui::app::{Screen, ARROW, ENTER_NEW_PIN, UNLOCKED};
use cardunlock_gui::link::Challenge;
use cardunlock_gui::worker::{self, DemoCard, DemoSlot, INSERT_CARD};
use common::*;
use eframe::egui::Key;
use egui_kittest::kittest::Queryable;

#[test]
fn seed_unlock_with_the_keyboard_shows_every_screen() {
    let demo = demo(Scenario::Seed);
    let (mut h, worker) = start(against(&demo, DemoCard(demo.card())));

    wait_for(&mut h, "questions");
    assert!(has(&h, "Answer your security questions."));
    for q in DEMO_QUESTIONS {
        assert!(has(&h, q), "question {q:?} shown");
    }
    assert!(has(&h, "PIV card"), "the card line is shown");
    // The name is released only after the answers are verified.
    assert!(!has(&h, DEMO_USER.0));
    // Answers are hidden as typed.
    type_keys(&mut h, DEMO_ANSWERS[0]);
    // egui keeps no undo copy of a secret field's text.
    let focused = h
        .ctx
        .memory(|m| m.focused())
        .expect("the first answer has the focus");
    let undo = eframe::egui::text_edit::TextEditState::load(&h.ctx, focused)
        .expect("a text field")
        .undoer();
    let typed = (
        eframe::egui::text::CCursorRange::default(),
        DEMO_ANSWERS[0].to_string(),
    );
    assert!(!undo.is_in_flux() && !undo.has_undo(&typed) && !undo.has_undo(&Default::default()));
    assert!(
        !has(&h, DEMO_ANSWERS[0]),
        "the answer is not readable on screen"
    );
    erase(&mut h, DEMO_ANSWERS[0].len());
    answer_questions(&mut h, DEMO_ANSWERS);

    wait_for(&mut h, "new-pin");
    assert!(has(&h, DEMO_USER.0));
    assert!(has(&h, DEMO_USER.1));
    assert!(has(&h, ENTER_NEW_PIN));
    assert!(has(&h, "New PIN") && has(&h, "Confirm new PIN"));
    assert!(has(&h, "PIN rules: 6 to 8 digits"));
    // Every violation, as typed.
    type_keys(&mut h, "123456");
    assert!(has(
        &h,
        "• The PIN must not be an ascending or descending sequence."
    ));
    assert!(has(&h, "• The PIN is too common"));
    press(&mut h, Key::Tab);
    type_keys(&mut h, "123456");
    press(&mut h, Key::Enter);
    assert_eq!(
        h.state().screen().name(),
        "new-pin",
        "a refused PIN is not sent"
    );
    // Back in the first field (Shift+Tab), fix it to the demo PIN.
    h.key_press_modifiers(eframe::egui::Modifiers::SHIFT, Key::Tab);
    h.run_steps(2);
    erase(&mut h, 6);
    type_keys(&mut h, "840259");
    assert!(has(&h, "do not match"), "the mismatch is listed");
    assert!(!has(&h, "too common"));
    press(&mut h, Key::Tab);
    erase(&mut h, 6);
    type_keys(&mut h, "840259");
    assert!(!has(&h, "do not match"));
    // The arrow, clicked.
    h.get_by_label(ARROW).click();
    h.run_steps(2);

    wait_for(&mut h, "unlocked");
    assert!(has(&h, UNLOCKED));
    assert!(
        demo.card().with(|c| c.pin_is(b"840259")),
        "the card has the new PIN"
    );
    press(&mut h, Key::Enter);
    assert!(h.state().closed(), "Enter pressed OK");
    drop(h);
    worker.join().expect("worker ends");
}

#[test]
fn wrong_answers_show_the_attempts_left_then_the_lock() {
    let demo = demo(Scenario::Seed);
    let (mut h, worker) = start(against(&demo, DemoCard(demo.card())));
    wait_for(&mut h, "questions");
    answer_questions(&mut h, &["Fido", "Paris"]);
    let mut seen_attempts = false;
    for _ in 0..10 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            h.step();
            let name = h.state().screen().name();
            if (name == "questions" && has(&h, "What was")) || name == "failed" {
                break;
            }
            assert!(Instant::now() < deadline, "stuck on {name}");
            std::thread::sleep(Duration::from_millis(10));
        }
        h.run_steps(3);
        if h.state().screen().name() == "failed" {
            break;
        }
        assert!(has(&h, "The answers are not correct."));
        assert!(has(&h, "left."), "the attempts left are shown");
        seen_attempts = true;
        answer_questions(&mut h, &["Fido", "Paris"]);
    }
    assert!(
        seen_attempts,
        "wrong answers were asked again before the lock"
    );
    assert!(has(&h, "Online unlock is locked for this card."));
    assert!(has(&h, "help desk"));
    assert_eq!(
        demo.card().with(|c| c.pin_tries_left()),
        0,
        "the card untouched"
    );
    assert!(
        !has(&h, DEMO_USER.0),
        "no name released without verified answers"
    );
    assert!(!has(&h, "Try again"), "nothing to try again: only Close");
    // Enter presses Close; the worker stops.
    press(&mut h, Key::Enter);
    assert!(h.state().closed());
    worker.join().expect("the worker ends after Close");
}

#[test]
fn no_questions_offers_offline_unlock_with_the_operators_response() {
    let demo = demo(Scenario::NoQuestions);
    let (mut h, _worker) = start(against(&demo, DemoCard(demo.card())));
    wait_for(&mut h, "failed");
    assert!(has(&h, "No security questions are set up for you."));
    assert!(has(&h, "Unlock offline"));
    // The main button has the focus: Enter chooses offline.
    press(&mut h, Key::Enter);

    wait_for(&mut h, "new-pin");
    assert!(has(&h, "letters and digits"));
    type_keys(&mut h, "Xk9w2");
    press(&mut h, Key::Tab);
    type_keys(&mut h, "Xk9w2");
    press(&mut h, Key::Enter);

    wait_for(&mut h, "challenge");
    assert!(has(&h, "read them this code"));
    let hex = match h.state().screen() {
        Screen::Challenge {
            challenge: Challenge::Admin { challenge_hex, .. },
            ..
        } => challenge_hex.clone(),
        _ => unreachable!(),
    };
    let shown: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
    let grouped = shown
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(has(&h, &grouped), "the challenge {grouped} is on screen");
    // A mistyped response is refused and asked again; nothing spent on the card.
    type_keys(&mut h, "not hex");
    press(&mut h, Key::Enter);
    wait_for(&mut h, "challenge");
    let response = demo.operator_response(&shown).expect("operator answers");
    type_keys(&mut h, &response);
    press(&mut h, Key::Enter);

    wait_for(&mut h, "unlocked");
    assert!(has(&h, UNLOCKED));
    assert!(demo.card().with(|c| c.pin_is(b"Xk9w2")));
}

#[test]
fn server_unreachable_is_a_screen_and_the_card_is_untouched() {
    let demo = demo(Scenario::Seed);
    // A real server that went away: its address and certificate, nobody listening.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = cardunlock_server::Config::new(
        dir.path().join("db.sqlite"),
        dir.path(),
        cardunlock_server::MasterSecret::generate(),
    );
    let server = cardunlock_server::Server::spawn(config).expect("server");
    let (url, pem) = (server.url(), server.cert_pem().to_string());
    drop(server);
    let mut source = DemoCard(demo.card());
    let (mut h, _worker) = start(move |end| {
        let api = Api::new(&url, &pem).expect("api");
        worker::run(&mut source, &api, worker::Options::default(), end)
    });
    wait_for(&mut h, "failed");
    assert!(has(&h, "The unlock server cannot be reached."));
    assert!(has(&h, "Your card was not changed."));
    assert!(has(&h, "Try again"));
    assert_eq!(demo.card().with(|c| c.pin_tries_left()), 0);
    assert_eq!(demo.card().with(|c| c.puk_tries_left()), Some(3));
    // Try again: the same screen again (the server is still away), no hang.
    press(&mut h, Key::Enter);
    wait_for(&mut h, "failed");
    assert!(has(&h, "The unlock server cannot be reached."));
}

#[test]
fn waiting_for_the_card_then_card_removed_then_unlocked_after_reinserting() {
    let demo = demo(Scenario::Seed);
    let slot = DemoSlot::empty(demo.card());
    let (mut h, _worker) = start(against(&demo, slot.clone()));
    wait_for(&mut h, "waiting");
    assert!(has(&h, INSERT_CARD));
    slot.insert();

    wait_for(&mut h, "questions");
    answer_questions(&mut h, DEMO_ANSWERS);
    wait_for(&mut h, "new-pin");
    // Pulled before the new PIN reaches the card.
    slot.pull();
    enter_new_pin(&mut h, "840259");
    wait_for(&mut h, "failed");
    assert!(has(&h, "The card was removed."));
    assert!(has(&h, "Insert the card again"));
    assert_eq!(
        demo.card().with(|c| c.pin_tries_left()),
        0,
        "PIN still blocked"
    );

    press(&mut h, Key::Enter); // Try again
    wait_for(&mut h, "waiting");
    assert!(has(&h, INSERT_CARD));
    slot.insert();
    wait_for(&mut h, "questions");
    answer_questions(&mut h, DEMO_ANSWERS);
    wait_for(&mut h, "new-pin");
    enter_new_pin(&mut h, "840259");
    wait_for(&mut h, "unlocked");
    assert!(demo.card().with(|c| c.pin_is(b"840259")));
}
