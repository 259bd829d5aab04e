//! Command APDUs (cases 1-4, short and extended length) encoded into caller buffers, and response
//! APDUs parsed into borrowed views. Nothing here allocates or panics.

use crate::sw::Status;

/// Largest command data in a short APDU.
pub const SHORT_MAX_DATA: usize = 255;
/// Largest Ne in a short APDU (Le `00`).
pub const SHORT_MAX_LE: usize = 256;
/// Largest command data in an extended APDU.
pub const EXTENDED_MAX_DATA: usize = 65_535;
/// Largest Ne in an extended APDU (Le `00 00`).
pub const EXTENDED_MAX_LE: usize = 65_536;
/// The CLA bit that marks "more commands of this chain follow" (ISO 7816-4 §5.4.1).
pub const CLA_CHAINING: u8 = 0x10;

/// Why a command could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer is too small; the command needs this many bytes.
    BufferTooSmall(usize),
    /// Data longer than 65 535 bytes or Ne larger than 65 536.
    TooLong,
}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BufferTooSmall(n) => write!(f, "the command needs a {n}-byte buffer"),
            Self::TooLong => f.write_str("command data above 65 535 bytes or Ne above 65 536"),
        }
    }
}

impl core::error::Error for EncodeError {}

/// Why bytes are not a well-formed APDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ParseError {
    /// Fewer bytes than the header (commands) or the status word (responses).
    TooShort,
    /// The length fields do not match the number of bytes.
    LengthMismatch,
}

impl core::fmt::Display for ParseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::TooShort => "APDU shorter than its header or status word",
            Self::LengthMismatch => "APDU length fields do not match its length",
        })
    }
}

impl core::error::Error for ParseError {}

/// A command APDU borrowing its data. Built by the command-set modules, encoded with
/// [`Command::encode`], parsed back with [`Command::parse`].
///
/// `Debug` shows the header and the data length only, never the data: VERIFY, CHANGE REFERENCE
/// DATA and RESET RETRY COUNTER carry PINs and PUKs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Command<'a> {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data (Nc = `data.len()`).
    pub data: &'a [u8],
    /// Ne, the expected response length: 0 = no Le field; 256 encodes as short `00`, 65 536 as
    /// extended `00 00`.
    pub le: usize,
}

impl core::fmt::Debug for Command<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Command")
            .field("cla", &self.cla)
            .field("ins", &self.ins)
            .field("p1", &self.p1)
            .field("p2", &self.p2)
            .field("data_len", &self.data.len())
            .field("le", &self.le)
            .finish()
    }
}

impl<'a> Command<'a> {
    /// A command with the given header, no data and no Le (case 1).
    pub const fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Self {
            cla,
            ins,
            p1,
            p2,
            data: &[],
            le: 0,
        }
    }

    /// The same command with `data` (case 3, or 4 with [`Command::with_le`]).
    pub const fn with_data(self, data: &'a [u8]) -> Self {
        Self { data, ..self }
    }

    /// The same command with Ne = `le` (0 removes the Le field).
    pub const fn with_le(self, le: usize) -> Self {
        Self { le, ..self }
    }

    /// Whether this command needs the extended-length encoding.
    pub const fn is_extended(&self) -> bool {
        self.data.len() > SHORT_MAX_DATA || self.le > SHORT_MAX_LE
    }

    /// The number of bytes [`Command::encode`] writes.
    pub const fn encoded_len(&self) -> usize {
        let nc = self.data.len();
        let ext = self.is_extended();
        let lc_len = match (nc, ext) {
            (0, _) => 0,
            (_, false) => 1,
            (_, true) => 3,
        };
        let le_len = match (self.le, ext, nc) {
            (0, _, _) => 0,
            (_, false, _) => 1,
            (_, true, 0) => 3,
            (_, true, _) => 2,
        };
        4 + lc_len + nc + le_len
    }

    /// Encodes the command into `out`, short or extended length as needed (ISO 7816-4 §5.1),
    /// and returns the number of bytes written.
    ///
    /// Every limit is checked (Nc ≤ 65 535, Ne ≤ 65 536, the buffer's length) and nothing is
    /// written when one fails. Short commands (the common case: every PIV, GIDS and ISO unblock
    /// command) take a straight-line path: one length check, the header as one 4-byte store,
    /// the data as one copy.
    #[inline]
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let nc = self.data.len();
        if nc <= SHORT_MAX_DATA && self.le <= SHORT_MAX_LE {
            self.encode_short(out)
        } else {
            self.encode_extended(out)
        }
    }

    #[inline(always)]
    fn encode_short(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let nc = self.data.len();
        let lc_end = if nc == 0 { 4 } else { 5 + nc };
        let total = lc_end + usize::from(self.le != 0);
        let Some(out) = out.get_mut(..total) else {
            return Err(EncodeError::BufferTooSmall(total));
        };
        // `out` is exactly `total` bytes long: none of the writes below can be out of range.
        if let Some(header) = out.first_chunk_mut::<4>() {
            *header = [self.cla, self.ins, self.p1, self.p2];
        }
        if nc != 0 {
            if let Some(lc) = out.get_mut(4) {
                *lc = nc as u8;
            }
            if let Some(data) = out.get_mut(5..lc_end) {
                data.copy_from_slice(self.data);
            }
        }
        if self.le != 0 {
            if let Some(le) = out.get_mut(lc_end) {
                *le = self.le as u8; // 256 -> 00
            }
        }
        Ok(total)
    }

    #[cold]
    fn encode_extended(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let nc = self.data.len();
        if nc > EXTENDED_MAX_DATA || self.le > EXTENDED_MAX_LE {
            return Err(EncodeError::TooLong);
        }
        let total = self.encoded_len();
        let Some(out) = out.get_mut(..total) else {
            return Err(EncodeError::BufferTooSmall(total));
        };
        let mut w = Cursor::new(out);
        w.put(&[self.cla, self.ins, self.p1, self.p2])?;
        if nc > 0 {
            let [hi, lo] = (nc as u16).to_be_bytes();
            w.put(&[0, hi, lo])?.put(self.data)?;
        }
        if self.le > 0 {
            // 65 536 is encoded as 00 00.
            let [hi, lo] = (self.le as u16).to_be_bytes();
            if nc == 0 {
                w.put(&[0])?;
            }
            w.put(&[hi, lo])?;
        }
        Ok(w.len())
    }

    /// Parses an encoded command APDU, borrowing its data from `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let (header, body) = bytes.split_first_chunk::<4>().ok_or(ParseError::TooShort)?;
        let [cla, ins, p1, p2] = *header;
        let mut cmd = Command::new(cla, ins, p1, p2);
        match body {
            // Case 1.
            [] => {}
            // Case 2 short.
            [le] => cmd.le = short_ne(*le),
            // Extended forms start with 00 and have at least 3 bytes.
            [0, hi, lo, rest @ ..] if body.len() >= 3 => {
                let n = usize::from(u16::from_be_bytes([*hi, *lo]));
                if rest.is_empty() {
                    // Case 2 extended.
                    cmd.le = extended_ne(n);
                } else {
                    if n == 0 {
                        return Err(ParseError::LengthMismatch);
                    }
                    let data = rest.get(..n).ok_or(ParseError::LengthMismatch)?;
                    cmd.data = data;
                    match rest.get(n..) {
                        Some([]) => {}
                        Some([hi, lo]) => {
                            cmd.le = extended_ne(usize::from(u16::from_be_bytes([*hi, *lo])))
                        }
                        _ => return Err(ParseError::LengthMismatch),
                    }
                }
            }
            [lc, rest @ ..] => {
                let n = usize::from(*lc);
                if n == 0 {
                    return Err(ParseError::LengthMismatch);
                }
                cmd.data = rest.get(..n).ok_or(ParseError::LengthMismatch)?;
                match rest.get(n..) {
                    Some([]) => {}
                    Some([le]) => cmd.le = short_ne(*le),
                    _ => return Err(ParseError::LengthMismatch),
                }
            }
        }
        Ok(cmd)
    }
}

const fn short_ne(le: u8) -> usize {
    if le == 0 {
        SHORT_MAX_LE
    } else {
        le as usize
    }
}

const fn extended_ne(le: usize) -> usize {
    if le == 0 {
        EXTENDED_MAX_LE
    } else {
        le
    }
}

/// A response APDU: data borrowed from the receive buffer, and the status word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response<'a> {
    /// Response data (may be empty).
    pub data: &'a [u8],
    /// The trailing status word.
    pub status: Status,
}

impl<'a> Response<'a> {
    /// Splits `bytes` into data and status word.
    #[inline]
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let Some((data, &[sw1, sw2])) = bytes.split_last_chunk::<2>() else {
            return Err(ParseError::TooShort);
        };
        // `90 00`, by far the most common answer, skips the status-word table.
        let status = if sw1 == 0x90 && sw2 == 0x00 {
            Status::Success
        } else {
            Status::from_bytes(sw1, sw2)
        };
        Ok(Self { data, status })
    }
}

/// Instructions whose command data is secret (PINs, PUKs, keys): traces show their length only.
pub const fn is_sensitive(ins: u8) -> bool {
    matches!(
        ins,
        0x20 // VERIFY
            | 0x24 // CHANGE REFERENCE DATA
            | 0x2C // RESET RETRY COUNTER
            | 0xFF // YubiKey SET MANAGEMENT KEY
            | 0xDB // PUT DATA (key import on some cards)
    )
}

/// Formats an encoded command APDU as hex for traces, replacing the data of sensitive
/// instructions (see [`is_sensitive`]) by `<N bytes redacted>`.
#[derive(Clone, Copy)]
pub struct RedactedCommand<'a>(pub &'a [u8]);

impl core::fmt::Display for RedactedCommand<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match Command::parse(self.0) {
            Ok(cmd) if is_sensitive(cmd.ins) && !cmd.data.is_empty() => {
                write!(
                    f,
                    "{:02X} {:02X} {:02X} {:02X} ",
                    cmd.cla, cmd.ins, cmd.p1, cmd.p2
                )?;
                write!(f, "<{} bytes redacted>", cmd.data.len())
            }
            _ => write_hex(f, self.0),
        }
    }
}

/// Formats bytes as space-separated upper-case hex.
pub struct Hex<'a>(pub &'a [u8]);

impl core::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write_hex(f, self.0)
    }
}

fn write_hex(f: &mut core::fmt::Formatter<'_>, bytes: &[u8]) -> core::fmt::Result {
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        write!(f, "{b:02X}")?;
    }
    Ok(())
}

/// Whether the driver may send `cmd` a second time when the card answers `6C XX` (wrong Le).
///
/// Only commands whose data cannot be secret qualify: no data at all (GET CHALLENGE, GET
/// METADATA, a VERIFY status query), SELECT (an AID) and GET DATA (a tag list). A command that
/// carries a PIN, a PUK, a key or a cryptogram is never sent twice: a second copy could spend a
/// second try.
pub const fn may_resend(cmd: &Command<'_>) -> bool {
    cmd.data.is_empty() || matches!(cmd.ins, 0xA4 | 0xCA | 0xCB)
}

/// A bounds-checked write cursor over a caller's buffer, for command data a flow builds in
/// place (see [`crate::flow`]). It never truncates: a write that does not fit returns
/// [`EncodeError::BufferTooSmall`] and leaves the cursor where it was.
#[derive(Debug)]
pub struct Cursor<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Appends `bytes`, or fails with the length the buffer would need.
    pub fn put(&mut self, bytes: &[u8]) -> Result<&mut Self, EncodeError> {
        let end = self.pos.saturating_add(bytes.len());
        let dst = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(EncodeError::BufferTooSmall(end))?;
        dst.copy_from_slice(bytes);
        self.pos = end;
        Ok(self)
    }

    /// The number of bytes written so far.
    pub fn len(&self) -> usize {
        self.pos
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// The bytes written, borrowed for as long as the buffer.
    pub fn finish(self) -> &'a [u8] {
        let Self { buf, pos } = self;
        buf.get(..pos).unwrap_or(&[])
    }
}

/// TEST ONLY: the bytes `cmd` encodes to (in a 64-byte buffer), for the builders' spec vectors.
#[cfg(test)]
pub(crate) fn test_bytes(cmd: &Command) -> heapless::Vec<u8, 64> {
    let mut buf = [0u8; 64];
    let n = cmd.encode(&mut buf).unwrap();
    heapless::Vec::from_slice(&buf[..n]).unwrap()
}

#[cfg(test)]
mod tests;
