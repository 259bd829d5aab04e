//! Every form of the tile, driven the way LogonUI drives it (typed text, the submit arrow, the
//! links), against the real client code: the in-process unlock server on a temporary SQLite
//! file and the simulated cards of the seed. Only the card's removal and an empty reader are
//! staged, by card sources that behave like them.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cardunlock_client::api::Api;
use cardunlock_client::demo::{
    Demo, Scenario, SharedCard, DEMO_ANSWERS, DEMO_QUESTIONS, DEMO_USER,
};
use cardunlock_client::failure::{Failure, Kind};
use cardunlock_core::ErrorKind;
use cardunlock_credprov::link::{self, Challenge, WorkerEnd};
use cardunlock_credprov::tile::fields::*;
use cardunlock_credprov::tile::{Screen, Submission, Tile, ENTER_NEW_PIN, UNLOCKED};
use cardunlock_credprov::worker::{self, CardSource, DemoCard, DemoSlot, Options, INSERT_CARD};

/// Offline offered; the built-in ISO profiles (the simulator's: a demo build).
fn offered() -> Options {
    Options::default()
}

fn demo(scenario: Scenario) -> Arc<Demo> {
    let cheap = cardunlock_server::Argon2Params::TEST_ONLY_FAST;
    Arc::new(Demo::start_with(scenario, cheap).expect("demo starts"))
}

/// A tile and a worker thread running `run`.
fn start(
    options: Options,
    run: impl FnOnce(&WorkerEnd) + Send + 'static,
) -> (Tile, JoinHandle<()>) {
    let (tile_end, worker_end) = link::channel(Arc::new(|| {}));
    let worker = std::thread::spawn(move || run(&worker_end));
    (Tile::new(tile_end, options.offline_offered), worker)
}

fn against<S: CardSource + Send + 'static>(
    demo: &Arc<Demo>,
    mut source: S,
    options: Options,
) -> impl FnOnce(&WorkerEnd) + Send + 'static {
    let demo = demo.clone();
    move |end| worker::run(&mut source, demo.api(), options, end)
}

/// Pumps the tile until `screen` is on show.
fn wait_for(tile: &mut Tile, screen: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        tile.pump();
        if tile.screen().name() == screen {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for the {screen} form; on show: {}",
            tile.screen().name()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn texts(tile: &Tile) -> String {
    tile.view().texts()
}

fn answer(tile: &mut Tile, answers: &[&str]) -> Submission {
    for (i, a) in answers.iter().enumerate() {
        tile.set_string(ANSWERS[i], a).expect("answer field");
    }
    tile.submit()
}

fn new_pin(tile: &mut Tile, pin: &str, confirm: &str) -> Submission {
    tile.set_string(NEW_PIN, pin).expect("new PIN field");
    tile.set_string(CONFIRM_PIN, confirm)
        .expect("confirm field");
    tile.submit()
}

/// The seed's whole online unlock: questions, user released, PIN rules and their violations
/// (a refused PIN never leaves the tile), the new PIN, the success that `GetSerialization`
/// reports as "no credential, finished". Proves the secrets are wiped after each submit: remove
/// the wiping and the `take_wiped` / `string` checks fail.
#[test]
fn seed_online_unlock_to_success() {
    let demo = demo(Scenario::Seed);
    let (mut tile, worker) = start(offered(), against(&demo, DemoCard(demo.card()), offered()));

    wait_for(&mut tile, "questions");
    let view = tile.view();
    assert_eq!(view.field(TITLE).text, TILE_NAME);
    assert_eq!(view.field(TITLE).shown, Shown::Both);
    assert_eq!(view.field(IMAGE).shown, Shown::Both);
    for (i, q) in DEMO_QUESTIONS.iter().enumerate() {
        assert_eq!(view.field(QUESTIONS[i]).text, *q);
        assert!(view.shows(ANSWERS[i]));
    }
    assert!(!view.shows(QUESTIONS[2]) && !view.shows(ANSWERS[2]));
    assert!(
        view.field(ANSWERS[0]).focused,
        "the first answer has the focus"
    );
    assert_eq!(view.submit_beside, ANSWERS[1]);
    assert!(texts(&tile).contains("PIV card"), "the card line is shown");
    assert!(
        !texts(&tile).contains(DEMO_USER.0),
        "no name before the answers"
    );

    // One answer missing: not sent.
    tile.set_string(ANSWERS[0], DEMO_ANSWERS[0])
        .expect("answer");
    assert_eq!(tile.submit(), Submission::NotFinished);
    assert_eq!(tile.screen().name(), "questions");
    assert!(texts(&tile).contains("Answer every question."));
    assert!(
        !texts(&tile).contains(DEMO_ANSWERS[0]),
        "answers never echoed"
    );

    assert_eq!(answer(&mut tile, DEMO_ANSWERS), Submission::NotFinished);
    assert_eq!(tile.screen().name(), "busy");
    let wiped = tile.take_wiped();
    assert!(wiped.contains(&ANSWERS[0]) && wiped.contains(&ANSWERS[1]));

    wait_for(&mut tile, "new-pin");
    let view = tile.view();
    assert_eq!(view.field(TITLE).text, DEMO_USER.0);
    assert_eq!(view.field(SUBTITLE).text, DEMO_USER.1);
    assert_eq!(view.field(PROMPT).text, ENTER_NEW_PIN);
    assert!(view.shows(NEW_PIN) && view.shows(CONFIRM_PIN) && view.shows(SUBMIT));
    assert_eq!(view.submit_beside, CONFIRM_PIN);
    assert!(view.field(STATUS).text.contains("PIN rules: 6 to 8 digits"));

    // Violations as typed, then refused on submit without reaching the card.
    tile.set_string(NEW_PIN, "123456").expect("pin");
    assert!(texts(&tile).contains("ascending or descending sequence"));
    assert!(texts(&tile).contains("too common"));
    assert_eq!(
        new_pin(&mut tile, "123456", "123456"),
        Submission::NotFinished
    );
    assert_eq!(tile.screen().name(), "new-pin", "a refused PIN is not sent");
    assert!(
        texts(&tile).contains("too common"),
        "the refusal stays as status text"
    );
    assert!(tile.string(NEW_PIN).is_empty() && tile.string(CONFIRM_PIN).is_empty());
    let wiped = tile.take_wiped();
    assert!(wiped.contains(&NEW_PIN) && wiped.contains(&CONFIRM_PIN));
    assert_eq!(
        demo.card().with(|c| c.pin_tries_left()),
        0,
        "card untouched"
    );
    tile.set_string(NEW_PIN, "840259").expect("pin");
    assert!(
        texts(&tile).contains("do not match"),
        "the mismatch is listed"
    );

    assert_eq!(
        new_pin(&mut tile, "840259", "840259"),
        Submission::NotFinished
    );
    assert!(
        tile.string(NEW_PIN).is_empty(),
        "the PIN left the tile's field"
    );
    wait_for(&mut tile, "unlocked");
    assert!(tile.auto_submit(), "LogonUI is asked to submit by itself");
    assert_eq!(tile.view().field(PROMPT).text, UNLOCKED);
    assert_eq!(
        tile.submit(),
        Submission::Finished {
            text: UNLOCKED.into(),
            success: true
        }
    );
    assert!(
        !tile.auto_submit(),
        "the success is reported once, not in a loop"
    );
    assert!(
        demo.card().with(|c| c.pin_is(b"840259")),
        "the card has the new PIN"
    );
    drop(tile);
    worker
        .join()
        .expect("the worker ends when the tile is released");
}

/// Wrong answers: the attempts left as status text, asked again, then the locked form with no
/// way forward on the tile; the card is untouched and no name is released.
#[test]
fn wrong_answers_show_the_attempts_left_then_the_lock() {
    let demo = demo(Scenario::Seed);
    let (mut tile, worker) = start(offered(), against(&demo, DemoCard(demo.card()), offered()));
    let mut seen_attempts = false;
    for round in 0..10 {
        wait_for_either(&mut tile, "questions", "failed");
        if tile.screen().name() == "failed" {
            break;
        }
        if round > 0 {
            assert!(texts(&tile).contains("The answers are not correct."));
            assert!(
                texts(&tile).contains("left."),
                "the attempts left are shown"
            );
            seen_attempts = true;
        }
        answer(&mut tile, &["Fido", "Paris"]);
    }
    assert!(seen_attempts);
    let view = tile.view();
    assert_eq!(
        view.field(PROMPT).text,
        "Online unlock is locked for this card."
    );
    assert!(texts(&tile).contains("help desk"));
    assert!(
        !view.shows(RETRY) && !view.shows(OFFLINE),
        "nothing to try again"
    );
    assert!(tile.command_link(RETRY).is_err());
    assert!(!texts(&tile).contains(DEMO_USER.0));
    assert_eq!(demo.card().with(|c| c.pin_tries_left()), 0);
    drop(tile);
    worker.join().expect("worker ends");
}

fn wait_for_either(tile: &mut Tile, a: &str, b: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        tile.pump();
        let name = tile.screen().name();
        let ready = match tile.screen() {
            Screen::Questions { questions, .. } => !questions.is_empty(),
            _ => true,
        };
        if (name == a || name == b) && ready {
            return;
        }
        assert!(Instant::now() < deadline, "stuck on {name}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// No questions enrolled: the offline link, the new PIN, the challenge shown grouped, a
/// mistyped response asked again, the help desk's response, success.
#[test]
fn no_questions_offers_offline_unlock_with_the_challenge() {
    let demo = demo(Scenario::NoQuestions);
    let (mut tile, _worker) = start(offered(), against(&demo, DemoCard(demo.card()), offered()));
    wait_for(&mut tile, "failed");
    let view = tile.view();
    assert_eq!(
        view.field(PROMPT).text,
        "No security questions are set up for you."
    );
    assert!(view.shows(OFFLINE) && !view.shows(RETRY));
    assert_eq!(view.field(OFFLINE).text, "Unlock offline");
    tile.command_link(OFFLINE).expect("offline offered");

    wait_for(&mut tile, "new-pin");
    assert!(texts(&tile).contains("letters and digits"));
    new_pin(&mut tile, "Xk9w2", "Xk9w2");
    wait_for(&mut tile, "challenge");
    let hex = match tile.screen() {
        Screen::Challenge {
            challenge: Challenge::Admin { challenge_hex, .. },
            ..
        } => challenge_hex.clone(),
        _ => unreachable!(),
    };
    let view = tile.view();
    assert!(view.field(PROMPT).text.contains("read them this code"));
    let plain: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
    let shown = view.field(CHALLENGE).text;
    assert!(
        shown.starts_with(&plain[..4]) && shown.contains(' '),
        "grouped: {shown}"
    );
    assert!(view.shows(RESPONSE) && view.field(RESPONSE).focused);
    assert_eq!(view.submit_beside, RESPONSE);
    // Mistyped: asked again, nothing spent.
    tile.set_string(RESPONSE, "not hex").expect("response");
    tile.submit();
    wait_for(&mut tile, "challenge");
    assert!(texts(&tile).contains("type it again"));
    let response = demo.operator_response(&plain).expect("operator answers");
    tile.set_string(RESPONSE, &response).expect("response");
    tile.submit();
    wait_for(&mut tile, "unlocked");
    assert!(demo.card().with(|c| c.pin_is(b"Xk9w2")));
}

/// Offline not offered (registry): the no-questions form says so and has no offline link.
#[test]
fn no_questions_without_offline_offered_has_no_link() {
    let off = Options {
        offline_offered: false,
        ..Options::default()
    };
    let demo = demo(Scenario::NoQuestions);
    let (mut tile, _worker) = start(off.clone(), against(&demo, DemoCard(demo.card()), off));
    wait_for(&mut tile, "failed");
    assert!(!tile.view().shows(OFFLINE));
    assert!(texts(&tile).contains("not offered on this computer"));
    assert!(tile.command_link(OFFLINE).is_err());
}

/// A server that went away: its form, the card untouched, Try again comes back to it.
#[test]
fn server_unreachable_is_a_form_and_the_card_is_untouched() {
    let demo = demo(Scenario::Seed);
    let dir = tempfile_dir();
    let config = cardunlock_server::Config::new(
        dir.join("db.sqlite"),
        &dir,
        cardunlock_server::MasterSecret::generate(),
    );
    let server = cardunlock_server::Server::spawn(config).expect("server");
    let (url, pem) = (server.url(), server.cert_pem().to_string());
    drop(server);
    let mut source = DemoCard(demo.card());
    let (mut tile, _worker) = start(offered(), move |end| {
        let api = Api::new(&url, &pem).expect("api");
        worker::run(&mut source, &api, offered(), end)
    });
    wait_for(&mut tile, "failed");
    assert_eq!(
        tile.view().field(PROMPT).text,
        "The unlock server cannot be reached."
    );
    assert!(texts(&tile).contains("Your card was not changed."));
    assert!(tile.view().shows(RETRY));
    assert_eq!(demo.card().with(|c| c.puk_tries_left()), Some(3));
    tile.command_link(RETRY).expect("retry");
    assert_eq!(tile.screen().name(), "busy");
    wait_for(&mut tile, "failed");
    assert_eq!(
        tile.view().field(PROMPT).text,
        "The unlock server cannot be reached."
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "credprov-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Waiting for the card, the card pulled before the new PIN reaches it (its form, the PIN
/// still blocked), then inserted again and unlocked.
#[test]
fn waiting_then_card_removed_then_unlocked_after_reinserting() {
    let demo = demo(Scenario::Seed);
    let slot = DemoSlot::empty(demo.card());
    let (mut tile, _worker) = start(offered(), against(&demo, slot.clone(), offered()));
    wait_for(&mut tile, "waiting");
    assert_eq!(tile.view().field(PROMPT).text, INSERT_CARD);
    slot.insert();
    wait_for(&mut tile, "questions");
    answer(&mut tile, DEMO_ANSWERS);
    wait_for(&mut tile, "new-pin");
    slot.pull();
    new_pin(&mut tile, "840259", "840259");
    wait_for(&mut tile, "failed");
    assert_eq!(tile.view().field(PROMPT).text, "The card was removed.");
    assert!(texts(&tile).contains("Insert the card again"));
    assert_eq!(
        demo.card().with(|c| c.pin_tries_left()),
        0,
        "PIN still blocked"
    );
    tile.command_link(RETRY).expect("retry");
    wait_for(&mut tile, "waiting");
    slot.insert();
    wait_for(&mut tile, "questions");
    answer(&mut tile, DEMO_ANSWERS);
    wait_for(&mut tile, "new-pin");
    new_pin(&mut tile, "840259", "840259");
    wait_for(&mut tile, "unlocked");
    assert!(demo.card().with(|c| c.pin_is(b"840259")));
}

/// No reader / no card: the reader's failure as the no-card form, with Try again.
struct NoReader;

impl CardSource for NoReader {
    type Card = SharedCard;
    type Error = ErrorKind;
    fn wait_for_card(&mut self, _end: &WorkerEnd) -> Result<Option<SharedCard>, Failure> {
        Err(Failure::new(Kind::NoCard, "PC/SC: no smart-card reader"))
    }
}

#[test]
fn no_card_is_a_form_with_try_again() {
    let demo = demo(Scenario::Seed);
    let (mut tile, _worker) = start(offered(), against(&demo, NoReader, offered()));
    wait_for(&mut tile, "failed");
    assert_eq!(tile.view().field(PROMPT).text, "No card found.");
    assert!(texts(&tile).contains("Insert your card into the reader"));
    assert!(tile.view().shows(RETRY));
}

/// LogonUI cannot type into a field the form does not show, nor into a text.
#[test]
fn only_the_forms_input_fields_take_text() {
    let demo = demo(Scenario::Seed);
    let (mut tile, _worker) = start(offered(), against(&demo, DemoCard(demo.card()), offered()));
    wait_for(&mut tile, "questions");
    assert!(tile.set_string(NEW_PIN, "1").is_err());
    assert!(tile.set_string(TITLE, "x").is_err());
    assert!(
        tile.set_string(ANSWERS[2], "x").is_err(),
        "no third question"
    );
    assert!(tile.set_string(ANSWERS[0], &"x".repeat(500)).is_err());
    assert!(
        tile.string(ANSWERS[0]).is_empty(),
        "an over-long value is not kept"
    );
    tile.set_string(ANSWERS[0], "Rex").expect("answer");
    tile.deselected();
    assert!(
        tile.string(ANSWERS[0]).is_empty(),
        "leaving the tile wipes the answers"
    );
    assert_eq!(tile.take_wiped(), vec![ANSWERS[0]]);
}
