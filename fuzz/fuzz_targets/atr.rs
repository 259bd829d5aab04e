//! The Answer To Reset and the PPS exchange: never a panic; every accessor of a parsed ATR
//! answers; historical bytes lie inside the ATR; the CCID parameters derived from it encode;
//! any PPS answer is either accepted for what was asked or refused.
#![no_main]

use cardunlock_ccid::atr::{Atr, PpsRequest, Protocol};
use cardunlock_ccid::codec::ProtocolData;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (atr_bytes, pps_answer) = match data.split_first() {
        Some((&n, rest)) => rest.split_at(usize::from(n).min(rest.len())),
        None => return,
    };
    if let Ok(atr) = Atr::parse(atr_bytes) {
        assert_eq!(atr.as_bytes(), atr_bytes);
        let h = atr.historical_bytes();
        assert!(h.len() <= 15 && h.len() < atr_bytes.len());
        let _ = (
            atr.convention(),
            atr.tck(),
            atr.ta1(),
            atr.tb1(),
            atr.tc1(),
            atr.ta2(),
            atr.fidi(),
            atr.fi(),
            atr.fmax_khz(),
            atr.di(),
            atr.extra_guard_time(),
            atr.specific_mode(),
            atr.t0_waiting_integer(),
            atr.default_protocol(),
            atr.clock_stop(),
            atr.class_indicator(),
        );
        let ifsc = atr.t1_ifsc();
        assert!((1..=254).contains(&ifsc), "IFSC {ifsc}");
        let _ = (atr.t1_bwi(), atr.t1_cwi(), atr.t1_edc());
        for t in 0..16 {
            let _ = atr.offers(t);
        }
        for protocol in [Protocol::T0, Protocol::T1] {
            let _ = atr.offers_protocol(protocol);
            let p = atr.ccid_parameters(protocol, atr.fidi());
            assert_eq!(p.protocol(), protocol);
            let parsed = ProtocolData::parse(protocol.number(), p.as_bytes());
            assert!(parsed.is_ok(), "{p:?} does not parse: {parsed:?}");
            let pps = PpsRequest::new(protocol, atr.ta1());
            if let Ok(outcome) = pps.check_response(pps_answer) {
                let _ = format!("{outcome:?}");
            }
        }
    }
});
