//! PIV data the card sends: the CHUID (card identity), GET METADATA and the `7C` dynamic
//! authentication template. Never a panic; an identity is 1 to 25 bytes taken from the input.
#![no_main]

use cardunlock_core::piv::{parse_auth_template, parse_chuid, parse_metadata, IdKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(id) = parse_chuid(data) {
        let b = id.as_bytes();
        assert!(!b.is_empty() && b.len() <= 25);
        if id.kind == IdKind::Guid {
            assert_eq!(b.len(), 16);
            assert!(b.iter().any(|&x| x != 0));
        }
        assert!(data.windows(b.len()).any(|w| w == b));
        let _ = format!("{id} {id:?}");
    }
    if let Some(m) = parse_metadata(data) {
        let _ = format!("{m:?}");
    }
    for (tag, len) in [(0x80, 8), (0x81, 16), (0x82, 8), (0x82, 16), (0x82, 0)] {
        if let Some(v) = parse_auth_template(data, tag, len) {
            assert_eq!(v.len(), len);
        }
    }
});
