//! A CCID reader in memory, at APDU level, in front of any card the core can talk to (a
//! [`cardunlock_core::Transport`]): the other end of the [`Pipe`] a
//! [`Session`](crate::session::Session) sends to, with no USB, no heap and no allocation.
//!
//! It exists for what needs a reader without hardware and without `std`: a firmware image that
//! links the whole CCID path (`firmware-size`), and benchmarks that measure the framing cost
//! alone (a replayed card behind it). For fault injection use the reader simulator (crate `cardunlock-ccid-sim`).

use core::convert::Infallible;

use cardunlock_core::Transport;

use crate::codec::{
    msg_type, ClockStatus, CodecError, CommandStatus, Header, IccStatus, Request, RequestKind,
    Response, ResponseKind, SlotError, Status, HEADER_LEN, SHORT_MESSAGE_LEN,
};
use crate::pipe::Pipe;

/// A one-slot reader at short APDU level with `card` always present. Each message the session
/// sends is answered at once: IccPowerOn with `atr`, XfrBlock with the card's response,
/// anything else with the slot status. A command the card fails on (a transport error) is
/// answered with `bError` HW_ERROR, a message it cannot parse with CMD_NOT_SUPPORTED.
///
/// It is a framed [`Pipe`] and holds no command: a message comes whole, or as its header and
/// then its data (as the session sends an XfrBlock); the card gets the APDU where the session
/// holds it, and a reply is read in one call.
pub struct Loopback<T> {
    card: T,
    atr: &'static [u8],
    tx: [u8; SHORT_MESSAGE_LEN],
    tx_len: usize,
    tx_pos: usize,
}

impl<T: Transport> Loopback<T> {
    /// A reader with `card` in its slot, answering power-on with `atr`.
    pub const fn new(card: T, atr: &'static [u8]) -> Self {
        Self {
            card,
            atr,
            tx: [0; SHORT_MESSAGE_LEN],
            tx_len: 0,
            tx_pos: 0,
        }
    }

    /// The card behind the reader.
    pub fn card(&self) -> &T {
        &self.card
    }

    /// Gives the card back.
    pub fn into_card(self) -> T {
        self.card
    }

    /// Any other message, parsed in full.
    #[inline(never)]
    async fn parsed(&mut self, head: &[u8], payload: &[u8]) {
        let parsed = match (head.len(), payload) {
            (_, []) => Request::parse(head),
            (HEADER_LEN, _) => Header::parse(head).and_then(|h| Request::from_parts(&h, payload)),
            // Split elsewhere than after its header: not a message this reader takes.
            _ => Err(CodecError::BadField),
        };
        // The reply echoes bSeq, even of a command it cannot parse.
        let seq = match parsed {
            Ok(req) => req.seq,
            Err(_) => head.get(6).copied().unwrap_or(0),
        };
        let (slot, status, kind) = match parsed {
            Ok(Request {
                slot,
                kind: RequestKind::XfrBlock { data, .. },
                ..
            }) => {
                let room = self.tx.get_mut(HEADER_LEN..).unwrap_or(&mut []);
                let answered = self.card.transmit(data, room).await;
                self.tx_len = data_block(&mut self.tx, slot, seq, answered);
                return;
            }
            Ok(Request {
                slot,
                kind: RequestKind::IccPowerOn(_),
                ..
            }) => (
                slot,
                CommandStatus::Ok,
                ResponseKind::DataBlock {
                    chain: 0,
                    data: self.atr,
                },
            ),
            Ok(req) => (
                req.slot,
                CommandStatus::Ok,
                ResponseKind::SlotStatus {
                    clock: ClockStatus::Running,
                },
            ),
            Err(_) => (
                0,
                CommandStatus::Failed(SlotError::CommandNotSupported),
                ResponseKind::SlotStatus {
                    clock: ClockStatus::Running,
                },
            ),
        };
        let reply = Response {
            slot,
            seq,
            status: Status::new(IccStatus::Active, status),
            kind,
        };
        self.tx_len = reply.encode(&mut self.tx).unwrap_or(0);
    }
}

/// Puts the DataBlock header in front of the card's response, which the card wrote straight
/// behind it in `tx` (261 bytes: a short APDU's 256 and SW1 SW2 fit); `answered` is what the
/// card returned. Returns the reply's length.
fn data_block<E>(
    tx: &mut [u8; SHORT_MESSAGE_LEN],
    slot: u8,
    seq: u8,
    answered: Result<usize, E>,
) -> usize {
    let room_len = SHORT_MESSAGE_LEN - HEADER_LEN;
    let (command, n) = match answered {
        Ok(n) if n <= room_len => (CommandStatus::Ok, n),
        _ => {
            if let Some(room) = tx.get_mut(HEADER_LEN..) {
                room.fill(0);
            }
            (CommandStatus::Failed(SlotError::HardwareError), 0)
        }
    };
    let (b_status, b_error) = Status::new(IccStatus::Active, command).to_bytes();
    let header = Header {
        msg_type: msg_type::DATA_BLOCK,
        length: u32::try_from(n).unwrap_or(0),
        slot,
        seq,
        specific: [b_status, b_error, 0],
    };
    if let Some(head) = tx.get_mut(..HEADER_LEN) {
        head.copy_from_slice(&header.to_bytes());
    }
    HEADER_LEN + n
}

impl<T> embedded_io_async::ErrorType for Loopback<T> {
    type Error = Infallible;
}

impl<T: Transport> Pipe for Loopback<T> {
    const FRAMED: bool = true;

    /// Answers the message `head` then `payload` at once.
    async fn send(&mut self, head: &[u8], payload: &[u8]) -> Result<bool, Infallible> {
        self.tx_pos = 0;
        // An XfrBlock with its APDU apart (the common case) is taken apart in line, and the
        // card answers from the session's buffer into the reply's.
        if let [msg_type::XFR_BLOCK, l0, l1, l2, l3, slot, seq, _, _, _] = *head {
            if usize::try_from(u32::from_le_bytes([l0, l1, l2, l3])) == Ok(payload.len()) {
                let room = self.tx.get_mut(HEADER_LEN..).unwrap_or(&mut []);
                let answered = self.card.transmit(payload, room).await;
                self.tx_len = data_block(&mut self.tx, slot, seq, answered);
                return Ok(true);
            }
        }
        self.parsed(head, payload).await;
        Ok(true)
    }

    /// The rest of the last reply, as much as `buf` holds; 0 when all of it was read.
    async fn recv(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let pending = self.tx.get(self.tx_pos..self.tx_len).unwrap_or(&[]);
        let n = buf.len().min(pending.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), pending.get(..n)) {
            match (
                dst.split_at_mut_checked(HEADER_LEN),
                src.split_at_checked(HEADER_LEN),
            ) {
                // A whole header first: copied apart from the body, in the pieces the header
                // and the card's response were written in, so that each load of the copy (and
                // the session's reads of the header after it) is fed straight from one store;
                // one copy across both would wait for the stores to reach the cache.
                (Some((dst_head, dst_body)), Some((src_head, src_body))) => {
                    dst_head.copy_from_slice(src_head);
                    dst_body.copy_from_slice(src_body);
                }
                _ => dst.copy_from_slice(src),
            }
        }
        self.tx_pos += n;
        Ok(n)
    }
}
