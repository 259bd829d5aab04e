use super::*;
use core::fmt::Write;
use proptest::prelude::*;

fn piv(pin: &str) -> Result<(), Violations> {
    PinPolicy::PIV.check(pin.as_bytes(), pin.as_bytes(), PinContext::NONE)
}

fn gids(pin: &str) -> Result<(), Violations> {
    PinPolicy::GIDS.check(pin.as_bytes(), pin.as_bytes(), PinContext::NONE)
}

/// The violations of a failed check, as a fixed array for comparison.
fn only(result: Result<(), Violations>) -> heapless::Vec<Violation, 10> {
    result.unwrap_err().iter().collect()
}

#[test]
fn good_pins_pass() {
    for pin in ["840259", "3917", "50284", "7310592"] {
        assert_eq!(piv(pin).is_ok(), pin.len() >= 6, "{pin}");
    }
    for pin in ["840259", "73915026"] {
        assert_eq!(piv(pin), Ok(()), "{pin}");
    }
    for pin in ["bq7r2m", "Xk9w", "4f8TzQ1vLm20pAe", "3917"] {
        assert_eq!(gids(pin), Ok(()), "{pin}");
    }
}

#[test]
fn each_violation_alone() {
    use Violation::*;
    assert_eq!(only(piv("84025")), [TooShort { min: 6 }]);
    assert_eq!(only(piv("840259173")), [TooLong { max: 8 }]);
    assert_eq!(only(piv("8402a9")), [InvalidCharacter]);
    assert_eq!(only(piv("8402 9")), [InvalidCharacter]);
    assert_eq!(only(piv("444444")), [RepeatedCharacter]);
    assert_eq!(only(piv("345678")), [Sequence]);
    assert_eq!(only(piv("876543")), [Sequence]);
    assert_eq!(only(gids("defgh")), [Sequence]);
    assert_eq!(only(gids("QpOnM")), [Sequence]);
    assert_eq!(only(piv("159753")), [CommonPin]);
    assert_eq!(only(gids("2580")), [CommonPin]);
    let custom = PinPolicy {
        custom_blocklist: &["840259", "Secret1"],
        ..PinPolicy::GIDS
    };
    assert_eq!(
        only(custom.check(b"840259", b"840259", PinContext::NONE)),
        [CustomBlocklisted]
    );
    assert_eq!(
        only(custom.check(b"sECRET1", b"sECRET1", PinContext::NONE)),
        [CustomBlocklisted]
    );
    assert_eq!(
        custom.check(b"Secret2", b"Secret2", PinContext::NONE),
        Ok(())
    );
    let p = PinPolicy::PIV;
    assert_eq!(
        only(p.check(b"840259", b"840259", PinContext::NONE.old_pin(b"840259"))),
        [SameAsOldPin]
    );
    assert_eq!(
        only(p.check(b"84025917", b"84025917", PinContext::NONE.puk(b"84025917"))),
        [SameAsPuk]
    );
    assert_eq!(
        only(p.check(b"840259", b"840295", PinContext::NONE)),
        [ConfirmationMismatch]
    );
    assert_eq!(
        p.check(
            b"840259",
            b"840259",
            PinContext::NONE.old_pin(b"123456").puk(b"12345678")
        ),
        Ok(())
    );
}

#[test]
fn several_at_once_in_fixed_order() {
    use Violation::*;
    assert_eq!(
        only(piv("1111")),
        [TooShort { min: 6 }, RepeatedCharacter, CommonPin]
    );
    assert_eq!(only(piv("123456")), [Sequence, CommonPin]);
    assert_eq!(only(piv("111111")), [RepeatedCharacter, CommonPin]);
    let v = PinPolicy::PIV
        .check(
            b"12345678",
            b"1234567",
            PinContext::NONE.old_pin(b"12345678").puk(b"12345678"),
        )
        .unwrap_err();
    let want = [
        Sequence,
        CommonPin,
        SameAsOldPin,
        SameAsPuk,
        ConfirmationMismatch,
    ];
    assert_eq!(v.len(), want.len());
    assert!(want.iter().all(|w| v.contains(w)));
    assert!(v.iter().eq(want));
    assert!(!v.contains(&TooShort { min: 6 }));
    let everything = PinPolicy {
        min_len: 12,
        custom_blocklist: &["aaaa"],
        ..PinPolicy::PIV
    };
    let v = everything
        .check(b"aaaa", b"", PinContext::NONE.old_pin(b"AAAA").puk(b"aaaa"))
        .unwrap_err();
    assert_eq!(
        v.iter().collect::<heapless::Vec<_, 10>>(),
        [
            TooShort { min: 12 },
            InvalidCharacter,
            RepeatedCharacter,
            CustomBlocklisted,
            SameAsPuk,
            ConfirmationMismatch,
        ]
    );
}

#[test]
fn same_as_puk_with_factory_puk() {
    let p = PinPolicy {
        builtin_blocklist: false,
        forbid_sequences: false,
        ..PinPolicy::PIV
    };
    let v = p
        .check(b"12345678", b"12345678", PinContext::NONE.puk(b"12345678"))
        .unwrap_err();
    assert_eq!(
        v.iter().collect::<heapless::Vec<_, 10>>(),
        [Violation::SameAsPuk]
    );
}

#[test]
fn empty_and_odd_inputs() {
    assert_eq!(only(piv("")), [Violation::TooShort { min: 6 }]);
    let v = PinPolicy::PIV
        .check(&[0xFF; 8], &[0xFF; 8], PinContext::NONE)
        .unwrap_err();
    assert_eq!(
        v.iter().collect::<heapless::Vec<_, 10>>(),
        [Violation::InvalidCharacter, Violation::RepeatedCharacter]
    );
    let lenient = PinPolicy {
        min_len: 0,
        max_len: 64,
        charset: Charset::PrintableAscii,
        forbid_repeated: true,
        forbid_sequences: true,
        builtin_blocklist: false,
        custom_blocklist: &[],
    };
    for pin in ["", "1", "12", "21", "a b", "9:;", "89ab", "xyzA", "zy1"] {
        assert_eq!(
            lenient.check(pin.as_bytes(), pin.as_bytes(), PinContext::NONE),
            Ok(()),
            "{pin}"
        );
    }
    assert!(lenient.check(b"xyz", b"xyz", PinContext::NONE).is_err());
    assert!(lenient.check(b"aA", b"aA", PinContext::NONE).is_err());
}

#[test]
fn builtin_list_is_well_formed() {
    assert!(BUILTIN_BLOCKLIST.len() >= 20);
    for must in [
        "000000", "123456", "123123", "111111", "121212", "112233", "654321",
    ] {
        assert!(BUILTIN_BLOCKLIST.contains(&must), "{must}");
    }
    for pin in BUILTIN_BLOCKLIST {
        assert!(pin.bytes().all(|c| c.is_ascii_digit()), "{pin}");
        assert!((4..=15).contains(&pin.len()), "{pin}");
    }
}

#[test]
fn display_and_debug() {
    let mut s = heapless::String::<96>::new();
    write!(s, "{}", Violation::TooShort { min: 6 }).unwrap();
    assert_eq!(s.as_str(), "The PIN must have at least 6 characters.");
    s.clear();
    write!(s, "{:?}", piv("11111").unwrap_err()).unwrap();
    assert_eq!(s.as_str(), "[TooShort { min: 6 }, RepeatedCharacter]");
    for i in 0..VARIANTS {
        let all = Violations {
            bits: u16::MAX,
            min: 1,
            max: 2,
        };
        let v = all.at(i).unwrap();
        assert_eq!(index(v), i);
        s.clear();
        write!(s, "{v}").unwrap();
        assert!(s.starts_with("The ") && s.ends_with('.'), "{s}");
    }
}

proptest! {
    #[test]
    fn check_never_panics_and_accepts_only_valid(
        pin in proptest::collection::vec(any::<u8>(), 0..20),
        confirm in proptest::collection::vec(any::<u8>(), 0..20),
        old in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
        puk in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
        min_len in 0..12usize, max_len in 0..20usize, charset in 0..3usize,
        flags in any::<[bool; 3]>(), same in any::<bool>(),
    ) {
        let charset = [Charset::Digits, Charset::Alphanumeric, Charset::PrintableAscii][charset];
        let policy = PinPolicy {
            min_len, max_len, charset,
            forbid_repeated: flags[0], forbid_sequences: flags[1], builtin_blocklist: flags[2],
            custom_blocklist: &["abc123", "ZZZZZZ"],
        };
        let confirm = if same { &pin } else { &confirm };
        match policy.check(&pin, confirm, PinContext { old_pin: old.as_deref(), puk: puk.as_deref() }) {
            Ok(()) => {
                prop_assert!((min_len..=max_len).contains(&pin.len()));
                prop_assert!(pin.iter().all(|&c| charset.allows(c)));
                prop_assert_eq!(&pin, confirm);
            }
            Err(v) => {
                prop_assert!(!v.is_empty());
                prop_assert_eq!(v.len(), v.iter().count());
            }
        }
    }

    #[test]
    fn typed_pins_never_panic(pin in "[0-9a-zA-Z]{0,16}") {
        for policy in [PinPolicy::PIV, PinPolicy::GIDS] {
            if policy.check(pin.as_bytes(), pin.as_bytes(), PinContext::NONE).is_ok() {
                prop_assert!(!is_repeated(pin.as_bytes()) && !is_sequence(pin.as_bytes()));
            }
        }
    }
}
