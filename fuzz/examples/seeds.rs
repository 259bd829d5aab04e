//! Writes the seed inputs of every fuzz target into `corpus/<target>/seed-*`: real messages of
//! real runs (the simulated PIV, GIDS and ISO cards, the simulated CCID reader at APDU and TPDU
//! level, the card-side T=1), in each target's input format.
//!
//! `cargo +nightly run --example seeds` from `fuzz/` (not needed in CI: the seeds are committed).

use std::path::Path;

use cardunlock_ccid::atr::Edc;
use cardunlock_ccid::codec::HEADER_LEN;
use cardunlock_ccid::descriptor::{features, ClassDescriptor, ExchangeLevel};
use cardunlock_ccid::session::Session;
use cardunlock_ccid::t1::{BlockIo, ExchangeError, T1Params, T1};
use cardunlock_ccid_sim::tpdu::{t0_atr, t1_atr, T1Card};
use cardunlock_ccid_sim::{ApduCard, ReaderSim, SimConfig, SlotCard, TestClock};
use cardunlock_core::crypto::AdminKey;
use cardunlock_core::driver::Driver;
use cardunlock_core::flow::LocalKey;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock::{self, PivUnblockOptions, Select};
use cardunlock_fuzz::{frames_of, push_frame, TAPE_BYTES};
use cardunlock_sim::{Config, GidsConfig, IsoConfig, PivConfig, SimCard};
use cardunlock_testkit::Recorder;
use embassy_futures::block_on;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("seed");
}

fn piv() -> SimCard {
    SimCard::new(Config::Piv(PivConfig::factory().blocked()))
}
fn gids() -> SimCard {
    SimCard::new(Config::Gids(GidsConfig::factory().blocked()))
}
fn iso() -> SimCard {
    SimCard::new(Config::Iso(IsoConfig::factory().blocked()))
}

/// Every command of a run with the card's answer to it.
type Exchanges = Vec<(Vec<u8>, Vec<u8>)>;

/// Runs flow `which` (as the `flows` target numbers them) over `card`; returns the answers as
/// frames and every exchange.
fn run_flow(which: u8, card: SimCard) -> (Vec<u8>, Exchanges) {
    let rec = Recorder::new(card, vec![0; TAPE_BYTES]);
    let mut driver = Driver::new(rec);
    let mut key = LocalKey::new(AdminKey::piv_default(), cardunlock_sim::TestRng::counter(3));
    let (puk, piv_pin) =
        unlock::piv_input(&PinPolicy::PIV, b"12345678", b"840259", b"840259").expect("input");
    let pin = unlock::admin_input(&PinPolicy::GIDS, b"Xk9w2", b"Xk9w2").expect("input");
    let ok = match which {
        0 => block_on(unlock::piv_unblock(&mut driver, &puk, &piv_pin)).is_ok(),
        1 => block_on(unlock::piv_unblock_with(
            &mut driver,
            &puk,
            &piv_pin,
            PivUnblockOptions::LEAN,
        ))
        .is_ok(),
        2 => block_on(unlock::gids_unblock_with(
            &mut driver,
            &pin,
            [7; 16],
            &mut key,
            Select::Application,
        ))
        .is_ok(),
        3 => block_on(unlock::iso_unblock_with(
            &mut driver,
            cardunlock_sim::ISO_PROFILE,
            &pin,
            &mut key,
            Select::Application,
        ))
        .is_ok(),
        _ => block_on(unlock::read_status(
            &mut driver,
            cardunlock_sim::ISO_PROFILE,
        ))
        .is_ok(),
    };
    assert!(ok, "seed flow {which} failed against the simulated card");
    let (_, tape) = driver.into_inner().into_parts();
    let log = tape
        .exchanges()
        .map(|e| {
            let answer = e.answer.expect("the simulated card answers");
            (e.command.unwrap_or_default().to_vec(), answer.to_vec())
        })
        .collect();
    (frames_of(tape.exchanges()), log)
}

/// A byte pipe in front of the simulated reader that keeps what went each way, one reply per
/// flushed command.
struct Tee<P> {
    inner: P,
    written: Vec<Vec<u8>>,
    pending: Vec<u8>,
    replies: Vec<Vec<u8>>,
}

impl<P: embedded_io_async::ErrorType> embedded_io_async::ErrorType for Tee<P> {
    type Error = P::Error;
}

impl<P: embedded_io_async::Read> embedded_io_async::Read for Tee<P> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, P::Error> {
        let n = self.inner.read(buf).await?;
        if let Some(last) = self.replies.last_mut() {
            last.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }
}

impl<P: embedded_io_async::Write> embedded_io_async::Write for Tee<P> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, P::Error> {
        let n = self.inner.write(buf).await?;
        self.pending.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    async fn flush(&mut self) -> Result<(), P::Error> {
        self.inner.flush().await?;
        self.written.push(std::mem::take(&mut self.pending));
        self.replies.push(Vec::new());
        Ok(())
    }
}

/// A PIV unblock through a session to a simulated reader; returns the messages each way.
fn ccid_run<S: SlotCard>(card: S, desc: ClassDescriptor) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let clock = TestClock::new();
    let config = SimConfig::new(desc);
    let reader = ReaderSim::new(card, config, &clock).into_shared();
    let tee = Tee {
        inner: reader.pipe(),
        written: Vec::new(),
        pending: Vec::new(),
        replies: Vec::new(),
    };
    let session = Session::<_, _, _>::new(tee, clock, reader.control(), &desc, 0).expect("session");
    let mut driver = Driver::new(session);
    let (puk, pin) =
        unlock::piv_input(&PinPolicy::PIV, b"12345678", b"840259", b"840259").expect("input");
    block_on(unlock::piv_unblock(&mut driver, &puk, &pin))
        .expect("unblock through the simulated reader");
    let (tee, _, _) = driver.into_inner().into_parts();
    (tee.written, tee.replies)
}

/// The card-side T=1 as a `BlockIo`, keeping every reply block.
struct T1Tap {
    card: T1Card<SimCard>,
    replies: Vec<Vec<u8>>,
    sent: Vec<Vec<u8>>,
}

impl BlockIo for T1Tap {
    type Error = ();
    async fn exchange(
        &mut self,
        block: &[u8],
        reply: &mut [u8],
        _bwt: u8,
    ) -> Result<usize, ExchangeError<()>> {
        self.sent.push(block.to_vec());
        let r = self
            .card
            .xfr_block(block)
            .map_err(|_| ExchangeError::Mute)?;
        reply[..r.len()].copy_from_slice(&r);
        self.replies.push(r.clone());
        Ok(r.len())
    }
}

fn main() {
    // Flows, and the command / response / data seeds of the parsers.
    let mut all = Vec::new();
    for (which, card) in [
        (0u8, piv()),
        (1, piv()),
        (2, gids()),
        (3, iso()),
        (4, piv()),
        (5, gids()),
    ] {
        let (frames, log) = run_flow(which, card);
        for flags in [0u8, 1, 2 | 0x80] {
            let mut input = vec![which, flags];
            input.extend_from_slice(&frames);
            write("flows", &format!("{which}-{flags:02x}"), &input);
        }
        all.extend(log);
    }
    let (_, iso_status) = run_flow(4, iso());
    all.extend(iso_status);
    for (i, (cmd, resp)) in all.iter().enumerate() {
        write("apdu", &format!("cmd-{i:02}"), cmd);
        write("apdu", &format!("resp-{i:02}"), resp);
        let data = &resp[..resp.len() - 2];
        if !data.is_empty() {
            write("tlv", &format!("{i:02}"), data);
            write("piv_data", &format!("{i:02}"), data);
            write("gids_answers", &format!("{i:02}"), data);
        }
        if cmd.get(1) == Some(&0x84) {
            write(
                "iso_status",
                &format!("challenge-{i:02}"),
                &[&[0u8][..], resp].concat(),
            );
        }
    }
    write(
        "iso_status",
        "aes",
        &[&[1u8][..], &[0x11; 16], &[0x90, 0x00]].concat(),
    );
    write("iso_status", "blocked", &[0, 0x69, 0x83]);

    // The CCID session and codec: real exchanges at APDU and TPDU level.
    let mut n = 0;
    let short = ClassDescriptor::TYPICAL.with_level(ExchangeLevel::ShortApdu);
    let extended = ClassDescriptor::TYPICAL.with_level(ExchangeLevel::ShortExtendedApdu);
    let mut tpdu = ClassDescriptor::TYPICAL.with_level(ExchangeLevel::Tpdu);
    tpdu.features = features::AUTO_VOLTAGE | features::LEVEL_TPDU;
    for (level_byte, feat, written, replies) in [
        (1u8, 0u8, ccid_run(ApduCard::new(piv()), short)),
        (2, 0, ccid_run(ApduCard::new(piv()), extended)),
        (0, 1, ccid_run(T1Card::new(piv()), tpdu)),
    ]
    .map(|(l, f, (w, r))| (l, f, w, r))
    {
        let mut input = vec![level_byte, feat, 0];
        for r in &replies {
            let mut frame = vec![0u8];
            frame.extend_from_slice(r);
            push_frame(&mut input, &frame);
        }
        write("ccid_session", &format!("{level_byte}"), &input);
        for m in written.iter().chain(replies.iter()) {
            // One message each (a reply read in parts is still one message here).
            if m.len() >= HEADER_LEN {
                write("ccid_codec", &format!("{n:03}"), m);
                n += 1;
            }
        }
    }
    write("ccid_codec", "descriptor", &short.encode());
    write("ccid_codec", "slot-change", &[0x50, 0x03]);

    // ATRs (with a PPS answer after them).
    for (name, atr) in [
        (
            "sim",
            SimCard::new(Config::Piv(PivConfig::factory()))
                .atr()
                .to_vec(),
        ),
        ("t1-lrc", t1_atr(b"cardunlock", 254, Edc::Lrc)),
        ("t1-crc", t1_atr(b"cu", 32, Edc::Crc)),
        ("t0", t0_atr(b"cardunlock")),
    ] {
        let mut input = vec![atr.len() as u8];
        input.extend_from_slice(&atr);
        input.extend_from_slice(&[0xFF, 0x11, 0x13, 0xFD]);
        write("atr", name, &input);
    }

    // T=1: the blocks of a PIV unblock with the card-side T=1 (IFS negotiation, chaining).
    for (name, ifsc, edc) in [("lrc", 254u8, Edc::Lrc), ("crc-small", 16, Edc::Crc)] {
        let card = T1Card::new(piv()).with_ifsc(ifsc).with_edc(edc);
        let mut io = T1Tap {
            card,
            replies: Vec::new(),
            sent: Vec::new(),
        };
        let mut t1 = T1::new(T1Params {
            ifsc,
            edc,
            ..T1Params::default()
        });
        block_on(t1.negotiate_ifsd(&mut io)).expect("IFSD");
        let mut resp = [0u8; 300];
        block_on(t1.transceive(
            &mut io,
            &[0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0, 0, 3, 8],
            &mut resp,
        ))
        .expect("SELECT over T=1");
        let mut input = vec![2 | u8::from(edc == Edc::Crc), ifsc, 8];
        for r in &io.replies {
            push_frame(&mut input, r);
        }
        write("t1_engine", name, &input);
        for (i, b) in io.sent.iter().chain(io.replies.iter()).enumerate() {
            write("t1_block", &format!("{name}-{i:02}"), b);
        }
    }

    // The online-unlock contract: one body of each request and reply.
    let token = "ab".repeat(32);
    for (name, body) in [
        ("start", r#"{"card":{"profile":"piv","identity":"3019d4e739da739ced39ce739d836858210842108421c84210c3eb"}}"#.to_owned()),
        ("answers", format!(r#"{{"session":"{token}","answers":["Rex","Springfield"]}}"#)),
        ("admin-encrypt", format!(r#"{{"session":"{token}","request":{{"kind":"encrypt","algorithm":"3des","block":"0011223344556677"}}}}"#)),
        ("admin-gids", format!(r#"{{"session":"{token}","request":{{"kind":"gids_cryptogram","r1":"{r}","r2":"{r}"}}}}"#, r = "07".repeat(16))),
        ("admin-card", format!(r#"{{"session":"{token}","request":{{"kind":"gids_card_cryptogram","cryptogram":"{c}"}}}}"#, c = "5a".repeat(40))),
        ("puk", format!(r#"{{"session":"{token}","puk_tries_left":3}}"#)),
        ("complete", format!(r#"{{"session":"{token}","outcome":"unlocked","puk_rotated":true,"detail":"ok"}}"#)),
        ("start-reply", format!(r#"{{"session":"{token}","questions":["Pet?","Town?"],"attempts_left":5,"pin_policy":{{"min_len":6,"max_len":8,"charset":"digits","forbid_repeated":true,"forbid_sequences":true,"builtin_blocklist":true,"custom_blocklist":["246810"]}}}}"#)),
        ("answers-reply", r#"{"verified":true,"user":{"name":"Michael Benson","email":"m@example.invalid"}}"#.to_owned()),
        ("admin-answer", r#"{"answer":"00112233445566778899aabbccddeeff"}"#.to_owned()),
        ("puk-reply", r#"{"puk_candidates":["83920174"],"next_puk":"19283746","tries_left":3}"#.to_owned()),
        ("error", r#"{"error":"rate_limited","message":"Too many requests.","retry_after":30}"#.to_owned()),
    ] {
        write("server_requests", name, body.as_bytes());
    }
    println!("seeds written");
}
