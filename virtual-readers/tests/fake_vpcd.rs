//! The card side against a stand-in for vpcd (the reader side of the protocol, written here
//! from the protocol description): no pcscd needed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use cardunlock_sim::{Config, PivConfig, SimCard, ATR_PIV};
use cardunlock_virtual_readers::{serve, ReaderLock, ServedCard, VirtualCard};

/// The reader side: listens like vpcd, writes length and body in two writes like vpcd 3.3.
struct FakeVpcd {
    listener: TcpListener,
}

struct Link(TcpStream);

impl FakeVpcd {
    fn new() -> Self {
        Self {
            listener: TcpListener::bind("127.0.0.1:0").unwrap(),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap()
    }

    fn accept(&self) -> Link {
        let (s, _) = self.listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Link(s)
    }
}

impl Link {
    fn send(&mut self, payload: &[u8]) {
        let len = u16::try_from(payload.len()).unwrap().to_be_bytes();
        self.0.write_all(&len).unwrap();
        self.0.write_all(payload).unwrap();
    }

    fn recv(&mut self) -> Vec<u8> {
        let mut len = [0u8; 2];
        self.0.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        self.0.read_exact(&mut body).unwrap();
        body
    }

    fn exchange(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.send(apdu);
        self.recv()
    }

    /// True when the card closed the connection.
    fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.0.read(&mut b), Ok(0))
    }
}

const SELECT_PIV: [u8; 10] = [0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08];
const VERIFY_123456: [u8; 13] = [
    0x00, 0x20, 0x00, 0x80, 0x08, b'1', b'2', b'3', b'4', b'5', b'6', 0xFF, 0xFF,
];

fn shared_card() -> Arc<Mutex<SimCard>> {
    Arc::new(Mutex::new(SimCard::new(Config::Piv(PivConfig::factory()))))
}

#[test]
fn answers_atr_apdus_and_control_messages() {
    let vpcd = FakeVpcd::new();
    let card = shared_card();
    let mut served = ServedCard::spawn(Arc::clone(&card), vpcd.addr()).unwrap();
    let mut link = vpcd.accept();

    link.send(&[0x01]); // power on: no answer
    link.send(&[0x04]);
    assert_eq!(link.recv(), ATR_PIV);

    let r = link.exchange(&SELECT_PIV);
    assert_eq!(&r[r.len() - 2..], &[0x90, 0x00]);
    assert_eq!(link.exchange(&[0x00, 0x20, 0x00, 0x80]), [0x63, 0xC3]);
    assert_eq!(link.exchange(&VERIFY_123456), [0x90, 0x00]);
    assert!(card.lock().unwrap().pin_verified());

    link.send(&[0x02]); // reset: security status gone, counters kept
    link.send(&[0x04]);
    assert_eq!(link.recv(), ATR_PIV);
    assert!(!card.lock().unwrap().pin_verified());
    assert!(!card.lock().unwrap().is_selected());

    link.exchange(&SELECT_PIV);
    link.exchange(&VERIFY_123456);
    link.send(&[0x00]); // power off
    link.send(&[0x03]); // unknown control byte: ignored
    link.send(&[0x04]);
    assert_eq!(link.recv(), ATR_PIV);
    assert!(!card.lock().unwrap().pin_verified());
    assert_eq!(card.lock().unwrap().pin_tries_left(), 3);

    assert!(served.is_running());
    served.stop().unwrap();
    assert!(
        link.closed(),
        "stopping disconnects: the card leaves the reader"
    );
    assert!(!served.is_running());
    served.stop().unwrap(); // idempotent
}

#[test]
fn long_responses_are_framed_whole() {
    let vpcd = FakeVpcd::new();
    let _served =
        ServedCard::spawn(SimCard::new(Config::Piv(PivConfig::factory())), vpcd.addr()).unwrap();
    let mut link = vpcd.accept();
    link.exchange(&SELECT_PIV);
    // GET DATA CHUID: a few dozen bytes of data plus 90 00.
    let r = link.exchange(&[
        0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03, 0x5F, 0xC1, 0x02, 0x00,
    ]);
    assert!(r.len() > 20, "{r:02X?}");
    assert_eq!(&r[r.len() - 2..], &[0x90, 0x00]);
}

#[test]
fn vpcd_closing_ends_serving() {
    let vpcd = FakeVpcd::new();
    let served = ServedCard::spawn(shared_card(), vpcd.addr()).unwrap();
    let link = vpcd.accept();
    drop(link);
    for _ in 0..100 {
        if !served.is_running() {
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    assert!(!served.is_running());
}

#[test]
fn stop_handle_removes_the_card_from_another_thread() {
    let vpcd = FakeVpcd::new();
    let mut served = ServedCard::spawn(shared_card(), vpcd.addr()).unwrap();
    let mut link = vpcd.accept();
    link.exchange(&SELECT_PIV);
    let handle = served.stop_handle();
    thread::spawn(move || handle.stop()).join().unwrap();
    assert!(served.stop_handle().is_stopped());
    assert!(link.closed());
    served.stop().unwrap();
}

#[test]
fn connect_retries_until_vpcd_listens() {
    // Find a free port, release it, and listen on it only later.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let late = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        let l = TcpListener::bind(addr).unwrap();
        let (s, _) = l.accept().unwrap();
        let mut link = Link(s);
        link.send(&[0x04]);
        link.recv()
    });
    let served = ServedCard::spawn(shared_card(), addr).unwrap();
    assert_eq!(late.join().unwrap(), ATR_PIV);
    drop(served);
}

#[test]
fn serve_returns_when_the_stop_flag_is_raised() {
    let vpcd = FakeVpcd::new();
    let addr = vpcd.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let server = thread::spawn(move || {
        let mut card = SimCard::new(Config::Piv(PivConfig::factory()));
        serve(&mut card, addr, &flag)
    });
    let mut link = vpcd.accept();
    assert_eq!(link.exchange(&[0x00, 0x20, 0x00, 0x80]), [0x69, 0x85]);
    stop.store(true, Ordering::Release);
    server.join().unwrap().unwrap();
    assert!(link.closed());
}

fn verify_status<C: VirtualCard>(mut card: C) -> Vec<u8> {
    card.power_off();
    card.transmit(&[0x00, 0x20, 0x00, 0x80])
}

#[test]
fn boxed_and_borrowed_cards_are_virtual_cards() {
    let mut boxed: Box<dyn VirtualCard + Send> =
        Box::new(SimCard::new(Config::Piv(PivConfig::factory())));
    assert_eq!(boxed.atr(), ATR_PIV);
    assert_eq!(verify_status(&mut boxed), [0x69, 0x85]);
    assert_eq!(verify_status(boxed), [0x69, 0x85]);
}

#[test]
fn reader_lock_is_exclusive() {
    // Reader index 200 is not a vpcd reader: only this test uses its lock.
    let held = ReaderLock::acquire(200, Duration::from_secs(1)).unwrap();
    assert!(ReaderLock::acquire(200, Duration::from_millis(100)).is_err());
    drop(held);
    ReaderLock::acquire(200, Duration::from_secs(1)).unwrap();
}
