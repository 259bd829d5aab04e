//! What the window tests share: the harness, keyboard helpers, the demo, the worker thread.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cardunlock_client::demo::{Demo, Scenario};
use cardunlock_gui::link::{self, WorkerEnd};
use cardunlock_gui::worker::{self, CardSource};
use cardunlock_gui::UnlockApp;
use eframe::egui::Key;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;

pub type H = Harness<'static, UnlockApp>;

pub fn harness(app: UnlockApp) -> H {
    Harness::builder()
        .with_size([460.0, 640.0])
        .build_ui_state(|ui, app: &mut UnlockApp| app.ui(ui), app)
}

/// Steps the window until `screen` is on show (the worker runs on its own thread).
pub fn wait_for(h: &mut H, screen: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        h.step();
        if h.state().screen().name() == screen {
            // Let the new screen lay out and take its focus.
            h.run_steps(3);
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for the {screen} screen; on show: {}",
            h.state().screen().name()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn has(h: &H, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

pub fn type_keys(h: &mut H, text: &str) {
    h.get_by(|n| n.is_focused()).type_text(text);
    h.run_steps(2);
}

pub fn press(h: &mut H, key: Key) {
    h.key_press(key);
    h.run_steps(2);
}

pub fn erase(h: &mut H, n: usize) {
    for _ in 0..n {
        h.key_press(Key::Backspace);
    }
    h.run_steps(2);
}

/// A window and a worker thread running `run`.
pub fn start(run: impl FnOnce(&WorkerEnd) + Send + 'static) -> (H, std::thread::JoinHandle<()>) {
    let (window, end) = link::channel();
    let worker = std::thread::spawn(move || run(&end));
    (harness(UnlockApp::new(window)), worker)
}

/// The unlock over `source` against the demo's server.
pub fn against<S: CardSource + Send + 'static>(
    demo: &Arc<Demo>,
    mut source: S,
) -> impl FnOnce(&WorkerEnd) + Send + 'static {
    let demo = demo.clone();
    move |end| worker::run(&mut source, demo.api(), worker::Options::default(), end)
}

/// The demo with cheap answer hashes (the default Argon2id cost is slow in a debug build).
pub fn demo(scenario: Scenario) -> Arc<Demo> {
    let cheap = cardunlock_server::Argon2Params::TEST_ONLY_FAST;
    Arc::new(Demo::start_with(scenario, cheap).expect("demo starts"))
}

pub fn answer_questions(h: &mut H, answers: &[&str]) {
    for (i, a) in answers.iter().enumerate() {
        if i > 0 {
            press(h, Key::Tab);
        }
        type_keys(h, a);
    }
    press(h, Key::Enter);
}

/// Types `pin` as the new PIN and its confirmation (Tab between them) and submits with Enter.
pub fn enter_new_pin(h: &mut H, pin: &str) {
    type_keys(h, pin);
    press(h, Key::Tab);
    type_keys(h, pin);
    press(h, Key::Enter);
}
