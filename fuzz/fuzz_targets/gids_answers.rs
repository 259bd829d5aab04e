//! GIDS answers: the PIN status object `7F71`, the card random of GENERAL AUTHENTICATE step 1
//! and the card cryptogram of step 2. Never a panic; what is returned comes from the input.
#![no_main]

use cardunlock_core::gids::{parse_pin_status, parse_step1, parse_step2};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(s) = parse_pin_status(data) {
        assert!(data.contains(&s.tries_left));
    }
    if let Some(r2) = parse_step1(data) {
        assert_eq!(&data[4..], &r2[..]);
    }
    if let Some(c) = parse_step2(data) {
        assert_eq!(&data[4..], &c[..]);
    }
});
