//! piv-authenticator-vpicc: a virtual PIV card for pcscd.
//!
//! Runs Nitrokey's `piv-authenticator` 0.7.0 applet on trussed's `virt` platform and
//! serves it to pcscd's vpcd driver (vsmartcard) over TCP. APDUs go through
//! `apdu-dispatch` 0.4 — the same dispatch layer the Nitrokey firmware puts between
//! its CCID/NFC front ends and the applets — so SELECT matching, command chaining
//! and `61xx`/GET RESPONSE behave as on the device.
//!
//! The vpcd protocol is spoken directly over a `std::net::TcpStream` (rather than
//! through the `vpicc` crate, which hides its socket) so that TCP_QUICKACK can be
//! set before every read: vpcd sends the length and the body of a message in two
//! writes, and without quick ACKs every APDU would wait ~40 ms on a delayed ACK.
//!
//! Message framing (vsmartcard "vpcd" protocol): 2-byte big-endian length, then
//! the payload. A 1-byte payload is a control message (00 power off, 01 power on,
//! 02 reset, 04 get ATR); anything longer is a command APDU, answered the same way.

mod backends;
mod glue;
mod vpcd;

use std::{
    io,
    path::PathBuf,
    process::ExitCode,
    sync::atomic::Ordering,
    thread::sleep,
    time::{Duration, Instant},
};

use apdu_dispatch::{dispatch::ApduDispatch, interchanges::Channel};
use piv_authenticator::{Authenticator, Options};
use trussed::virt::{StorageConfig, StoreConfig};

use backends::{ClientRef, PeerClient, PeerDispatch, BACKENDS};
use glue::{transmit, transmit_answering_le_absent, widen_short_piv_select};
use vpcd::{
    connect, install_signal_handlers, read_message, send_message, stopping, ReadEnd, QUICKACK,
};

const PROG: &str = "piv-authenticator-vpicc";

/// Default ATR: the one the `vpicc` crate (and piv-authenticator's own vpicc
/// example) presents: T=1, historical bytes 80 73 FF 01 00, TCK 0B.
const DEFAULT_ATR: &[u8] = &[
    0x3B, 0x95, 0x13, 0x81, 0x01, 0x80, 0x73, 0xFF, 0x01, 0x00, 0x0B,
];

/// Device secret handed to trussed-auth (constant: this is a test peer).
const HW_KEY: &[u8] = b"cardunlock piv-authenticator-vpicc test peer";

const RECONNECT_DELAY: Duration = Duration::from_millis(200);
const READ_POLL: Duration = Duration::from_millis(200);

struct Args {
    host: String,
    port: u16,
    state_dir: Option<PathBuf>,
    once: bool,
    atr: Vec<u8>,
    reset_clears_auth: bool,
    accept_short_aid: bool,
    answer_le_absent: bool,
    quickack: bool,
    verbose: bool,
}

const USAGE: &str = "\
usage: piv-authenticator-vpicc [--host 127.0.0.1] [--port 35963] [--state-dir DIR]
                               [--once] [--atr HEX] [--reset-clears-auth]
                               [--accept-short-aid] [--answer-le-absent]
                               [--yubico-compat] [-v]

Serves Nitrokey's piv-authenticator 0.7.0 (trussed virt platform) to vpcd.
  --host H             vpcd host (default 127.0.0.1)
  --port P             vpcd port: 35963 = \"Virtual PCD 00 00\", 35964 = \"... 00 01\"
  --state-dir DIR      keep the trussed file systems in DIR (PIN/PUK counters, keys
                       survive restarts); default: RAM, a factory-fresh card each start
  --once               exit when vpcd closes the connection (default: reconnect
                       every 200 ms)
  --atr HEX            ATR to present (default 3B951381018073FF01000B)
  --reset-clears-auth  on power off / reset / reconnect, drop the applet and build a
                       new one, clearing PIN-verified and management-key status.
                       Default: only deselect, as the applet itself does (its
                       deselect() is a no-op, so PIN/admin status survives resets)
  --accept-short-aid   NOT the applet's behaviour: rewrite SELECT by the 5-byte PIV
                       RID-prefix A0 00 00 03 08 (as yubico-piv-tool sends it) to the
                       9-byte AID before dispatch. The applet itself answers 6A82,
                       since it needs at least 9 bytes of its AID
  --answer-le-absent   NOT the applet's behaviour: when a command without Le gets
                       61xx and no data (apdu-dispatch treats absent Le as 0), fetch
                       the data with GET RESPONSE in the glue and answer data + SW
  --yubico-compat      both of the above (what yubico-piv-tool 2.2 needs)
  --no-quickack        do not set TCP_QUICKACK (to measure the delayed-ACK cost)
  -v, --verbose        log every APDU and response to stderr
";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        host: "127.0.0.1".into(),
        port: 35963,
        state_dir: None,
        once: false,
        atr: DEFAULT_ATR.to_vec(),
        reset_clears_auth: false,
        accept_short_aid: false,
        answer_le_absent: false,
        quickack: true,
        verbose: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--host" => args.host = value("--host")?,
            "--port" => {
                args.port = value("--port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--state-dir" => args.state_dir = Some(value("--state-dir")?.into()),
            "--once" => args.once = true,
            "--atr" => args.atr = parse_hex(&value("--atr")?)?,
            "--reset-clears-auth" => args.reset_clears_auth = true,
            "--accept-short-aid" => args.accept_short_aid = true,
            "--answer-le-absent" => args.answer_le_absent = true,
            "--yubico-compat" => {
                args.accept_short_aid = true;
                args.answer_le_absent = true;
            }
            "--no-quickack" => args.quickack = false,
            "-v" | "--verbose" => args.verbose = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.atr.len() < 2 || args.atr.len() > 33 {
        return Err("--atr must be 2..=33 bytes".into());
    }
    Ok(args)
}

fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = s.bytes().filter(|b| !matches!(b, b' ' | b':')).collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits in {s:?}"));
    }
    digits
        .chunks(2)
        .map(|p| {
            u8::from_str_radix(std::str::from_utf8(p).unwrap_or("zz"), 16)
                .map_err(|_| format!("bad hex {s:?}"))
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn log(msg: impl AsRef<str>) {
    eprintln!("{PROG}: {}", msg.as_ref());
}

/// How one connection to vpcd ended.
enum ConnEnd {
    Closed,
    Stopped,
    Failed(io::Error),
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{PROG}: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    install_signal_handlers();
    QUICKACK.store(args.quickack, Ordering::Relaxed);

    let store = match &args.state_dir {
        None => StoreConfig::ram(),
        Some(dir) => {
            if let Err(e) = std::fs::create_dir_all(dir) {
                log(format!("cannot create state dir {}: {e}", dir.display()));
                return ExitCode::from(1);
            }
            StoreConfig {
                internal: StorageConfig::filesystem(dir.join("internal.littlefs")),
                external: StorageConfig::filesystem(dir.join("external.littlefs")),
                volatile: StorageConfig::ram(),
            }
        }
    };
    log(format!(
        "piv-authenticator 0.7.0 on trussed virt, state: {}, ATR {}",
        args.state_dir
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "RAM (factory fresh)".into()),
        hex(&args.atr)
    ));

    trussed::virt::with_platform(store, |platform| {
        platform.run_client_with_backends(
            "piv",
            PeerDispatch::new(HW_KEY),
            BACKENDS,
            |mut client| run(&mut client, &args),
        )
    })
}

fn run(client: &mut PeerClient<'_>, args: &Args) -> ExitCode {
    let options = Options::default();
    let mut app = Authenticator::new(ClientRef(&mut *client), options.clone());
    let mut waiting_logged = false;
    let mut first_connection = true;

    loop {
        if stopping() {
            log("stopping (signal)");
            return ExitCode::SUCCESS;
        }
        let mut stream = match connect(&args.host, args.port) {
            Ok(s) => s,
            Err(e) => {
                if args.once && first_connection {
                    log(format!(
                        "cannot connect to vpcd at {}:{}: {e}",
                        args.host, args.port
                    ));
                    return ExitCode::from(1);
                }
                if !waiting_logged {
                    log(format!(
                        "waiting for vpcd at {}:{} ({e}); retrying every {} ms",
                        args.host,
                        args.port,
                        RECONNECT_DELAY.as_millis()
                    ));
                    waiting_logged = true;
                }
                sleep(RECONNECT_DELAY);
                continue;
            }
        };
        waiting_logged = false;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(READ_POLL));
        log(format!("connected to vpcd at {}:{}", args.host, args.port));

        // A (re)connection is a card insertion: start from a power-on state.
        if !first_connection {
            app.deselect();
            if args.reset_clears_auth {
                drop(app);
                app = Authenticator::new(ClientRef(&mut *client), options.clone());
            }
        }
        first_connection = false;

        let end = loop {
            // Per power cycle: a fresh dispatch over fresh interchange channels.
            let contact = Channel::new();
            let contactless = Channel::new();
            let (mut requester, contact_responder) = contact.split().expect("fresh channel");
            let (_unused, contactless_responder) = contactless.split().expect("fresh channel");
            let mut dispatch = ApduDispatch::new(contact_responder, contactless_responder);

            let event = loop {
                let msg = match read_message(&mut stream) {
                    Ok(m) => m,
                    Err(ReadEnd::Closed) => break Err(ConnEnd::Closed),
                    Err(ReadEnd::Stopped) => break Err(ConnEnd::Stopped),
                    Err(ReadEnd::Error(e)) => break Err(ConnEnd::Failed(e)),
                };
                let reply = match msg.as_slice() {
                    [] => continue,
                    [0x00] => break Ok("power off"),
                    [0x01] => {
                        log("power on");
                        continue;
                    }
                    [0x02] => break Ok("reset"),
                    [0x04] => args.atr.clone(),
                    [other] => {
                        log(format!("ignoring unknown control byte {other:02X}"));
                        continue;
                    }
                    apdu => {
                        let widened = if args.accept_short_aid {
                            widen_short_piv_select(apdu)
                        } else {
                            None
                        };
                        if let (Some(w), true) = (&widened, args.verbose) {
                            log(format!("--accept-short-aid: {} -> {}", hex(apdu), hex(w)));
                        }
                        let apdu = widened.as_deref().unwrap_or(apdu);
                        if args.verbose {
                            log(format!("> {}", hex(apdu)));
                        }
                        let started = Instant::now();
                        let response = if args.answer_le_absent {
                            transmit_answering_le_absent(
                                &mut dispatch,
                                &mut requester,
                                &mut app,
                                apdu,
                                args.verbose,
                            )
                        } else {
                            transmit(&mut dispatch, &mut requester, &mut app, apdu)
                        };
                        if args.verbose {
                            log(format!(
                                "< {} ({} us)",
                                hex(&response),
                                started.elapsed().as_micros()
                            ));
                        }
                        response
                    }
                };
                if let Err(e) = send_message(&mut stream, &reply) {
                    break Err(ConnEnd::Failed(e));
                }
            };
            drop(dispatch);

            match event {
                Ok(what) => {
                    log(format!(
                        "{what}{}",
                        if args.reset_clears_auth {
                            " (applet rebuilt: PIN/admin status cleared)"
                        } else {
                            " (applet deselected)"
                        }
                    ));
                    app.deselect();
                    if args.reset_clears_auth {
                        drop(app);
                        app = Authenticator::new(ClientRef(&mut *client), options.clone());
                    }
                }
                Err(end) => break end,
            }
        };

        match end {
            ConnEnd::Stopped => {
                log("stopping (signal)");
                return ExitCode::SUCCESS;
            }
            ConnEnd::Closed => log("vpcd closed the connection"),
            ConnEnd::Failed(e) => log(format!("connection error: {e}")),
        }
        if args.once {
            return ExitCode::SUCCESS;
        }
        sleep(RECONNECT_DELAY);
    }
}
