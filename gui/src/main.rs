//! `cardunlock-gui`: the unlock window.
//!
//! ```text
//! cardunlock-gui --demo                     # the seed scenario in-process (Michael Benson)
//! cardunlock-gui --demo-no-questions        # a user without questions: the offline unlock
//! cardunlock-gui --server URL --cert PEM [--reader NAME] [--transport pcsc|ccid]
//!                [--iso-profiles FILE]      # a real card through PC/SC or a USB CCID reader
//! ```
//!
//! The ISO admin profiles tried after PIV and GIDS come from `--iso-profiles FILE`, else the
//! system file (`/etc/cardunlock/iso-profiles.toml`, `%ProgramData%\cardunlock\iso-profiles.toml`)
//! if it exists (`cardunlock_client::iso_profiles`).
//!
//! Exit code 0 when the card was unlocked, 1 when the window closed without, 2 on bad usage.

// No console window behind the unlock window on Windows (release builds).
#![cfg_attr(all(windows, not(debug_assertions)), windows_subsystem = "windows")]

use std::cell::Cell;
use std::process::ExitCode;
use std::rc::Rc;

#[cfg(feature = "demo")]
use cardunlock_client::demo::Scenario;
/// Without the `demo` feature there is no scenario to choose.
#[cfg(not(feature = "demo"))]
enum Scenario {}
use cardunlock_client::card::TransportKind;
use cardunlock_client::iso_profiles::IsoProfiles;
use cardunlock_gui::app::Screen;
use cardunlock_gui::link::{self, WorkerEnd};
use cardunlock_gui::{worker, UnlockApp};
use eframe::egui;

const USAGE: &str = "usage:
  cardunlock-gui --demo                   the seed scenario in-process (no reader, no setup)
  cardunlock-gui --demo-no-questions      a user without security questions: offline unlock
  cardunlock-gui --server URL --cert PEM [--reader NAME] [--transport pcsc|ccid]
                 [--iso-profiles FILE]    a real card and the unlock server; the card
                                          through PC/SC (default) or a USB CCID reader;
                                          the ISO admin profiles to try (default: the
                                          system's iso-profiles.toml if present)";

// Without a card transport the server mode only reports that it cannot reach a card.
#[cfg_attr(not(any(feature = "pcsc", feature = "ccid")), allow(dead_code))]
enum Mode {
    Demo(Scenario),
    Server {
        url: String,
        cert: String,
        readers: cardunlock_client::card::Readers,
        iso_profiles: IsoProfiles,
    },
}

/// Why the command line is not used: help was asked for, or it is wrong (exit code 2 either way).
#[derive(Debug)]
enum Usage {
    /// `-h` / `--help`: only the usage is printed.
    Help,
    /// An option without its value.
    NeedsValue(&'static str),
    /// `--demo...` in a build without the `demo` feature.
    #[cfg_attr(feature = "demo", allow(dead_code))]
    NoDemo(String),
    /// `--transport` names neither transport.
    Transport(String),
    /// An argument that is none of the options.
    Unknown(String),
    /// `--server` without `--cert`.
    NeedsCert,
    /// Neither a demo nor a server, or both.
    ChooseMode,
    /// The certificate or the ISO profiles cannot be read.
    File(cardunlock_client::Failure),
}

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Help => Ok(()),
            Self::NeedsValue(name) => write!(f, "{name} needs a value"),
            Self::NoDemo(a) => write!(
                f,
                "{a}: this build has no demo (build with `--features demo`)"
            ),
            Self::Transport(other) => write!(f, "--transport {other}: choose pcsc or ccid"),
            Self::Unknown(other) => write!(f, "unknown argument: {other}"),
            Self::NeedsCert => f.write_str("--server needs --cert PEM (the server's certificate)"),
            Self::ChooseMode => {
                f.write_str("choose --demo, --demo-no-questions or --server URL --cert PEM")
            }
            Self::File(failure) => f.write_str(&failure.message),
        }
    }
}

fn parse(args: &[String]) -> Result<Mode, Usage> {
    #[cfg_attr(not(feature = "demo"), allow(unused_mut))]
    let mut mode: Option<Scenario> = None;
    let (mut url, mut cert, mut reader, mut iso) = (None, None, None, None);
    let mut transport = TransportKind::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &'static str| it.next().cloned().ok_or(Usage::NeedsValue(name));
        match a.as_str() {
            #[cfg(feature = "demo")]
            "--demo" => mode = Some(Scenario::Seed),
            #[cfg(feature = "demo")]
            "--demo-no-questions" => mode = Some(Scenario::NoQuestions),
            #[cfg(not(feature = "demo"))]
            "--demo" | "--demo-no-questions" => return Err(Usage::NoDemo(a.clone())),
            "--server" => url = Some(value("--server")?),
            "--cert" => cert = Some(value("--cert")?),
            "--reader" => reader = Some(value("--reader")?),
            "--iso-profiles" => iso = Some(std::path::PathBuf::from(value("--iso-profiles")?)),
            "--transport" => {
                transport = match value("--transport")?.as_str() {
                    "pcsc" => TransportKind::Pcsc,
                    "ccid" => TransportKind::Ccid,
                    other => return Err(Usage::Transport(other.to_string())),
                }
            }
            "-h" | "--help" => return Err(Usage::Help),
            other => return Err(Usage::Unknown(other.to_string())),
        }
    }
    match (mode, url, cert) {
        (Some(s), None, None) => Ok(Mode::Demo(s)),
        (None, Some(url), Some(cert_path)) => {
            let cert = cardunlock_client::api::read_cert(std::path::Path::new(&cert_path))
                .map_err(Usage::File)?;
            let readers = cardunlock_client::card::Readers {
                transport,
                reader,
                verbose: false,
            };
            let iso_profiles = IsoProfiles::load(iso.as_deref()).map_err(Usage::File)?;
            Ok(Mode::Server {
                url,
                cert,
                readers,
                iso_profiles,
            })
        }
        (None, Some(_), None) => Err(Usage::NeedsCert),
        _ => Err(Usage::ChooseMode),
    }
}

fn spawn(mode: Mode, end: WorkerEnd) -> std::io::Result<()> {
    let worker = std::thread::Builder::new().name("unlock".into());
    match mode {
        #[cfg(feature = "demo")]
        Mode::Demo(scenario) => worker.spawn(move || {
            let argon2 = cardunlock_client::demo::Argon2Params::default();
            worker::run_demo(scenario, argon2, worker::Options::default(), end)
        })?,
        #[cfg(not(feature = "demo"))]
        Mode::Demo(scenario) => match scenario {},
        #[cfg(any(feature = "pcsc", feature = "ccid"))]
        Mode::Server {
            url,
            cert,
            readers,
            iso_profiles,
        } => worker.spawn(move || {
            let source = worker::Readers {
                readers,
                poll: std::time::Duration::from_millis(500),
            };
            let options = worker::Options {
                iso_profiles,
                ..worker::Options::default()
            };
            worker::run_server(&url, &cert, source, options, end)
        })?,
        #[cfg(not(any(feature = "pcsc", feature = "ccid")))]
        Mode::Server { .. } => worker.spawn(move || {
            let f = cardunlock_client::Failure::new(
                cardunlock_client::Kind::NoCard,
                "this build has no card transport (features `pcsc`, `ccid`): only --demo works",
            );
            let _ = end.report(link::Report::Failed(worker::problem(&f)));
            let _ = end.wait();
        })?,
    };
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match parse(&args) {
        Ok(m) => m,
        Err(e) => {
            if !matches!(e, Usage::Help) {
                eprintln!("cardunlock-gui: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (window_end, worker_end) = link::channel();
    if let Err(e) = spawn(mode, worker_end) {
        eprintln!("cardunlock-gui: cannot start the unlock thread: {e}");
        return ExitCode::from(1);
    }
    let mut app = UnlockApp::new(window_end);
    let unlocked = Rc::new(Cell::new(false));
    let seen = unlocked.clone();
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Smart card unlock")
            .with_inner_size([460.0, 560.0]),
        ..Default::default()
    };
    let result = eframe::run_ui_native("cardunlock-gui", options, move |ui, _frame| {
        app.ui(ui);
        if matches!(app.screen(), Screen::Unlocked) {
            seen.set(true);
        }
    });
    if let Err(e) = result {
        eprintln!("cardunlock-gui: cannot open the window: {e}");
        return ExitCode::from(1);
    }
    if unlocked.get() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
