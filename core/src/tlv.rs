//! BER-TLV (ISO 7816-4 §5.2 / X.690 subset): tags of 1 to 3 bytes, definite lengths up to
//! 3 bytes (`82 XX XX` and `83`), values borrowed. Reading is bounds-checked and never panics;
//! writing goes into caller buffers.

/// Why a TLV could not be read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TlvError {
    /// The input ended inside a tag, a length or a value.
    Truncated,
    /// A length form this reader does not accept (indefinite, or more than 3 length bytes), or a
    /// tag longer than 3 bytes.
    Unsupported,
    /// The output buffer is too small.
    BufferTooSmall,
}

impl core::fmt::Display for TlvError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Truncated => "the TLV data ends inside a tag, length or value",
            Self::Unsupported => "a TLV tag or length form this reader does not accept",
            Self::BufferTooSmall => "the TLV does not fit the output buffer",
        })
    }
}

impl core::error::Error for TlvError {}

/// One TLV: its tag (as the big-endian number of its bytes, `0x5FC102` for `5F C1 02`) and its
/// value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// Tag bytes as a number.
    pub tag: u32,
    /// Value bytes.
    pub value: &'a [u8],
}

/// Reads one TLV from the start of `input` and returns it with the bytes after it.
pub fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), TlvError> {
    let (&first, mut rest) = input.split_first().ok_or(TlvError::Truncated)?;
    let mut tag = u32::from(first);
    if first & 0x1F == 0x1F {
        // Subsequent tag bytes: continue while bit 8 is set; at most two more.
        let mut n = 0;
        loop {
            let (&b, r) = rest.split_first().ok_or(TlvError::Truncated)?;
            rest = r;
            tag = (tag << 8) | u32::from(b);
            n += 1;
            if b & 0x80 == 0 {
                break;
            }
            if n == 2 {
                return Err(TlvError::Unsupported);
            }
        }
    }
    let (&l0, r) = rest.split_first().ok_or(TlvError::Truncated)?;
    rest = r;
    let len = match l0 {
        0x00..=0x7F => usize::from(l0),
        0x81..=0x83 => {
            let n = usize::from(l0 & 0x7F);
            let bytes = rest.get(..n).ok_or(TlvError::Truncated)?;
            rest = rest.get(n..).ok_or(TlvError::Truncated)?;
            bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        }
        _ => return Err(TlvError::Unsupported),
    };
    let value = rest.get(..len).ok_or(TlvError::Truncated)?;
    let rest = rest.get(len..).ok_or(TlvError::Truncated)?;
    Ok((Tlv { tag, value }, rest))
}

/// Iterates the TLVs of `input` at one nesting level. After the first error it yields that error
/// once and stops.
pub fn iter(input: &[u8]) -> Iter<'_> {
    Iter {
        rest: input,
        failed: false,
    }
}

/// Iterator returned by [`iter`].
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Result<Tlv<'a>, TlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        match read(self.rest) {
            Ok((tlv, rest)) => {
                self.rest = rest;
                Some(Ok(tlv))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// The value of the first TLV with `tag` at this level of `input`; `Ok(None)` when absent.
pub fn find(input: &[u8], tag: u32) -> Result<Option<&[u8]>, TlvError> {
    for tlv in iter(input) {
        let tlv = tlv?;
        if tlv.tag == tag {
            return Ok(Some(tlv.value));
        }
    }
    Ok(None)
}

/// Number of bytes the tag takes.
pub const fn tag_len(tag: u32) -> usize {
    if tag > 0xFFFF {
        3
    } else if tag > 0xFF {
        2
    } else {
        1
    }
}

/// Number of bytes a length field for `len` takes.
pub const fn length_len(len: usize) -> usize {
    if len < 0x80 {
        1
    } else if len <= 0xFF {
        2
    } else if len <= 0xFFFF {
        3
    } else {
        4
    }
}

/// Size of a whole TLV with a value of `len` bytes.
pub const fn encoded_len(tag: u32, len: usize) -> usize {
    tag_len(tag) + length_len(len) + len
}

/// Writes TLVs into a caller buffer.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Writer<'a> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// Appends raw bytes.
    pub fn raw(&mut self, bytes: &[u8]) -> Result<&mut Self, TlvError> {
        let end = self.len + bytes.len();
        let dst = self
            .buf
            .get_mut(self.len..end)
            .ok_or(TlvError::BufferTooSmall)?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(self)
    }

    /// Appends a tag and a length; the caller then writes `len` bytes of value (nested TLVs).
    pub fn header(&mut self, tag: u32, len: usize) -> Result<&mut Self, TlvError> {
        let tag_bytes = tag.to_be_bytes();
        self.raw(tag_bytes.get(4 - tag_len(tag)..).unwrap_or(&[]))?;
        let len_bytes = (len as u32).to_be_bytes();
        match length_len(len) {
            1 => self.raw(&[len as u8]),
            n if n <= 4 => {
                self.raw(&[0x80 | (n as u8 - 1)])?;
                self.raw(len_bytes.get(5 - n..).unwrap_or(&[]))
            }
            _ => Err(TlvError::Unsupported),
        }
    }

    /// Appends a whole TLV.
    pub fn tlv(&mut self, tag: u32, value: &[u8]) -> Result<&mut Self, TlvError> {
        self.header(tag, value.len())?.raw(value)
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The written bytes.
    pub fn finish(self) -> &'a [u8] {
        let Self { buf, len } = self;
        buf.get(..len).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn reads_dynamic_authentication_template() {
        let bytes = hex!("7C 0A 81 08 01 02 03 04 05 06 07 08 90");
        let (tlv, rest) = read(&bytes).unwrap();
        assert_eq!(tlv.tag, 0x7C);
        assert_eq!(rest, &[0x90]);
        assert_eq!(
            find(tlv.value, 0x81).unwrap(),
            Some(&hex!("01 02 03 04 05 06 07 08")[..])
        );
        assert_eq!(find(tlv.value, 0x82).unwrap(), None);
    }

    #[test]
    fn multi_byte_tags_and_long_lengths() {
        let mut value = [0u8; 300];
        value[0] = 0xAA;
        let mut buf = [0u8; 400];
        let mut w = Writer::new(&mut buf);
        w.tlv(0x5FC102, &value).unwrap();
        let out = w.finish();
        assert_eq!(&out[..6], &hex!("5F C1 02 82 01 2C"));
        let (tlv, rest) = read(out).unwrap();
        assert_eq!((tlv.tag, tlv.value.len(), rest.len()), (0x5FC102, 300, 0));
        let (tlv, _) = read(&hex!("7F 71 81 03 97 01 03")).unwrap();
        assert_eq!((tlv.tag, tlv.value), (0x7F71, &hex!("97 01 03")[..]));
    }

    #[test]
    fn nested_writing() {
        let mut buf = [0u8; 32];
        let mut w = Writer::new(&mut buf);
        let inner = encoded_len(0x80, 8) + encoded_len(0x81, 8);
        w.header(0x7C, inner)
            .unwrap()
            .tlv(0x80, &[1; 8])
            .unwrap()
            .tlv(0x81, &[2; 8])
            .unwrap();
        assert_eq!(w.len(), 22);
        assert_eq!(&w.finish()[..4], &hex!("7C 14 80 08"));
    }

    #[test]
    fn errors() {
        assert_eq!(read(&[]), Err(TlvError::Truncated));
        assert_eq!(read(&hex!("7C 05 01")), Err(TlvError::Truncated));
        assert_eq!(read(&hex!("7C 80")), Err(TlvError::Unsupported));
        assert_eq!(read(&hex!("5F FF FF FF 01")), Err(TlvError::Unsupported));
        assert_eq!(
            find(&hex!("81 01 00 82 05"), 0x83),
            Err(TlvError::Truncated)
        );
        let mut small = [0u8; 3];
        assert_eq!(
            Writer::new(&mut small).tlv(0x81, &[0; 4]).err(),
            Some(TlvError::BufferTooSmall)
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            for tlv in iter(&bytes).flatten() {
                proptest::prop_assert!(tlv.value.len() <= bytes.len());
            }
        }

        #[test]
        fn write_read_round_trip(tag in proptest::sample::select(&[0x53u32, 0x7C, 0x81, 0x5FC102, 0x7F71][..]),
                                 value in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let mut buf = [0u8; 420];
            let mut w = Writer::new(&mut buf);
            w.tlv(tag, &value).unwrap();
            proptest::prop_assert_eq!(w.len(), encoded_len(tag, value.len()));
            let out = w.finish();
            let (tlv, rest) = read(out).unwrap();
            proptest::prop_assert_eq!(tlv.tag, tag);
            proptest::prop_assert_eq!(tlv.value, &value[..]);
            proptest::prop_assert!(rest.is_empty());
        }
    }
}
