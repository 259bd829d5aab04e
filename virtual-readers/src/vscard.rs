//! The card side of QEMU's `ccid-card-passthru` (the VSCard protocol of libcacard's
//! `vscard_common.h`), so a [`VirtualCard`] sits in QEMU's emulated USB CCID reader
//! (`-device usb-ccid -device ccid-card-passthru,chardev=...`).
//!
//! Every message, both ways, is a 12-byte header of three big-endian `u32` (type, reader id,
//! payload length) and the payload. The card side connects to QEMU's chardev socket and sends
//! Init; when QEMU's Init comes back it adds reader 0 (ReaderAdd) and inserts the card (ATR).
//! QEMU then forwards each command APDU the guest sends through the reader as an APDU message,
//! answered with an APDU message carrying the response (data and SW1 SW2). QEMU acknowledges
//! ReaderAdd, ATR and CardRemove with an Error message of code 0; any other code is an error.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use cardunlock_sim::{Config, PivConfig, SimCard};
//!
//! // qemu-system-x86_64 ... -usb -device usb-ccid \
//! //   -chardev socket,id=vsc,path=/tmp/vscard.sock,server=on,wait=off \
//! //   -device ccid-card-passthru,chardev=vsc
//! let mut card = SimCard::new(Config::Piv(PivConfig::factory().blocked()));
//! let stop = AtomicBool::new(false);
//! cardunlock_virtual_readers::vscard::serve(&mut card, "/tmp/vscard.sock", &stop)?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::fill::{fill, Filled};
use crate::VirtualCard;

/// How long [`serve`] keeps retrying while QEMU's socket is not there yet.
pub const DEFAULT_CONNECT_RETRY: Duration = Duration::from_secs(10);
/// The protocol version this side speaks (libcacard's `VSCARD_VERSION`).
pub const VERSION: u32 = 2;
/// The Init magic, sent as these four bytes.
pub const MAGIC: [u8; 4] = *b"VSCD";
/// The reader id of messages about no particular reader (Init).
pub const UNDEFINED_READER: u32 = 0xFFFF_FFFF;
/// The id of the one reader this card side adds.
pub const READER: u32 = 0;
/// Length of a message header.
pub const HEADER_LEN: usize = 12;
/// The largest payload accepted (QEMU's own receive buffer is 64 KiB).
pub const MAX_PAYLOAD: u32 = 64 * 1024;

/// How often a blocked read wakes up to look at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);
/// Pause between two connection attempts.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// A VSCard message type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgType {
    /// 1: version handshake, both ways.
    Init,
    /// 2: a status code (0: success) acknowledging the previous message.
    Error,
    /// 3: a reader appears (card side to QEMU).
    ReaderAdd,
    /// 4: a reader goes.
    ReaderRemove,
    /// 5: a card is inserted; the payload is its ATR.
    Atr,
    /// 6: the card is removed.
    CardRemove,
    /// 7: a command APDU (from QEMU) or its response (to QEMU).
    Apdu,
    /// Any other type (Flush 8, FlushComplete 9, ...): answered with an error code.
    Other(u32),
}

impl MsgType {
    /// The type of wire value `v`.
    pub const fn from_u32(v: u32) -> Self {
        match v {
            1 => Self::Init,
            2 => Self::Error,
            3 => Self::ReaderAdd,
            4 => Self::ReaderRemove,
            5 => Self::Atr,
            6 => Self::CardRemove,
            7 => Self::Apdu,
            other => Self::Other(other),
        }
    }

    /// The wire value.
    pub const fn to_u32(self) -> u32 {
        match self {
            Self::Init => 1,
            Self::Error => 2,
            Self::ReaderAdd => 3,
            Self::ReaderRemove => 4,
            Self::Atr => 5,
            Self::CardRemove => 6,
            Self::Apdu => 7,
            Self::Other(v) => v,
        }
    }
}

/// A message header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The message type.
    pub msg_type: MsgType,
    /// The reader the message is about.
    pub reader: u32,
    /// Payload bytes that follow.
    pub length: u32,
}

impl Header {
    /// Parses a header.
    pub fn parse(b: &[u8; HEADER_LEN]) -> Self {
        let at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Self {
            msg_type: MsgType::from_u32(at(0)),
            reader: at(4),
            length: at(8),
        }
    }

    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&self.msg_type.to_u32().to_be_bytes());
        b[4..8].copy_from_slice(&self.reader.to_be_bytes());
        b[8..12].copy_from_slice(&self.length.to_be_bytes());
        b
    }
}

/// The Init payload: magic, version, one capability word (none defined).
pub fn init_payload() -> [u8; 12] {
    let mut p = [0u8; 12];
    p[0..4].copy_from_slice(&MAGIC);
    p[4..8].copy_from_slice(&VERSION.to_be_bytes());
    p
}

/// A connection to QEMU's `ccid-card-passthru` chardev, as the card side.
#[derive(Debug)]
pub struct Connection {
    stream: UnixStream,
}

impl Connection {
    /// Connects to the unix socket at `path` (QEMU's `-chardev socket,server=on,path=...`),
    /// retrying for `retry` while it does not exist or does not accept yet, or until `stop`.
    pub fn connect(path: impl AsRef<Path>, retry: Duration, stop: &AtomicBool) -> io::Result<Self> {
        let path = path.as_ref();
        let deadline = Instant::now() + retry;
        loop {
            match UnixStream::connect(path) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(STOP_POLL))?;
                    return Ok(Self { stream });
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                    ) && Instant::now() < deadline
                        && !stop.load(Ordering::Acquire) =>
                {
                    thread::sleep(RETRY_PAUSE);
                }
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("QEMU's VSCard socket {}: {e}", path.display()),
                    ))
                }
            }
        }
    }

    /// Sends one message.
    pub fn send(&mut self, msg_type: MsgType, reader: u32, payload: &[u8]) -> io::Result<()> {
        let length = u32::try_from(payload.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "VSCard payload too long"))?;
        let header = Header {
            msg_type,
            reader,
            length,
        };
        // One write: header and payload together (responses may carry secrets: wiped after).
        let mut frame = Zeroizing::new(Vec::with_capacity(HEADER_LEN + payload.len()));
        frame.extend_from_slice(&header.encode());
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame)
    }

    fn fill(&mut self, buf: &mut [u8], stop: &AtomicBool, at_boundary: bool) -> io::Result<Filled> {
        fill(
            &mut self.stream,
            buf,
            stop,
            at_boundary,
            || {},
            "QEMU (VSCard)",
        )
    }

    /// Receives one message; `None` when QEMU closed the connection or `stop` was raised.
    /// The payload is wiped when dropped (commands carry PINs and PUKs).
    pub fn receive(
        &mut self,
        stop: &AtomicBool,
    ) -> io::Result<Option<(Header, Zeroizing<Vec<u8>>)>> {
        let mut h = [0u8; HEADER_LEN];
        match self.fill(&mut h, stop, true)? {
            Filled::Full => {}
            Filled::Closed | Filled::Stopped => return Ok(None),
        }
        let header = Header::parse(&h);
        if header.length > MAX_PAYLOAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("VSCard message of {} bytes", header.length),
            ));
        }
        let mut payload = Zeroizing::new(vec![0u8; header.length as usize]);
        // Not at a boundary: EOF here is an error, never `Closed`.
        match self.fill(&mut payload, stop, false)? {
            Filled::Full | Filled::Closed => Ok(Some((header, payload))),
            Filled::Stopped => Ok(None),
        }
    }

    /// Serves `card` until QEMU closes the connection (Ok) or `stop` is raised (Ok): Init,
    /// then ReaderAdd and the ATR once QEMU's Init arrives, then one response per APDU.
    pub fn serve<C: VirtualCard + ?Sized>(
        &mut self,
        card: &mut C,
        stop: &AtomicBool,
    ) -> io::Result<()> {
        self.send(MsgType::Init, UNDEFINED_READER, &init_payload())?;
        let mut inserted = false;
        while let Some((header, payload)) = self.receive(stop)? {
            match header.msg_type {
                MsgType::Init => {
                    if payload.get(..4) != Some(&MAGIC[..]) {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "the VSCard peer's Init has the wrong magic (is this QEMU's \
                             ccid-card-passthru socket?)",
                        ));
                    }
                    if !inserted {
                        card.reset();
                        self.send(MsgType::ReaderAdd, READER, &[])?;
                        self.send(MsgType::Atr, READER, &card.atr())?;
                        inserted = true;
                    }
                }
                MsgType::Apdu => {
                    let response = Zeroizing::new(card.transmit(&payload));
                    self.send(MsgType::Apdu, READER, &response)?;
                }
                MsgType::Error => {
                    let code = payload
                        .get(..4)
                        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                        .unwrap_or(0);
                    if code != 0 {
                        return Err(io::Error::other(format!(
                            "QEMU refused the card (VSCard error code {code}{})",
                            if code == 1 {
                                ": is the ATR well formed?"
                            } else {
                                ""
                            }
                        )));
                    }
                }
                MsgType::CardRemove | MsgType::ReaderRemove => return Ok(()),
                // Nothing else is sent by QEMU; ignore rather than fail a test run.
                MsgType::ReaderAdd | MsgType::Atr | MsgType::Other(_) => {}
            }
        }
        Ok(())
    }
}

/// Parses the interface bytes of `atr`: whether it offers T=0 (no TD1, or some TDi naming
/// protocol 0) and its historical bytes. `None` when the ATR is too short for what T0 and the
/// TDi announce. Never panics.
pub fn atr_protocols(atr: &[u8]) -> Option<(bool, &[u8])> {
    let t0 = *atr.get(1)?;
    let k = usize::from(t0 & 0x0F);
    let mut y = t0 >> 4;
    let mut i = 2;
    let mut offers_t0 = true;
    let mut first_td = true;
    loop {
        i += usize::from(y & 1) + usize::from((y >> 1) & 1) + usize::from((y >> 2) & 1);
        if y & 8 == 0 {
            break;
        }
        let td = *atr.get(i)?;
        i += 1;
        if first_td {
            offers_t0 = false;
            first_td = false;
        }
        if td & 0x0F == 0 {
            offers_t0 = true;
        }
        y = td >> 4;
    }
    Some((offers_t0, atr.get(i..i.checked_add(k)?)?))
}

/// The ATR to give a T=0-only reader such as QEMU's `usb-ccid`: `atr` itself when it offers
/// T=0, else `3B 0K` and the same K historical bytes (no interface bytes: T=0 at default
/// speed). The card's APDU behaviour does not change: QEMU passes whole APDUs to it.
pub fn t0_atr(atr: &[u8]) -> Vec<u8> {
    match atr_protocols(atr) {
        Some((false, historical)) => {
            let mut t0 = Vec::with_capacity(2 + historical.len());
            t0.push(0x3B);
            // At most 15 historical bytes: `historical.len()` came from a nibble.
            t0.push(u8::try_from(historical.len()).unwrap_or(0) & 0x0F);
            t0.extend_from_slice(historical);
            t0
        }
        _ => atr.to_vec(),
    }
}

/// A card presented to a T=0-only reader such as QEMU's: its ATR goes through [`t0_atr`], and
/// it answers T=0 TPDUs as a T=0 card does, on top of a card that answers whole APDUs.
///
/// QEMU's reader is TPDU level: the guest's T=0 engine sends `CLA INS P1 P2 P3` and `P3` data
/// bytes, and expects what a T=0 card answers:
/// - a command with data (case 3 or 4) gets the status word only; response data is announced
///   with `61 XX` and fetched with GET RESPONSE (`00 C0 00 00 XX`), served here;
/// - a command without data (case 1 or 2, `P3` = Le, `00` = 256) whose response data is not `P3`
///   bytes long gets `6C XX` (the engine sends it again with `P3 = XX`).
pub struct T0Card<C> {
    card: C,
    /// Response data announced with `61 XX`, not fetched yet.
    pending: Zeroizing<Vec<u8>>,
    /// The card's status word for that data, sent once it has all been fetched.
    pending_sw: [u8; 2],
}

/// Shows how much response data waits, never the data (or the card's secrets).
impl<C> std::fmt::Debug for T0Card<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("T0Card")
            .field("pending_len", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl<C> T0Card<C> {
    /// Wraps `card`.
    pub fn new(card: C) -> Self {
        Self {
            card,
            pending: Zeroizing::new(Vec::new()),
            pending_sw: [0x90, 0x00],
        }
    }

    /// The card inside.
    pub fn inner(&self) -> &C {
        &self.card
    }

    /// `61 XX` for `n` bytes waiting (`00`: 256 or more).
    fn more(n: usize) -> [u8; 2] {
        [0x61, u8::try_from(n).unwrap_or(0)]
    }

    /// Answers GET RESPONSE for `le` bytes (0 = 256) from the pending data.
    fn get_response(&mut self, le: u8) -> Vec<u8> {
        let want = if le == 0 { 256 } else { usize::from(le) };
        let have = self.pending.len();
        if want > have {
            return std::vec![0x6C, u8::try_from(have).unwrap_or(0)];
        }
        let mut out: Vec<u8> = self.pending.drain(..want).collect();
        let left = self.pending.len();
        out.extend_from_slice(&if left == 0 {
            self.pending_sw
        } else {
            Self::more(left)
        });
        out
    }
}

/// Splits a response into data and status word (`6F 00` when there is no status word).
fn split_sw(resp: &[u8]) -> (&[u8], [u8; 2]) {
    match resp {
        [data @ .., a, b] => (data, [*a, *b]),
        _ => (&[], [0x6F, 0x00]),
    }
}

impl<C: VirtualCard> VirtualCard for T0Card<C> {
    fn atr(&self) -> Vec<u8> {
        t0_atr(&self.card.atr())
    }

    fn transmit(&mut self, tpdu: &[u8]) -> Vec<u8> {
        let (Some(&[_, ins, _, _, p3]), Some(body)) = (tpdu.get(..5), tpdu.get(5..)) else {
            // Not a TPDU: let the card judge it.
            return self.card.transmit(tpdu);
        };
        if ins == 0xC0 && body.is_empty() && !self.pending.is_empty() {
            return self.get_response(p3);
        }
        self.pending.clear();
        let resp = Zeroizing::new(self.card.transmit(tpdu));
        let (data, sw) = split_sw(&resp);
        if data.is_empty() {
            return sw.to_vec();
        }
        if body.is_empty() {
            // Case 2: P3 is Le.
            let le = if p3 == 0 { 256 } else { usize::from(p3) };
            if data.len() == le {
                return resp.to_vec();
            }
            if data.len() < 256 {
                return std::vec![0x6C, u8::try_from(data.len()).unwrap_or(0)];
            }
            // More than 256 bytes: the first Le now, the rest through GET RESPONSE.
            let (now, later) = data.split_at(le.min(data.len()));
            self.pending.extend_from_slice(later);
            self.pending_sw = sw;
            let mut out = now.to_vec();
            out.extend_from_slice(&Self::more(later.len()));
            return out;
        }
        // Case 4: only the status word goes back; data waits for GET RESPONSE. A T=0 card has
        // no way to send data with an error status, so that data is dropped.
        if sw == [0x90, 0x00] || sw[0] == 0x61 || sw[0] == 0x62 || sw[0] == 0x63 {
            self.pending.extend_from_slice(data);
            self.pending_sw = sw;
            return Self::more(data.len()).to_vec();
        }
        sw.to_vec()
    }

    fn reset(&mut self) {
        self.pending.clear();
        self.card.reset();
    }

    fn power_off(&mut self) {
        self.pending.clear();
        self.card.power_off();
    }
}

/// A card presented to a T=0-only reader the way SPICE smart-card passthrough (and any card
/// answering at APDU level behind `ccid-card-passthru`) presents it: a T=0 ATR ([`t0_atr`]),
/// and every TPDU QEMU forwards run as a whole APDU and answered with its data and status word
/// (a case 4 command gets data plus `90 00`, not `61 XX`).
pub struct ApduLevel<C>(pub C);

impl<C: VirtualCard> VirtualCard for ApduLevel<C> {
    fn atr(&self) -> Vec<u8> {
        t0_atr(&self.0.atr())
    }

    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.0.transmit(apdu)
    }

    fn reset(&mut self) {
        self.0.reset();
    }

    fn power_off(&mut self) {
        self.0.power_off();
    }
}

/// Connects to QEMU's VSCard socket at `path` (retrying for [`DEFAULT_CONNECT_RETRY`]) and serves
/// `card` until QEMU exits or `stop` is raised.
pub fn serve<C: VirtualCard + ?Sized>(
    card: &mut C,
    path: impl AsRef<Path>,
    stop: &AtomicBool,
) -> io::Result<()> {
    Connection::connect(path, DEFAULT_CONNECT_RETRY, stop)?.serve(card, stop)
}

#[cfg(test)]
mod tests;
