//! BER-TLV reading: `read`, `iter` and `find` never panic and agree with each other; every value
//! lies inside the input; what is read writes back to bytes that read the same.
#![no_main]

use cardunlock_core::tlv;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((first, rest)) = tlv::read(data) {
        assert!(first.value.len() + rest.len() < data.len());
        // Written back, the TLV reads the same.
        let mut buf = vec![0u8; data.len() + 8];
        let mut w = tlv::Writer::new(&mut buf);
        if w.tlv(first.tag, first.value).is_ok() {
            let out = w.finish();
            let (again, tail) = tlv::read(out).expect("a written TLV reads");
            assert_eq!(again, first);
            assert!(tail.is_empty());
        }
    }
    let mut total = 0usize;
    let mut tags = Vec::new();
    for item in tlv::iter(data) {
        match item {
            Ok(t) => {
                total += t.value.len();
                assert!(total <= data.len());
                tags.push(t.tag);
            }
            Err(_) => break,
        }
        assert!(tags.len() <= data.len());
    }
    // `find` sees what `iter` sees, up to the first error.
    if let Some(&tag) = tags.first() {
        if let Ok(found) = tlv::find(data, tag) {
            assert!(found.is_some());
        }
    }
});
