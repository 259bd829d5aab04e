//! Faults at every step of every unblock flow: the transport failing (card pulled, reader gone),
//! the card answering an unexpected status word or garbage. Every one ends in an error, none
//! panics, and no PUK or admin try is spent that the user did not spend.

use cardunlock_core::crypto::AdminKey;
use cardunlock_core::driver::{Driver, Error, ProtocolError};
use cardunlock_core::flow::LocalKey;
use cardunlock_core::iso::IsoProfile;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock::{self, UnlockError};
use cardunlock_core::ErrorKind;
use cardunlock_sim::{Config, GidsConfig, IsoConfig, PivConfig, SimCard};
use cardunlock_tests::{fill_counter, shared, Fault, SharedCard, TestTransport};
use embassy_futures::block_on;

#[derive(Clone, Copy, Debug)]
enum Which {
    Piv,
    Gids,
    Iso,
}

fn fresh(which: Which) -> SharedCard {
    shared(SimCard::new(match which {
        Which::Piv => Config::Piv(PivConfig::factory().blocked()),
        Which::Gids => Config::Gids(GidsConfig::factory().blocked()),
        Which::Iso => Config::Iso(IsoConfig::factory().blocked()),
    }))
}

/// Runs the unblock of `which` and returns whether it succeeded, the error text otherwise, and
/// the transport.
fn unblock(which: Which, transport: TestTransport) -> (Result<(), String>, TestTransport) {
    let mut driver = Driver::new(transport);
    let mut key = LocalKey::new(AdminKey::piv_default(), fill_counter(3));
    let result = match which {
        Which::Piv => block_on(unlock::piv_unblock(
            &mut driver,
            &PinPolicy::PIV,
            b"12345678",
            b"840259",
            b"840259",
        ))
        .map_err(|e| format!("{e:?}")),
        Which::Gids => block_on(unlock::gids_unblock(
            &mut driver,
            &PinPolicy::GIDS,
            b"Xk9w2",
            b"Xk9w2",
            [7; 16],
            &mut key,
        ))
        .map_err(|e| format!("{e:?}")),
        Which::Iso => block_on(unlock::iso_unblock(
            &mut driver,
            IsoProfile::SIM,
            &PinPolicy::GIDS,
            b"Xk9w2",
            b"Xk9w2",
            &mut key,
        ))
        .map_err(|e| format!("{e:?}")),
    };
    (result, driver.into_inner())
}

fn steps(which: Which) -> usize {
    let card = fresh(which);
    let (result, transport) = unblock(which, TestTransport::new(&card));
    result.unwrap();
    transport.attempts
}

fn spent_nothing(which: Which, card: &SharedCard) {
    let c = card.borrow();
    match which {
        Which::Piv => assert_eq!(c.puk_tries_left(), Some(3), "a PUK try was spent"),
        Which::Gids | Which::Iso => {
            assert_eq!(c.admin_tries_left(), Some(10), "an admin-key try was spent")
        }
    }
}

#[test]
fn transport_failure_at_each_step() {
    for which in [Which::Piv, Which::Gids, Which::Iso] {
        for at in 0..steps(which) {
            for kind in [
                ErrorKind::CardRemoved,
                ErrorKind::Timeout,
                ErrorKind::Unavailable,
            ] {
                let card = fresh(which);
                let (result, _) = unblock(
                    which,
                    TestTransport::new(&card).with_fault(at, Fault::Fail(kind)),
                );
                let err = result.expect_err("a failed transport must fail the unblock");
                assert!(
                    err.contains(&format!("Transport({kind:?})")),
                    "{which:?} at {at}: {err}"
                );
                spent_nothing(which, &card);
            }
        }
    }
}

#[test]
fn unexpected_status_word_at_each_step() {
    for which in [Which::Piv, Which::Gids, Which::Iso] {
        for at in 0..steps(which) {
            static SWS: [[u8; 2]; 4] = [[0x6F, 0x00], [0x6D, 0x00], [0x69, 0x82], [0x63, 0xC1]];
            for sw in &SWS {
                let card = fresh(which);
                let (result, _) = unblock(
                    which,
                    TestTransport::new(&card).with_fault(at, Fault::Garbage(sw)),
                );
                assert!(result.is_err(), "{which:?} at {at}: SW {sw:02X?} accepted");
            }
        }
    }
}

#[test]
fn garbage_answers_at_each_step() {
    static GARBAGE: [&[u8]; 4] = [
        &[0x01],
        &[],
        &[0xDE, 0xAD, 0xBE, 0xEF, 0x6A],
        &[0x7C, 0xFF, 0x81, 0x90, 0x00],
    ];
    for which in [Which::Piv, Which::Gids, Which::Iso] {
        let n = steps(which);
        for at in 0..n {
            for garbage in GARBAGE {
                let card = fresh(which);
                let (result, _) = unblock(
                    which,
                    TestTransport::new(&card).with_fault(at, Fault::Garbage(garbage)),
                );
                // A well-formed 90 00 with junk data may pass where the flow ignores the data
                // (SELECT); everything else must fail.
                if garbage.ends_with(&[0x90, 0x00]) {
                    continue;
                }
                let err = result.expect_err("garbage must fail the unblock");
                if garbage.len() < 2 {
                    assert!(err.contains("ShortResponse"), "{which:?} at {at}: {err}");
                }
            }
        }
    }
}

#[test]
fn protocol_error_is_typed() {
    let card = fresh(Which::Piv);
    let mut driver = Driver::new(TestTransport::new(&card).with_fault(0, Fault::Garbage(&[0x90])));
    let got = block_on(unlock::piv_unblock(
        &mut driver,
        &PinPolicy::PIV,
        b"12345678",
        b"840259",
        b"840259",
    ));
    assert_eq!(
        got,
        Err(UnlockError::Card(Error::Protocol(
            ProtocolError::ShortResponse
        )))
    );
}
