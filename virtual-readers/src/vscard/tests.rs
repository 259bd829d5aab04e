use super::*;
use cardunlock_sim::{Config, PivConfig, SimCard};
use std::io::Read;
use std::os::unix::net::UnixListener;
use std::sync::Arc;

/// QEMU's side of the handshake, written from the protocol description.
struct FakeQemu {
    stream: UnixStream,
}

impl FakeQemu {
    fn send(&mut self, t: u32, reader: u32, payload: &[u8]) {
        let mut m = Vec::new();
        m.extend_from_slice(&t.to_be_bytes());
        m.extend_from_slice(&reader.to_be_bytes());
        m.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        m.extend_from_slice(payload);
        self.stream.write_all(&m).unwrap();
    }

    fn receive(&mut self) -> (u32, u32, Vec<u8>) {
        let mut h = [0u8; 12];
        self.stream.read_exact(&mut h).unwrap();
        let t = u32::from_be_bytes(h[0..4].try_into().unwrap());
        let r = u32::from_be_bytes(h[4..8].try_into().unwrap());
        let n = u32::from_be_bytes(h[8..12].try_into().unwrap());
        let mut p = vec![0; n as usize];
        self.stream.read_exact(&mut p).unwrap();
        (t, r, p)
    }
}

fn socket_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("vscard-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&dir);
    dir
}

const SELECT_PIV: [u8; 15] = [
    0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00,
];

#[test]
fn handshake_inserts_the_card_and_apdus_reach_it() {
    let path = socket_path("handshake");
    let listener = UnixListener::bind(&path).unwrap();
    let card = SimCard::new(Config::Piv(PivConfig::factory().blocked()));
    let atr = card.atr().to_vec();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let p = path.clone();
    let server = thread::spawn(move || {
        let mut card = card;
        serve(&mut card, &p, &flag)
    });
    let (stream, _) = listener.accept().unwrap();
    let mut qemu = FakeQemu { stream };

    let (t, r, p) = qemu.receive();
    assert_eq!((t, r), (1, 0xFFFF_FFFF), "Init first");
    assert_eq!(p, [b'V', b'S', b'C', b'D', 0, 0, 0, 2, 0, 0, 0, 0]);
    qemu.send(1, 0xFFFF_FFFF, &init_payload());
    let (t, r, p) = qemu.receive();
    assert_eq!((t, r, p.len()), (3, 0, 0), "ReaderAdd for reader 0");
    qemu.send(2, 0, &0u32.to_be_bytes());
    let (t, r, p) = qemu.receive();
    assert_eq!((t, r), (5, 0), "then the ATR");
    assert_eq!(p, atr);
    qemu.send(2, 0, &0u32.to_be_bytes());

    qemu.send(7, 0, &SELECT_PIV);
    let (t, r, p) = qemu.receive();
    assert_eq!((t, r), (7, 0));
    assert_eq!(
        p[p.len() - 2..],
        [0x90, 0x00],
        "SELECT PIV answered {p:02x?}"
    );
    // The blocked card says so to an empty VERIFY.
    qemu.send(7, 0, &[0x00, 0x20, 0x00, 0x80]);
    let (_, _, p) = qemu.receive();
    assert_eq!(p, [0x69, 0x83]);

    // QEMU exits: the card side ends cleanly.
    drop(qemu);
    assert!(server.join().unwrap().is_ok());
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_refused_atr_is_an_error_and_stop_ends_serving() {
    let path = socket_path("refused");
    let listener = UnixListener::bind(&path).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let p = path.clone();
    let server = thread::spawn(move || {
        let mut card = SimCard::new(Config::Piv(PivConfig::factory()));
        serve(&mut card, &p, &flag)
    });
    let (stream, _) = listener.accept().unwrap();
    let mut qemu = FakeQemu { stream };
    qemu.receive();
    qemu.send(1, 0xFFFF_FFFF, &init_payload());
    qemu.receive();
    qemu.receive();
    qemu.send(2, 0, &1u32.to_be_bytes());
    let err = server.join().unwrap().unwrap_err();
    assert!(err.to_string().contains("VSCard error code 1"), "{err}");

    // A second card side that is stopped while idle returns Ok.
    let flag = Arc::clone(&stop);
    let p = path.clone();
    let server = thread::spawn(move || {
        let mut card = SimCard::new(Config::Piv(PivConfig::factory()));
        serve(&mut card, &p, &flag)
    });
    let (_stream, _) = listener.accept().unwrap();
    stop.store(true, Ordering::Release);
    assert!(server.join().unwrap().is_ok());
    let _ = std::fs::remove_file(&path);
}

#[test]
fn no_socket_fails_after_the_retry_time() {
    let path = socket_path("missing");
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let err = Connection::connect(&path, Duration::from_millis(200), &stop).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert!(err.to_string().contains("VSCard socket"));
}

#[test]
fn t1_only_atrs_become_t0_with_the_same_historical_bytes() {
    // The simulated PIV card's YubiKey ATR offers T=1 only.
    let piv = cardunlock_sim::ATR_PIV;
    assert_eq!(atr_protocols(&piv).map(|p| p.0), Some(false));
    let t0 = t0_atr(&piv);
    assert_eq!(t0[..2], [0x3B, 0x0D]);
    // The historical bytes sit before the TCK (0x40) a T=1 ATR ends with.
    let historical = &piv[piv.len() - 14..piv.len() - 1];
    assert_eq!(historical[..2], [0x80, 0x73]);
    assert_eq!(t0[2..], *historical);
    assert_eq!(atr_protocols(&t0), Some((true, historical)));
    // An ATR offering T=0 (TD1 = 80: T=0, TD2 = 01: T=1) is kept.
    let gids = cardunlock_sim::ATR_GIDS;
    assert_eq!(t0_atr(&gids), gids.to_vec());
    // No TD1: T=0 implied.
    assert_eq!(t0_atr(&[0x3B, 0x02, 0x11, 0x22]), [0x3B, 0x02, 0x11, 0x22]);
    // Truncated: kept as is (QEMU will refuse it).
    assert_eq!(t0_atr(&[0x3B, 0x8F, 0x81]), [0x3B, 0x8F, 0x81]);
}

#[test]
fn atr_parsing_never_panics() {
    // Every 1-, 2- and 3-byte prefix pattern, and long runs of TD bytes.
    for a in 0..=255u8 {
        for b in 0..=255u8 {
            let _ = t0_atr(&[0x3B, a, b]);
            let _ = t0_atr(&[0x3B, a, b, a, b, a, b, 0xFF, 0xFF, 0xFF]);
        }
        let _ = t0_atr(&[a]);
    }
    let _ = t0_atr(&[]);
}

/// PIV SELECT as the T=0 engine sends it: case 4 becomes a case 3 TPDU.
const SELECT_PIV_TPDU: [u8; 14] = [
    0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00,
];

/// Proves the SPICE-like bridge answers a case 4 TPDU with the whole response (data and
/// 90 00, no 61 XX) behind a T=0 ATR: what the guest test's second boot relies on.
#[test]
fn apdu_level_card_answers_case_4_with_data_and_status() {
    let mut apdu_card = SimCard::new(Config::Piv(PivConfig::factory().blocked()));
    let whole = apdu_card.transmit(&SELECT_PIV);
    let mut card = ApduLevel(SimCard::new(Config::Piv(PivConfig::factory().blocked())));
    assert_eq!(card.atr(), t0_atr(apdu_card.atr()));
    let r = card.transmit(&SELECT_PIV_TPDU);
    assert!(r.len() > 2);
    assert_eq!(r, whole);
    assert_eq!(r[r.len() - 2..], [0x90, 0x00]);
}

#[test]
fn t0_card_announces_data_with_61_and_serves_get_response() {
    let sim = SimCard::new(Config::Piv(PivConfig::factory().blocked()));
    let mut apdu_card = SimCard::new(Config::Piv(PivConfig::factory().blocked()));
    let whole = apdu_card.transmit(&SELECT_PIV);
    let data = &whole[..whole.len() - 2];
    assert!(!data.is_empty());
    let mut card = T0Card::new(sim);
    let r = card.transmit(&SELECT_PIV_TPDU);
    assert_eq!(r, [0x61, data.len() as u8]);
    // Asking for too much: 6C with the exact length.
    assert_eq!(
        card.transmit(&[0x00, 0xC0, 0x00, 0x00, 0x00]),
        [0x6C, data.len() as u8]
    );
    // In two parts: 61 with what is left, then the card's own 90 00.
    let r = card.transmit(&[0x00, 0xC0, 0x00, 0x00, 2]);
    assert_eq!(r[..2], data[..2]);
    assert_eq!(r[2..], [0x61, (data.len() - 2) as u8]);
    let r = card.transmit(&[0x00, 0xC0, 0x00, 0x00, (data.len() - 2) as u8]);
    assert_eq!(r[..r.len() - 2], data[2..]);
    assert_eq!(r[r.len() - 2..], [0x90, 0x00]);
    // Nothing pending any more: the card itself answers GET RESPONSE.
    assert_eq!(card.transmit(&[0x00, 0xC0, 0x00, 0x00, 0x00]), [0x69, 0x85]);
}

#[test]
fn t0_card_status_only_commands_and_case_2_lengths() {
    let mut card = T0Card::new(SimCard::new(Config::Piv(PivConfig::factory().blocked())));
    assert_eq!(card.transmit(&SELECT_PIV_TPDU)[0], 0x61);
    // Another command drops the pending data; VERIFY status of a blocked PIN.
    assert_eq!(card.transmit(&[0x00, 0x20, 0x00, 0x80, 0x00]), [0x69, 0x83]);
    // An unknown INS: status only.
    assert_eq!(card.transmit(&[0x00, 0x01, 0x00, 0x00, 0x00]), [0x6D, 0x00]);
    // Not a TPDU at all: passed to the card, which refuses it.
    assert_eq!(card.transmit(&[0x00, 0xA4]).len(), 2);
}

#[test]
fn headers_round_trip() {
    for t in [1, 2, 3, 4, 5, 6, 7, 8, 0xDEAD] {
        let h = Header {
            msg_type: MsgType::from_u32(t),
            reader: 0x0102_0304,
            length: 77,
        };
        assert_eq!(Header::parse(&h.encode()), h);
        assert_eq!(h.msg_type.to_u32(), t);
    }
}
