//! Probes the USB CCID readers of this machine without PC/SC (feature `nusb`):
//!
//! ```text
//! cargo run -p cardunlock-ccid --features nusb --example ccid_probe
//! ```
//!
//! Lists every CCID reader, opens the first (or the one whose index is given as the argument),
//! shows the card insertion events already reported, the slot status, powers the card on and
//! prints its ATR, asks for the protocol parameters, selects the PIV application and reads the
//! PIN's retry counter (VERIFY without data: no PIN is sent), runs the ABORT sequence and
//! selects again. Exits 0 when the PIV SELECT answered 9000 both times. Run inside the QEMU
//! guest by `scripts/qemu-ccid/test.sh`.

#[cfg(not(feature = "nusb"))]
fn main() {
    eprintln!("ccid_probe needs the nusb feature: cargo run --features nusb --example ccid_probe");
    std::process::exit(2);
}

#[cfg(feature = "nusb")]
fn main() {
    match futures_lite::future::block_on(probe::run()) {
        Ok(()) => println!("ccid_probe: OK"),
        Err(e) => {
            println!("ccid_probe: FAILED: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(feature = "nusb")]
mod probe {
    use cardunlock_ccid::clock::Clock;
    use cardunlock_ccid::session::Session;
    use cardunlock_ccid::usb::{self, ReaderEvent, StdClock};
    use futures_lite::future;

    /// SELECT the PIV application (NIST SP 800-73-4 AID), Le = 00.
    const SELECT_PIV: [u8; 15] = [
        0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00,
    ];
    /// VERIFY of the PIV application PIN without data: the status word tells the tries left.
    const PIN_STATUS: [u8; 4] = [0x00, 0x20, 0x00, 0x80];

    fn hex(bytes: &[u8]) -> String {
        bytes
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn sw(resp: &[u8]) -> u16 {
        match resp {
            [.., a, b] => u16::from_be_bytes([*a, *b]),
            _ => 0,
        }
    }

    pub async fn run() -> Result<(), String> {
        let readers = usb::list().map_err(|e| e.to_string())?;
        println!("ccid_probe: {} CCID reader(s)", readers.len());
        for (i, r) in readers.iter().enumerate() {
            let d = &r.descriptor;
            println!(
                "  [{i}] {} ({:04x}:{:04x}, id {}): {:?}, protocols {:#x}, features {:#010x}, \
                 max message {}, slots {}, endpoints {:?}",
                r.name,
                r.vendor_id,
                r.product_id,
                r.id(),
                d.exchange_level(),
                d.protocols,
                d.features,
                d.max_message_length,
                u16::from(d.max_slot_index) + 1,
                r.endpoints,
            );
        }
        let index: usize = match std::env::args().nth(1) {
            Some(a) => a.parse().map_err(|_| format!("bad reader index {a}"))?,
            None => 0,
        };
        let reader = readers.get(index).ok_or("no CCID reader found")?;
        let mut pipe = usb::open(reader).map_err(|e| e.to_string())?;
        println!("ccid_probe: opened {}", pipe.name());
        // CCID_PROBE_HOLD_MS: only hold the reader that long (another program's claim, for the
        // "reader in use" test), then exit.
        if let Some(ms) = std::env::var("CCID_PROBE_HOLD_MS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            println!("ccid_probe: held the reader {ms} ms");
            return Ok(());
        }

        // Insertion events the reader reported (QEMU sends one when the card arrives).
        if let Some(mut events) = pipe.take_events() {
            let mut clock = StdClock::new();
            let until = clock.now_ms() + 300;
            loop {
                let next = future::or(async { Some(events.next_event().await) }, async {
                    clock.sleep_until_ms(until).await;
                    None
                })
                .await;
                match next {
                    Some(Ok(ReaderEvent::SlotChange(s))) => println!(
                        "ccid_probe: slot change: slot 0 present={} changed={}",
                        s.present(0),
                        s.changed(0)
                    ),
                    Some(Ok(other)) => println!("ccid_probe: interrupt message {other:?}"),
                    Some(Err(e)) => println!("ccid_probe: interrupt endpoint: {e}"),
                    None => break,
                }
            }
        }

        let control = pipe.control();
        let mut session: Session<usb::UsbPipe, StdClock, usb::UsbControl> =
            Session::new(pipe, StdClock::new(), control, &reader.descriptor, 0)
                .map_err(|e| format!("session: {e}"))?;
        let status = session
            .slot_status()
            .await
            .map_err(|e| format!("GetSlotStatus: {e}"))?;
        println!("ccid_probe: slot status {status:?}");
        let atr = session
            .power_on()
            .await
            .map_err(|e| format!("power on: {e}"))?;
        println!("ccid_probe: ATR {}", hex(atr));
        match session.get_parameters().await {
            Ok(p) => println!("ccid_probe: parameters {p:?}"),
            Err(e) => println!("ccid_probe: GetParameters failed: {e}"),
        }
        println!(
            "ccid_probe: stray bytes after replies dropped so far: {}",
            session.io().trailing_bytes_dropped()
        );

        let mut resp = [0u8; 258];
        let n = session
            .transmit_apdu(&SELECT_PIV, &mut resp)
            .await
            .map_err(|e| format!("SELECT PIV: {e}"))?;
        let select = resp.get(..n).unwrap_or(&[]);
        println!(
            "ccid_probe: SELECT PIV -> SW {:04X} ({} bytes)",
            sw(select),
            n
        );
        let first = sw(select);

        let n = session
            .transmit_apdu(&PIN_STATUS, &mut resp)
            .await
            .map_err(|e| format!("VERIFY status: {e}"))?;
        let pin = sw(resp.get(..n).unwrap_or(&[]));
        let meaning = match pin {
            0x9000 => "verified".to_string(),
            0x6983 => "PIN blocked".to_string(),
            s if s & 0xFFF0 == 0x63C0 => format!("{} PIN tries left", s & 0xF),
            _ => "?".to_string(),
        };
        println!("ccid_probe: PIN status -> SW {pin:04X} ({meaning})");

        match session.abort().await {
            Ok(()) => println!("ccid_probe: ABORT sequence done"),
            Err(e) => println!("ccid_probe: ABORT sequence failed: {e}"),
        }
        let n = session
            .transmit_apdu(&SELECT_PIV, &mut resp)
            .await
            .map_err(|e| format!("SELECT PIV after ABORT: {e}"))?;
        let again = sw(resp.get(..n).unwrap_or(&[]));
        println!("ccid_probe: SELECT PIV after ABORT -> SW {again:04X}");
        if let Err(e) = session.power_off().await {
            println!("ccid_probe: power off failed: {e}");
        }
        if first == 0x9000 && again == 0x9000 {
            Ok(())
        } else {
            Err(format!("SELECT PIV answered {first:04X} / {again:04X}"))
        }
    }
}
