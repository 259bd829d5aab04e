//! Property tests: no input makes the card panic, every answer carries a status word, and
//! counters never go up without a correct secret.

use cardunlock_sim::{Config, GidsConfig, IsoConfig, Options, PivConfig, SimCard};
use proptest::prelude::*;

fn cards(options: Options) -> [SimCard; 3] {
    [
        SimCard::with_options(Config::Piv(PivConfig::factory()), options),
        SimCard::with_options(Config::Gids(GidsConfig::factory()), options),
        SimCard::with_options(Config::Iso(IsoConfig::factory()), options),
    ]
}

const SELECTS: [&[u8]; 3] = [
    &[0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08],
    &[
        0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x97, 0x42, 0x54, 0x46, 0x59,
    ],
    &[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00],
];

/// A command that reaches the applications: plausible header, random body shape.
fn structured_apdu() -> impl Strategy<Value = Vec<u8>> {
    let cla = prop::sample::select(vec![0x00u8, 0x10, 0x80, 0x0C]);
    let ins = prop::sample::select(vec![
        0x20u8, 0x22, 0x24, 0x2C, 0x82, 0x84, 0x87, 0xA4, 0xC0, 0xCA, 0xCB, 0xF7, 0xF8, 0xFD, 0xFF,
        0x00,
    ]);
    let p = prop::sample::select(vec![
        0x00u8, 0x01, 0x02, 0x03, 0x04, 0x0C, 0x3F, 0x80, 0x81, 0x9B, 0xA4, 0xC1, 0xFF,
    ]);
    let data = prop::collection::vec(
        prop_oneof![
            any::<u8>(),
            Just(0x7C),
            Just(0x80),
            Just(0x81),
            Just(0x82),
            Just(0x5C),
            Just(0xFF),
        ],
        0..48,
    );
    let shape = 0u8..6;
    (cla, ins, p.clone(), p, data, shape, any::<u8>()).prop_map(
        |(cla, ins, p1, p2, data, shape, le)| {
            let mut v = vec![cla, ins, p1, p2];
            let n = data.len();
            match shape {
                0 => {}
                1 => v.push(le),
                2 if n > 0 => {
                    v.push(n as u8);
                    v.extend_from_slice(&data);
                }
                3 if n > 0 => {
                    v.push(n as u8);
                    v.extend_from_slice(&data);
                    v.push(le);
                }
                4 => {
                    v.extend_from_slice(&[0x00, 0x00, n as u8]);
                    v.extend_from_slice(&data);
                    v.extend_from_slice(&[0x00, le]);
                }
                _ => v.extend_from_slice(&data),
            }
            v
        },
    )
}

fn options() -> impl Strategy<Value = Options> {
    (0usize..300, any::<bool>()).prop_map(|(max_response_data, strict_le)| Options {
        max_response_data,
        strict_le,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(
        apdus in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..8),
        options in options(),
        select_first in any::<bool>(),
    ) {
        for (mut card, select) in cards(options).into_iter().zip(SELECTS) {
            if select_first {
                card.transmit(select);
            }
            for apdu in &apdus {
                let r = card.transmit(apdu);
                prop_assert!(r.len() >= 2);
            }
        }
    }

    #[test]
    fn structured_sequences_never_panic(
        apdus in prop::collection::vec(structured_apdu(), 1..24),
        options in options(),
        resets in prop::collection::vec(any::<bool>(), 24),
    ) {
        for (mut card, select) in cards(options).into_iter().zip(SELECTS) {
            card.transmit(select);
            let pin_max = card.pin_tries_left();
            let admin_max = card.admin_tries_left();
            for (i, apdu) in apdus.iter().enumerate() {
                let r = card.transmit(apdu);
                prop_assert!(r.len() >= 2);
                let sw1 = r[r.len() - 2];
                // Data only comes with 90 00 or 61 XX.
                if r.len() > 2 {
                    prop_assert!(sw1 == 0x90 || sw1 == 0x61, "{:02X?} -> {:02X?}", apdu, r);
                }
                if resets[i] {
                    card.reset();
                    card.transmit(select);
                }
                // Counters never exceed their maximum.
                prop_assert!(card.pin_tries_left() <= pin_max);
                prop_assert!(card.admin_tries_left() <= admin_max);
            }
        }
    }
}
