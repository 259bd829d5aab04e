//! A CCID reader in memory, at short APDU level, with a card that accepts every command: the
//! other end of the `embedded-io-async` pipe the CCID session writes to. A real firmware puts its
//! USB host stack (or a serial bridge to a reader) here.

use cardunlock_ccid::codec::{
    ClockStatus, CommandStatus, Header, IccStatus, Request, RequestKind, Response, ResponseKind,
    Status, HEADER_LEN, SHORT_MESSAGE_LEN,
};
use core::convert::Infallible;

/// The ATR of the card in the slot (T=1, a PIV applet).
const ATR: &[u8] = &[0x3B, 0x80, 0x80, 0x01, 0x01];

/// The reader: collects one message from the session, answers it on `flush`.
pub struct LoopbackReader {
    rx: [u8; SHORT_MESSAGE_LEN],
    rx_len: usize,
    tx: [u8; 64],
    tx_len: usize,
    tx_pos: usize,
}

impl LoopbackReader {
    /// A reader with a card inserted and not yet powered.
    pub const fn new() -> Self {
        Self {
            rx: [0; SHORT_MESSAGE_LEN],
            rx_len: 0,
            tx: [0; 64],
            tx_len: 0,
            tx_pos: 0,
        }
    }

    fn answer(&mut self) {
        let message = &self.rx[..self.rx_len];
        let ok = Status::new(IccStatus::Active, CommandStatus::Ok);
        let reply = match Request::parse(message) {
            Ok(req) => {
                let kind = match req.kind {
                    RequestKind::IccPowerOn(_) => ResponseKind::DataBlock { chain: 0, data: ATR },
                    RequestKind::XfrBlock { data, .. } => {
                        // Keep the command observable so the optimizer cannot drop the encoder.
                        let ok = core::hint::black_box(data).len() >= 4;
                        ResponseKind::DataBlock {
                            chain: 0,
                            data: if ok { &[0x90, 0x00] } else { &[0x6F, 0x00] },
                        }
                    }
                    _ => ResponseKind::SlotStatus {
                        clock: ClockStatus::Running,
                    },
                };
                Response {
                    slot: req.slot,
                    seq: req.seq,
                    status: ok,
                    kind,
                }
            }
            Err(_) => {
                let seq = Header::parse(message).map(|h| h.seq).unwrap_or(0);
                Response {
                    slot: 0,
                    seq,
                    status: Status::new(
                        IccStatus::Active,
                        CommandStatus::Failed(cardunlock_ccid::codec::SlotError::CommandNotSupported),
                    ),
                    kind: ResponseKind::SlotStatus {
                        clock: ClockStatus::Running,
                    },
                }
            }
        };
        self.tx_len = reply.encode(&mut self.tx).unwrap_or(0);
        self.tx_pos = 0;
        self.rx_len = 0;
    }
}

impl embedded_io_async::ErrorType for LoopbackReader {
    type Error = Infallible;
}

impl embedded_io_async::Write for LoopbackReader {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        let room = &mut self.rx[self.rx_len..];
        let n = buf.len().min(room.len());
        room[..n].copy_from_slice(&buf[..n]);
        self.rx_len += n;
        Ok(n)
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        if self.rx_len >= HEADER_LEN {
            self.answer();
        }
        Ok(())
    }
}

impl embedded_io_async::Read for LoopbackReader {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let pending = &self.tx[self.tx_pos..self.tx_len];
        let n = buf.len().min(pending.len());
        buf[..n].copy_from_slice(&pending[..n]);
        self.tx_pos += n;
        Ok(n)
    }
}
