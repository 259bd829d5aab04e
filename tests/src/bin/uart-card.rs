//! `uart-card`: the simulated PIV card at the other end of the firmware's UART (see
//! `cardunlock_tests::uart_card`). Listens on a TCP address (QEMU's `-serial tcp:...` connects
//! to it), prints `uart-card: listening on ADDR`, plays the card with seeded line faults until
//! the firmware closes the line, then prints what happened and exits 0 only if the card ended
//! unblocked with the new PIN, no PUK try spent and RESET RETRY COUNTER run once.
//!
//! Options: `--listen ADDR` (default `127.0.0.1:0`, any free port), `--seed N` (default 1),
//! `--rate P` (chance that a block is hit, default 0.3), `--gap N` (clean blocks between two
//! faults, default 3), `--require-every-fault` (also fail unless every kind of fault happened),
//! `--trace` (every block both ways on stderr, with its fault).

use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use cardunlock_tests::uart_card::{self, Options, Schedule};

struct Args {
    listen: SocketAddr,
    seed: u64,
    rate: f64,
    gap: u32,
    require_every_fault: bool,
    trace: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        seed: 1,
        rate: 0.3,
        gap: 3,
        require_every_fault: false,
        trace: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--require-every-fault" {
            args.require_every_fault = true;
            continue;
        }
        if flag == "--trace" {
            args.trace = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |what: &str| format!("{flag}: {what} expected, got {value:?}");
        match flag.as_str() {
            "--listen" => args.listen = value.parse().map_err(|_| bad("an address"))?,
            "--seed" => args.seed = value.parse().map_err(|_| bad("a number"))?,
            "--rate" => {
                args.rate = value
                    .parse()
                    .ok()
                    .filter(|r: &f64| (0.0..=1.0).contains(r))
                    .ok_or_else(|| bad("a probability"))?
            }
            "--gap" => args.gap = value.parse().map_err(|_| bad("a number"))?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(args)
}

/// Waits up to `limit` for the firmware's line to connect.
fn accept(listener: &TcpListener, limit: Duration) -> std::io::Result<std::net::TcpStream> {
    listener.set_nonblocking(true)?;
    let start = Instant::now();
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                return Ok(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && start.elapsed() < limit => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("uart-card: {e}");
            return ExitCode::from(2);
        }
    };
    let options = Options {
        trace: args.trace,
        ..Options::default()
    };
    let listener = match TcpListener::bind(args.listen).and_then(|l| Ok((l.local_addr()?, l))) {
        Ok((addr, l)) => {
            println!("uart-card: listening on {addr}");
            l
        }
        Err(e) => {
            eprintln!("uart-card: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let stream = match accept(&listener, options.idle_limit) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("uart-card: no firmware connected: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut card = uart_card::blocked_card();
    let mut schedule = Schedule::new(args.seed, args.rate, args.gap);
    let report = match uart_card::serve(stream, &mut card, &mut schedule, options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("uart-card: the line failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let f = report.faults;
    println!(
        "uart-card: faults (seed {}): to the card {} lost, {} garbled; from the card {} lost, {} garbled, {} delayed",
        args.seed, f.dropped_to_card, f.garbled_to_card, f.dropped_from_card, f.garbled_from_card, f.delayed_from_card
    );
    println!(
        "uart-card: {} blocks from the firmware ({} incomplete), {} R-blocks, {} RESYNCH, {} answer(s) held back after a WTX",
        report.blocks, report.incomplete, report.r_blocks, report.resynchs, report.wtx_holds
    );
    println!(
        "uart-card: card: new PIN {}, PIN tries {}, PUK tries {}, RESET RETRY COUNTER run {} time(s)",
        if report.new_pin_set { "set" } else { "NOT set" },
        report.pin_tries,
        report.puk_tries.map_or("-".to_string(), |n| n.to_string()),
        report.unblocks
    );
    if !report.unblocked() {
        println!("uart-card: FAILED: the card is not unblocked with the new PIN");
        return ExitCode::FAILURE;
    }
    if args.require_every_fault && !f.every_kind() {
        println!("uart-card: FAILED: not every kind of fault happened (try another seed)");
        return ExitCode::FAILURE;
    }
    println!("uart-card: OK: the card is unblocked with the new PIN");
    ExitCode::SUCCESS
}
