//! The card side of the firmware UART run (`uart-card`, `cardunlock_tests::uart_card`) against
//! the T=1 engine the firmware links, on the host: a stand-in for the firmware's USART (a TCP
//! stream with read timeouts, drained before each block like the firmware's driver) carries
//! `cardunlock_ccid::t1` blocks to [`serve`], which loses, garbles and delays bytes. QEMU runs
//! the real firmware in `scripts/firmware-uart.sh`; this checks the card side on its own, fast.

use std::io::{ErrorKind as StdKind, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use cardunlock_ccid::atr::Atr;
use cardunlock_ccid::t1::uart::{Uart, UartT1};
use cardunlock_ccid::t1::{T1Params, T1};
use cardunlock_core::driver::Driver;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock;
use cardunlock_tests::uart_card::{self, Options, Report, Schedule, NEW_PIN, PUK, RESET_REQUEST};
use embassy_futures::block_on;
use embedded_io_async::{ErrorKind, ErrorType, Read, Write};

const READ_TIMEOUT: Duration = Duration::from_millis(400);
const IDLE: Duration = Duration::from_millis(30);

/// The firmware's USART, on the host.
struct Port {
    stream: TcpStream,
    sending: bool,
    multiplier: u8,
}

impl Port {
    fn read_within(&mut self, buf: &mut [u8], wait: Duration) -> Result<usize, ErrorKind> {
        self.stream
            .set_read_timeout(Some(wait))
            .map_err(|_| ErrorKind::Other)?;
        match self.stream.read(buf) {
            Ok(0) => Err(ErrorKind::BrokenPipe),
            Ok(n) => Ok(n),
            Err(e) if matches!(e.kind(), StdKind::WouldBlock | StdKind::TimedOut) => {
                Err(ErrorKind::TimedOut)
            }
            Err(_) => Err(ErrorKind::Other),
        }
    }
}

impl ErrorType for Port {
    type Error = ErrorKind;
}

impl Read for Port {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        self.read_within(buf, READ_TIMEOUT * u32::from(self.multiplier))
    }
}

impl Write for Port {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        if !self.sending {
            let mut sink = [0u8; 64];
            while self.read_within(&mut sink, IDLE).is_ok() {}
            self.sending = true;
        }
        self.stream.write_all(buf).map_err(|_| ErrorKind::Other)?;
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), ErrorKind> {
        self.sending = false;
        self.stream.flush().map_err(|_| ErrorKind::Other)
    }
}

/// What the firmware does: reset, ATR, IFSD 8, the PIV unblock with `puk`.
fn firmware(stream: TcpStream, puk: &[u8]) -> Result<(), String> {
    let mut port = Port {
        stream,
        sending: false,
        multiplier: 1,
    };
    block_on(async {
        port.write_all(&[RESET_REQUEST])
            .await
            .map_err(|e| format!("{e:?}"))?;
        port.flush().await.map_err(|e| format!("{e:?}"))?;
        let mut atr = [0u8; 33];
        let mut n = port
            .read(&mut atr)
            .await
            .map_err(|e| format!("ATR: {e:?}"))?;
        while let Ok(m) = port.read_within(&mut atr[n..], IDLE) {
            n += m;
        }
        let atr = Atr::parse(&atr[..n]).map_err(|e| format!("{e:?}"))?;
        let params = T1Params {
            ifsd: 8,
            ..T1Params::from_atr(&atr)
        };
        let mut t1 = T1::new(params);
        let mut io = Uart::new(port, params.edc).with_wait_hook(|port, m| port.multiplier = m);
        t1.negotiate_ifsd(&mut io)
            .await
            .map_err(|e| e.to_string())?;
        let (puk, pin) = unlock::piv_input(&PinPolicy::PIV, puk, NEW_PIN, NEW_PIN)
            .map_err(|e| format!("{e:?}"))?;
        let mut driver = Driver::new(UartT1::new(t1, io));
        unlock::piv_unblock(&mut driver, &puk, &pin)
            .await
            .map_err(|e| e.to_string())
    })
}

/// Runs the stand-in firmware against [`uart_card::serve`]; the line closes when it is done.
fn run(puk: &'static [u8], mut schedule: Schedule) -> (Result<(), String>, Report) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fw = thread::spawn(move || firmware(TcpStream::connect(addr).unwrap(), puk));
    let (stream, _) = listener.accept().unwrap();
    let mut card = uart_card::blocked_card();
    let options = Options {
        idle_limit: Duration::from_secs(10),
        ..Options::default()
    };
    let report = uart_card::serve(stream, &mut card, &mut schedule, options).unwrap();
    (fw.join().unwrap(), report)
}

/// Through lost, garbled and delayed bytes both ways, the T=1 engine unblocks the card, and
/// the card side sees it so: new PIN, no PUK try spent, RESET RETRY COUNTER run once. The seed
/// is the one `scripts/firmware-uart.sh` uses: it hits every kind of fault.
#[test]
fn the_t1_engine_unblocks_the_card_through_a_faulty_line() {
    let (result, report) = run(PUK, Schedule::new(24, 0.3, 3));
    result.unwrap();
    assert!(report.unblocked(), "{report:?}");
    assert!(report.faults.every_kind(), "{report:?}");
    assert!(report.r_blocks > 0, "{report:?}");
    assert_eq!(report.wtx_holds, 1, "{report:?}");
}

/// The card side's verdict can fail: a wrong PUK leaves the card blocked with one PUK try
/// spent, and the report says it is not unblocked (so `uart-card` exits non-zero).
#[test]
fn a_wrong_puk_leaves_the_card_blocked_and_the_report_says_so() {
    let (result, report) = run(b"87654321", Schedule::none());
    let err = result.unwrap_err();
    assert!(err.contains("PUK"), "{err}");
    assert!(!report.unblocked(), "{report:?}");
    assert_eq!(report.puk_tries, Some(2));
    assert!(!report.new_pin_set);
    assert_eq!(report.faults.total(), 0);
}
