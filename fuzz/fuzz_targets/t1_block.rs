//! T=1 blocks (ISO/IEC 7816-3 §11.3): parsing with LRC and CRC never panics; a parsed block
//! encodes back to exactly the bytes it came from (one encoding per block); the PCB byte codes
//! round trip.
#![no_main]

use cardunlock_ccid::atr::Edc;
use cardunlock_ccid::t1::{Block, Pcb, MAX_BLOCK};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for edc in [Edc::Lrc, Edc::Crc] {
        if let Ok(block) = Block::parse(data, edc) {
            assert!(block.inf.len() <= 254);
            let mut buf = [0u8; MAX_BLOCK];
            let n = block.encode(edc, &mut buf).expect("a parsed block encodes");
            assert_eq!(&buf[..n], data);
            assert!(block.encode(edc, &mut buf[..n - 1]).is_err());
        }
    }
    if let Some(&b) = data.first() {
        if let Some(pcb) = Pcb::from_byte(b) {
            assert_eq!(Pcb::from_byte(pcb.to_byte()), Some(pcb));
        }
    }
});
