//! Per-APDU latency through pcscd + vpcd to the simulated card, with and without TCP_QUICKACK
//! on the card side. Needs pcscd running (`scripts/start-pcscd.sh`).
//!
//! `cargo run --release -p cardunlock-pcsc --example vpcd_latency [APDUS]`

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cardunlock_core::Transport;
use cardunlock_pcsc::{Pcsc, PcscError, ShareMode};
use cardunlock_sim::{Config, PivConfig, SimCard};
use cardunlock_virtual_readers::{reader_addr, reader_name, ReaderLock, ServeOptions, ServedCard};
use embassy_futures::block_on;

const SELECT_PIV: [u8; 15] = [
    0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00,
];
const VERIFY_STATUS: [u8; 4] = [0x00, 0x20, 0x00, 0x80];

fn measure(
    pcsc: &Pcsc,
    quickack: bool,
    apdus: u32,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let reader = reader_name(0);
    pcsc.wait_for_removal(&reader, Duration::from_secs(10))?;
    let card = Arc::new(Mutex::new(SimCard::new(Config::Piv(PivConfig::factory()))));
    let options = ServeOptions {
        quickack,
        ..ServeOptions::default()
    };
    let _served = ServedCard::spawn_with(card, reader_addr(0), options)?;
    pcsc.wait_for_card(&reader, Duration::from_secs(10))?;
    let mut transport = pcsc.connect(&reader, ShareMode::Shared)?;
    let mut session = transport.begin()?;
    let mut rx = [0u8; 258];
    block_on(session.transmit(&SELECT_PIV, &mut rx))?;
    let start = Instant::now();
    for _ in 0..apdus {
        let n = block_on(session.transmit(&VERIFY_STATUS, &mut rx))?;
        if rx.get(..n) != Some(&[0x63, 0xC3][..]) {
            return Err(Box::new(PcscError::ResponseTooLong));
        }
    }
    Ok(start.elapsed())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let apdus: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let pcsc = Pcsc::establish()?;
    let _lock = ReaderLock::acquire(0, Duration::from_secs(300))?;
    for quickack in [true, false] {
        let t = measure(&pcsc, quickack, apdus)?;
        println!(
            "TCP_QUICKACK {}: {apdus} VERIFY-status APDUs in {:.1} ms = {:.3} ms/APDU",
            if quickack { "on " } else { "off" },
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() * 1e3 / f64::from(apdus)
        );
    }
    Ok(())
}
