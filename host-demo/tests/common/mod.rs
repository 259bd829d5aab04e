//! Shared by the tests that drive the `cardunlock` binary through real pcscd + vpcd: the
//! simulated card it serves itself (`cardunlock sim-card`) in reader 1, and running the CLI.
#![allow(dead_code)]

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cardunlock_vpcd::ReaderLock;

pub const BIN: &str = env!("CARGO_BIN_EXE_cardunlock");
/// vpcd reader 1 ("Virtual PCD 00 01", port 35964): the transport tests use reader 0.
pub const READER_INDEX: u8 = 1;
pub const READER: &str = "Virtual PCD 00 01";
pub const PORT: &str = "35964";
/// The 3DES admin key of the simulated GIDS and ISO cards (and the PIV management key).
pub const ADMIN_KEY: &str = "010203040506070801020304050607080102030405060708";
/// How long pcscd may take to see a card come or go (it polls vpcd every 400 ms).
const CARD_EVENT: Duration = Duration::from_secs(10);
/// How long to wait for the reader while another test (in any process: this binary, another test
/// binary, peers/ci.sh) has it.
const LOCK_WAIT: Duration = Duration::from_secs(300);

/// A `cardunlock sim-card` process serving a fresh simulated card in reader 1, holding the
/// machine-wide lock of the reader (`cardunlock_vpcd::ReaderLock`) until the card is out.
pub struct SimCard {
    child: Child,
    // Dropped after `Drop::drop` has waited for the reader to be empty.
    _lock: ReaderLock,
}

impl SimCard {
    /// Takes the reader, checks it is empty, serves a card (`--profile piv|gids|iso`, PIN blocked
    /// when `blocked`) and waits until pcscd sees it.
    pub fn start(profile: &str, blocked: bool) -> Self {
        let lock = ReaderLock::acquire(READER_INDEX, LOCK_WAIT)
            .unwrap_or_else(|e| panic!("lock of reader {READER}: {e}"));
        assert!(
            wait_for_card(false),
            "{READER} still holds a card although we hold its lock: another virtual card is \
             connected to vpcd port {PORT} (a stray `cardunlock sim-card`?)"
        );
        let mut args = vec!["sim-card", "--profile", profile, "--port", PORT];
        if blocked {
            args.push("--blocked");
        }
        let child = Command::new(BIN)
            .args(&args)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut card = SimCard { child, _lock: lock };
        if !wait_for_card(true) {
            let exited = card.child.try_wait().ok().flatten();
            panic!("the simulated card never showed up in {READER} (sim-card exit: {exited:?})");
        }
        card
    }

    /// Pulls the card: stops the `sim-card` process (vpcd sees the connection close) and waits
    /// until pcscd reports the reader empty.
    pub fn pull(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        assert!(wait_for_card(false), "pcscd still sees a card in {READER}");
    }
}

impl Drop for SimCard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Let pcscd notice the card is gone before the lock goes to the next test.
        wait_for_card(false);
    }
}

/// Waits until `cardunlock --json readers` shows a card (or no card) in reader 1.
fn wait_for_card(present: bool) -> bool {
    let want = format!("\"name\":\"{READER}\",\"card\":{present}");
    let deadline = Instant::now() + CARD_EVENT;
    loop {
        let out = cli(&["--json", "readers"]);
        if String::from_utf8_lossy(&out.stdout).contains(&want) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the CLI with no standard input.
pub fn cli(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Runs the CLI on reader 1.
pub fn on_reader(args: &[&str]) -> Output {
    let mut all = vec!["--reader", READER];
    all.extend_from_slice(args);
    cli(&all)
}

/// Standard output then standard error.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// One field of `cardunlock --json status` of the card in reader 1, as JSON text.
pub fn status_json(field: &str) -> String {
    let out = on_reader(&["--json", "status"]);
    assert!(out.status.success(), "{}", text(&out));
    let s = String::from_utf8_lossy(&out.stdout).to_string();
    let key = format!("\"{field}\":");
    let start = s
        .find(&key)
        .unwrap_or_else(|| panic!("{field} missing in {s}"))
        + key.len();
    s[start..].split([',', '}']).next().unwrap().to_string()
}

/// The operator's side: `cardunlock respond --key ADMIN_KEY <challenge>`, the response as shown.
pub fn operator_response(challenge: &str) -> String {
    let out = cli(&["respond", "--key", ADMIN_KEY, challenge]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .strip_prefix("Response: ")
        .unwrap_or_else(|| panic!("no response in {}", text(&out)))
        .to_string()
}
