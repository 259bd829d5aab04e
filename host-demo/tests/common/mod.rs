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
        Self::start_with(profile, blocked, &[])
    }

    /// [`SimCard::start`] with more `sim-card` options.
    pub fn start_with(profile: &str, blocked: bool, more: &[&str]) -> Self {
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
        args.extend_from_slice(more);
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

/// Writes a secret file only its owner can read (the CLI refuses others).
pub fn write_private(path: &std::path::Path, content: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
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

/// The online-unlock server and enrollment, driven through the CLI.
#[allow(dead_code)]
pub mod online {
    use std::io::{BufRead, BufReader};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Output, Stdio};

    use super::{cli, BIN, READER};

    const MASTER: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    /// A child process killed when dropped.
    pub struct Proc(Child);

    impl Drop for Proc {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// A server in its own process on a fresh database; returns it with its URL and cert path.
    pub fn serve(dir: &Path) -> (Proc, String, PathBuf) {
        let secret = dir.join("master.hex");
        if !secret.exists() {
            super::write_private(&secret, MASTER);
        }
        let mut child = Command::new(BIN)
            .args(["serve", "--bind", "127.0.0.1:0", "--db"])
            .arg(dir.join("cardunlock.db"))
            .arg("--master-secret-file")
            .arg(&secret)
            .arg("--state-dir")
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let url = first.rsplit(' ').next().unwrap().to_string();
        assert!(url.starts_with("https://127.0.0.1:"), "{first}");
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        (Proc(child), url, dir.join("server.crt"))
    }

    pub fn enroll(dir: &Path, questions: &[(&str, &str)]) -> Output {
        enroll_with(dir, questions, &[])
    }

    /// [`enroll`] with more options (`--factory-puk`, `--factory-admin-key` ...).
    pub fn enroll_with(dir: &Path, questions: &[(&str, &str)], extra: &[&str]) -> Output {
        let mut args: Vec<String> = vec![
            "--reader".into(),
            READER.into(),
            "enroll".into(),
            "--db".into(),
        ];
        args.push(dir.join("cardunlock.db").display().to_string());
        args.extend([
            "--master-secret-file".into(),
            dir.join("master.hex").display().to_string(),
        ]);
        args.extend([
            "--name".into(),
            "Michael Benson".into(),
            "--email".into(),
            "Michael.Benson@demo.local".into(),
        ]);
        for (q, a) in questions {
            args.extend([
                "--question".into(),
                q.to_string(),
                "--answer".into(),
                a.to_string(),
            ]);
        }
        args.extend(extra.iter().map(|e| e.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&refs)
    }
}
