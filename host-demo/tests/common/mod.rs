//! Shared by the tests that drive the `cardunlock` binary through real pcscd + vpcd: the
//! simulated card it serves itself (`cardunlock sim-card`) in reader 1, and running the CLI.
#![allow(dead_code)]

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cardunlock_virtual_readers::ReaderLock;

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
/// machine-wide lock of the reader (`cardunlock_virtual_readers::ReaderLock`) until the card is out.
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
            wait_for_empty(),
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
        assert!(wait_for_empty(), "pcscd still sees a card in {READER}");
    }
}

impl Drop for SimCard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Let pcscd notice the card is gone before the lock goes to the next test.
        wait_for_empty();
    }
}

/// Waits until pcscd reports reader 1 empty: no card at all, not merely none that answers. A
/// card pcscd marked mute (its reset failed as it left) still counts as in the reader, and a card
/// that connects before pcscd's next poll saw the reader empty would never be seen.
#[cfg(feature = "pcsc")]
fn wait_for_empty() -> bool {
    match cardunlock_pcsc::Pcsc::establish() {
        Ok(pcsc) => pcsc.wait_for_removal(READER, CARD_EVENT).is_ok(),
        Err(_) => wait_for_card(false),
    }
}

/// Without PC/SC linked, what the CLI lists.
#[cfg(not(feature = "pcsc"))]
fn wait_for_empty() -> bool {
    wait_for_card(false)
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

/// Runs `command` with `stdin` as its standard input and its output captured. The program
/// may exit before reading: a broken pipe is fine.
pub fn output_with_stdin(command: &mut Command, stdin: &str) -> Output {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
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

/// The CLI ended with exit code `code` and its output says `says`.
pub fn assert_exit(out: &Output, code: i32, says: &str) {
    let t = text(out);
    assert_eq!(out.status.code(), Some(code), "{t}");
    assert!(t.contains(says), "{t}");
}

/// The string value of `"field":"..."` in JSON text (as the CLI and its files write it).
pub fn json_string(json: &str, field: &str) -> String {
    json.split(&format!("\"{field}\":\""))
        .nth(1)
        .unwrap_or_else(|| panic!("{field} missing in {json}"))
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

/// The identity of the card in reader 1, from `cardunlock --json status`.
pub fn card_identity() -> String {
    let status = String::from_utf8_lossy(&on_reader(&["--json", "status"]).stdout).to_string();
    json_string(&status, "identity")
}

/// The TOTP code of now for the `otpauth://` URI an operator was given.
pub fn totp_now(uri: &str) -> String {
    let seed = cardunlock_server::totp::seed_from_uri(uri).unwrap();
    cardunlock_server::totp::code(&seed, unix_now()).to_string()
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
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

/// The operator's side for a card still on its factory admin key (`ADMIN_KEY`): the 3DES
/// response to `challenge` (grouped hex as read out), computed here as an operator's own tool
/// would (`cardunlock respond` asks the server, which knows only enrolled cards).
pub fn operator_response(challenge: &str) -> String {
    use cardunlock_core::crypto::{AdminKey, Algorithm};
    let key = AdminKey::from_hex(Algorithm::TripleDes, ADMIN_KEY).unwrap();
    let hex: String = challenge.chars().filter(|c| !c.is_whitespace()).collect();
    let mut block: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    key.encrypt_ecb(&mut block).unwrap();
    let hex: Vec<String> = block.iter().map(|b| format!("{b:02X}")).collect();
    hex.chunks(2)
        .map(|c| c.concat())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The online-unlock server (in this process, HTTPS on a free port) with one operator, and the
/// operator's commands driven through the CLI.
#[allow(dead_code)]
pub mod online {
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output, Stdio};

    use cardunlock_server::operator::create_operator;
    use cardunlock_server::protocol::{Role, Secret};
    use cardunlock_server::{totp, Argon2Params, Config, MasterSecret, ServerHandle};

    use super::{BIN, READER};

    const MASTER: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    /// The operator every test signs in as (roles enroller and helpdesk).
    pub const OPERATOR: &str = "eve";
    const PASSWORD: &str = "correct horse battery staple";

    /// The server of one test; stops when dropped.
    pub struct Server {
        pub handle: ServerHandle,
        seed: zeroize::Zeroizing<Vec<u8>>,
        /// TOTP steps ahead of now: 1 after a restart (the operator may have signed in with
        /// this step's code already, and each code works once; the server takes the next).
        steps_ahead: u64,
    }

    /// Starts a server on a fresh database in `dir` (certificate in `dir/server.crt`), adds the
    /// operator as `cardunlock-server add-operator` does, and writes the operator's password
    /// (owner-only) and TOTP seed for [`operator_args`]. Returns it with its URL and cert path.
    pub fn serve(dir: &Path) -> (Server, String, PathBuf) {
        let master = MasterSecret::from_hex(MASTER).unwrap();
        let mut config = Config::new(dir.join("cardunlock.db"), dir, master.clone());
        config.argon2 = Argon2Params::TEST_ONLY_FAST;
        let handle = cardunlock_server::Server::spawn(config).unwrap();
        // A restart on the same directory keeps the operator made the first time.
        let seed_file = dir.join("operator-totp-seed");
        let restarted = seed_file.exists();
        let seed = match std::fs::read(&seed_file) {
            Ok(seed) => zeroize::Zeroizing::new(seed),
            Err(_) => {
                let uri = create_operator(
                    handle.store(),
                    &master,
                    &Argon2Params::TEST_ONLY_FAST,
                    OPERATOR,
                    &[Role::Enroller, Role::Helpdesk],
                    &Secret::new(PASSWORD),
                )
                .unwrap();
                let seed = totp::seed_from_uri(uri.expose()).unwrap();
                std::fs::write(&seed_file, &*seed).unwrap();
                seed
            }
        };
        super::write_private(&dir.join("operator-password"), PASSWORD);
        let url = handle.url();
        std::fs::write(dir.join("server.url"), &url).unwrap();
        let server = Server {
            handle,
            seed,
            steps_ahead: u64::from(restarted),
        };
        (server, url, dir.join("server.crt"))
    }

    impl Server {
        /// The operator's current TOTP code.
        pub fn code(&self) -> String {
            let now = super::unix_now();
            totp::code(&self.seed, now + self.steps_ahead * totp::STEP_SECS).to_string()
        }

        /// The audit, asserted to hold a row of the operator's `event` whose detail says
        /// `detail`.
        pub fn assert_audited(
            &self,
            event: &str,
            detail: &str,
        ) -> Vec<cardunlock_server::AuditEntry> {
            let audit = self.handle.store().audit().unwrap();
            assert!(
                audit.iter().any(|e| e.event == event
                    && e.operator.as_deref() == Some(OPERATOR)
                    && e.detail.contains(detail)),
                "{audit:?}"
            );
            audit
        }

        /// `--server URL --cert PEM --operator eve --password-file F --totp CODE --keep-session`
        /// for the server of `dir`: the first command signs in and keeps the session (in
        /// `dir/state`, see [`cli_in`]), the next ones reuse it (each TOTP code works once).
        pub fn operator_args(&self, dir: &Path) -> Vec<String> {
            vec![
                "--server".into(),
                self.handle.url(),
                "--cert".into(),
                dir.join("server.crt").display().to_string(),
                "--operator".into(),
                OPERATOR.into(),
                "--password-file".into(),
                dir.join("operator-password").display().to_string(),
                "--totp".into(),
                self.code(),
                "--keep-session".into(),
            ]
        }
    }

    /// `COMMAND --server URL --cert PEM REST...`: an operator command against a server.
    pub fn remote<'a>(
        command: &'a str,
        url: &'a str,
        cert: &'a str,
        rest: &[&'a str],
    ) -> Vec<&'a str> {
        let mut args = vec![command, "--server", url, "--cert", cert];
        args.extend_from_slice(rest);
        args
    }

    /// `--profile piv --identity ID --reason REASON`: what a lift-lock of a PIV card names.
    pub const fn lift_piv<'a>(identity: &'a str, reason: &'a str) -> [&'a str; 6] {
        [
            "--profile",
            "piv",
            "--identity",
            identity,
            "--reason",
            reason,
        ]
    }

    /// Runs the CLI with the operator's state directory in `dir/state`, no standard input.
    pub fn cli_in<S: AsRef<std::ffi::OsStr>>(dir: &Path, args: &[S]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("CARDUNLOCK_STATE_DIR", dir.join("state"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// What an [`enrolled`] card's test holds until it ends: the server's directory and the
    /// simulated card in reader 1.
    pub struct Enrolled {
        pub dir: tempfile::TempDir,
        card: super::SimCard,
    }

    /// Starts a server in a fresh directory and a blocked `profile` card in reader 1, and has
    /// the operator enroll the card with `questions` (asserted to succeed). Returns what the
    /// test holds, and the server with its URL and certificate path.
    pub fn enrolled(
        profile: &str,
        questions: &[(&str, &str)],
    ) -> (Enrolled, Server, String, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let (server, url, cert) = serve(dir.path());
        let card = super::SimCard::start(profile, true);
        let out = enroll(&server, dir.path(), questions);
        assert!(out.status.success(), "{}", super::text(&out));
        (Enrolled { dir, card }, server, url, cert)
    }

    /// `cardunlock enroll` of the card in reader 1 as the operator, with `questions`.
    pub fn enroll(server: &Server, dir: &Path, questions: &[(&str, &str)]) -> Output {
        enroll_with(server, dir, questions, &[])
    }

    /// [`enroll`] with more options (`--factory-puk`, `--factory-admin-key` ...).
    pub fn enroll_with(
        server: &Server,
        dir: &Path,
        questions: &[(&str, &str)],
        extra: &[&str],
    ) -> Output {
        let mut args: Vec<String> = vec!["--reader".into(), READER.into(), "enroll".into()];
        args.extend(server.operator_args(dir));
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
        cli_in(dir, &args)
    }

    /// `cardunlock OPERATION ...` (lift-lock, respond, puk-readout) as the operator.
    pub fn operator(server: &Server, dir: &Path, operation: &str, rest: &[&str]) -> Output {
        let mut args: Vec<String> = vec![operation.into()];
        args.extend(server.operator_args(dir));
        args.extend(rest.iter().map(|r| r.to_string()));
        cli_in(dir, &args)
    }
}
