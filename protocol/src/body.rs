//! Message bodies carry secrets (answers, session tokens, PUKs, admin answers): both sides
//! gather them in buffers that leave no copy behind when they grow.

use zeroize::Zeroizing;

/// Appends `data` to `buf`. Where `Vec` would reallocate and free the old allocation unwiped,
/// this moves the bytes into a new, larger buffer and lets the old one wipe itself on drop.
pub fn extend_wiped(buf: &mut Zeroizing<Vec<u8>>, data: &[u8]) {
    let needed = buf.len().saturating_add(data.len());
    if needed > buf.capacity() {
        let mut bigger = Zeroizing::new(Vec::with_capacity(needed.max(buf.capacity() * 2)));
        bigger.extend_from_slice(buf);
        *buf = bigger;
    }
    buf.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_keeps_every_byte_in_order() {
        let mut buf = Zeroizing::new(Vec::new());
        for chunk in [&b"ab"[..], b"", b"cdefg", &[b'h'; 100]] {
            extend_wiped(&mut buf, chunk);
        }
        assert_eq!(&buf[..7], b"abcdefg");
        assert_eq!(buf.len(), 107);
        assert!(buf[7..].iter().all(|&b| b == b'h'));
    }

    #[test]
    fn it_never_reallocates_in_place() {
        // Room left: appended in place. No room: a new allocation, filled before the swap.
        let mut buf = Zeroizing::new(Vec::with_capacity(8));
        extend_wiped(&mut buf, b"1234");
        let first = buf.as_ptr();
        extend_wiped(&mut buf, b"5678");
        assert_eq!(buf.as_ptr(), first);
        extend_wiped(&mut buf, b"9");
        assert!(buf.capacity() >= 16);
        assert_eq!(&buf[..], b"123456789");
    }
}
