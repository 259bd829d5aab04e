//! Minimal BER-TLV reading and writing for dynamic authentication templates (`7C`) and data
//! objects.

/// One TLV: its tag (up to 3 bytes, big-endian) and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tlv<'a> {
    pub(crate) tag: u32,
    pub(crate) value: &'a [u8],
}

/// Read one TLV from the front of `input`; returns it and the rest.
fn read_one(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&first, mut rest) = input.split_first()?;
    let mut tag = u32::from(first);
    if first & 0x1F == 0x1F {
        // Subsequent tag bytes while bit 8 is set; at most two more.
        let mut more = 0;
        loop {
            let (&b, r) = rest.split_first()?;
            rest = r;
            tag = (tag << 8) | u32::from(b);
            more += 1;
            if b & 0x80 == 0 {
                break;
            }
            if more == 2 {
                return None;
            }
        }
    }
    let (&l0, r) = rest.split_first()?;
    rest = r;
    let len = match l0 {
        0x00..=0x7F => usize::from(l0),
        0x81 => {
            let (&l, r) = rest.split_first()?;
            rest = r;
            usize::from(l)
        }
        0x82 => {
            let (l, r) = rest.split_first_chunk::<2>()?;
            rest = r;
            usize::from(u16::from_be_bytes(*l))
        }
        _ => return None,
    };
    if rest.len() < len {
        return None;
    }
    let (value, rest) = rest.split_at(len);
    Some((Tlv { tag, value }, rest))
}

/// Parse a sequence of TLVs that must cover `input` exactly (at most 8 of them).
pub(crate) fn parse_all(mut input: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !input.is_empty() {
        if out.len() == 8 {
            return None;
        }
        let (tlv, rest) = read_one(input)?;
        out.push(tlv);
        input = rest;
    }
    Some(out)
}

/// Parse exactly one TLV with tag `tag` covering all of `input`; returns its value.
pub(crate) fn single(input: &[u8], tag: u32) -> Option<&[u8]> {
    let (tlv, rest) = read_one(input)?;
    (tlv.tag == tag && rest.is_empty()).then_some(tlv.value)
}

/// Append a BER length.
pub(crate) fn push_len(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        _ => {
            let l = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
            out.extend_from_slice(&[0x82, l[0], l[1]]);
        }
    }
}

/// Append a TLV with a tag given as its bytes.
pub(crate) fn push(out: &mut Vec<u8>, tag: &[u8], value: &[u8]) {
    out.extend_from_slice(tag);
    push_len(out, value.len());
    out.extend_from_slice(value);
}

/// One TLV inside another: `outer { tag value }` (a FCI, a dynamic authentication template).
pub(crate) fn nested(outer: &[u8], tag: &[u8], value: &[u8]) -> Vec<u8> {
    let mut inner = Vec::with_capacity(tag.len() + value.len() + 3);
    push(&mut inner, tag, value);
    let mut out = Vec::with_capacity(outer.len() + inner.len() + 3);
    push(&mut out, outer, &inner);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves the nesting and both lengths, also past 127 bytes (long form).
    #[test]
    fn nested_tlvs() {
        assert_eq!(nested(&[0x7C], &[0x81], &[1, 2]), [0x7C, 4, 0x81, 2, 1, 2]);
        let long = nested(&[0x6F], &[0x84], &[0; 200]);
        assert_eq!(&long[..6], [0x6F, 0x81, 203, 0x84, 0x81, 200]);
        assert_eq!(long.len(), 206);
    }

    #[test]
    fn parse_template() {
        let t = single(&[0x7C, 0x04, 0x80, 0x00, 0x81, 0x00], 0x7C).unwrap();
        let v = parse_all(t).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].tag, 0x80);
        assert_eq!(v[1].tag, 0x81);
        assert!(single(&[0x7C, 0x05, 0x80, 0x00], 0x7C).is_none());
        assert!(single(&[0x7C, 0x02, 0x80, 0x00, 0x00], 0x7C).is_none());
        let v = parse_all(&[0x5F, 0xC1, 0x02, 0x01, 0xAA]).unwrap();
        assert_eq!(v[0].tag, 0x5FC102);
        assert_eq!(v[0].value, &[0xAA]);
        let v = parse_all(&[0x7F, 0x71, 0x01, 0xAA]).unwrap();
        assert_eq!(v[0].tag, 0x7F71);
        let v = parse_all(&[0x81, 0x81, 0x01, 0xAA]).unwrap();
        assert_eq!(v[0].value, &[0xAA]);
        assert!(parse_all(&[0x81, 0x83, 0, 0, 1]).is_none());
        let mut out = Vec::new();
        push_len(&mut out, 0x80);
        push_len(&mut out, 0x1234);
        assert_eq!(out, [0x81, 0x80, 0x82, 0x12, 0x34]);
    }
}
