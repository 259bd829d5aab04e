//! Faults at every step of every unblock flow: the transport failing (card pulled, reader gone),
//! the card answering an unexpected status word or garbage. Every one ends in an error, none
//! panics, and no PUK or admin try is spent that the user did not spend.

use cardunlock_core::crypto::AdminKey;
use cardunlock_core::driver::{Driver, Error, ProtocolError};
use cardunlock_core::flow::{FlowError, LocalKey, Step};
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock::{self, UnlockError};
use cardunlock_core::ErrorKind;
use cardunlock_sim::{Config, GidsConfig, IsoConfig, PivConfig, SimCard};
use cardunlock_tests::{fill_counter, shared, transport, Fault, Seen, SharedCard, TestTransport};
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

/// How an unblock under test ended, by layer, so tests match errors by kind and not by text.
#[derive(Debug, PartialEq)]
enum Failed {
    Transport(ErrorKind),
    Protocol(ProtocolError),
    Flow(FlowError),
    Other(String),
}

fn failed<R: std::fmt::Debug>(e: UnlockError<ErrorKind, R>) -> Failed {
    match e {
        UnlockError::Card(Error::Transport(k)) => Failed::Transport(k),
        UnlockError::Card(Error::Protocol(p)) => Failed::Protocol(p),
        UnlockError::Card(Error::Flow(f)) => Failed::Flow(f),
        other => Failed::Other(format!("{other:?}")),
    }
}

/// The new PIN every unblock here sets.
fn new_pin(which: Which) -> &'static [u8] {
    match which {
        Which::Piv => b"840259",
        Which::Gids | Which::Iso => b"Xk9w2",
    }
}

/// Runs the unblock of `which` and returns how it ended, and the transport.
fn unblock(which: Which, transport: TestTransport) -> (Result<(), Failed>, TestTransport) {
    let mut driver = Driver::new(transport);
    let mut key = LocalKey::new(AdminKey::piv_default(), fill_counter(3));
    let result = match which {
        Which::Piv => {
            let (puk, pin) =
                unlock::piv_input(&PinPolicy::PIV, b"12345678", b"840259", b"840259").unwrap();
            block_on(unlock::piv_unblock(&mut driver, &puk, &pin)).map_err(failed)
        }
        Which::Gids => block_on(unlock::gids_unblock(
            &mut driver,
            &unlock::admin_input(&PinPolicy::GIDS, b"Xk9w2", b"Xk9w2").unwrap(),
            [7; 16],
            &mut key,
        ))
        .map_err(failed),
        Which::Iso => block_on(unlock::iso_unblock(
            &mut driver,
            cardunlock_sim::ISO_PROFILE,
            &unlock::admin_input(&PinPolicy::GIDS, b"Xk9w2", b"Xk9w2").unwrap(),
            &mut key,
        ))
        .map_err(failed),
    };
    (result, driver.into_inner())
}

fn steps(which: Which) -> usize {
    let card = fresh(which);
    let (result, transport) = unblock(which, transport(&card));
    result.unwrap();
    transport.attempts()
}

fn spent_nothing(which: Which, card: &SharedCard) {
    let c = card.lock();
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
                let (result, _) =
                    unblock(which, transport(&card).with_fault(at, Fault::Fail(kind)));
                let err = result.expect_err("a failed transport must fail the unblock");
                assert_eq!(err, Failed::Transport(kind), "{which:?} at {at}");
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
                let (result, _) =
                    unblock(which, transport(&card).with_fault(at, Fault::Garbage(sw)));
                let err = result.expect_err("an unexpected status word must fail the unblock");
                // The card's refusal ends the flow (or, for a 63 C1 to RESET RETRY COUNTER,
                // reads as a wrong secret): never a transport or protocol error.
                assert!(
                    matches!(err, Failed::Flow(_)),
                    "{which:?} at {at}: SW {sw:02X?}: {err:?}"
                );
                // The real card answered 90 00 (the right secrets): no try is lost.
                spent_nothing(which, &card);
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
        // The steps whose answer data the flow reads: GIDS's two GENERAL AUTHENTICATE answers,
        // the ISO card's challenge. Junk there must fail the unblock.
        let parsed: &[usize] = match which {
            Which::Piv => &[],
            Which::Gids => &[2, 3],
            Which::Iso => &[1],
        };
        for at in 0..n {
            for garbage in GARBAGE {
                let card = fresh(which);
                let (result, _) = unblock(
                    which,
                    transport(&card).with_fault(at, Fault::Garbage(garbage)),
                );
                spent_nothing(which, &card);
                if garbage.len() < 2 {
                    assert_eq!(
                        result,
                        Err(Failed::Protocol(ProtocolError::ShortResponse)),
                        "{which:?} at {at}"
                    );
                } else if garbage.ends_with(&[0x90, 0x00]) {
                    // A well-formed 90 00 with junk data: where the flow reads the data it must
                    // refuse it; where it ignores the data (SELECT, MSE SET, RESET RETRY
                    // COUNTER, VERIFY) the unblock may go on, but a success must be real.
                    match result {
                        Ok(()) => {
                            assert!(!parsed.contains(&at), "{which:?} at {at}: junk accepted");
                            assert!(card.lock().pin_is(new_pin(which)), "{which:?} at {at}");
                        }
                        Err(e) => assert_eq!(
                            e,
                            Failed::Flow(FlowError::MalformedResponse(match which {
                                Which::Iso => Step::GetChallenge,
                                _ => Step::GeneralAuthenticate,
                            })),
                            "{which:?} at {at}"
                        ),
                    }
                } else {
                    let err = result.expect_err("garbage must fail the unblock");
                    assert!(matches!(err, Failed::Flow(_)), "{which:?} at {at}: {err:?}");
                }
            }
        }
    }
}

#[test]
fn protocol_error_is_typed() {
    let card = fresh(Which::Piv);
    let mut driver = Driver::new(transport(&card).with_fault(0, Fault::Garbage(&[0x90])));
    let (puk, pin) = unlock::piv_input(&PinPolicy::PIV, b"12345678", b"840259", b"840259").unwrap();
    let got = block_on(unlock::piv_unblock(&mut driver, &puk, &pin));
    assert_eq!(
        got,
        Err(UnlockError::Card(Error::Protocol(
            ProtocolError::ShortResponse
        )))
    );
}

#[test]
fn a_6c_answer_never_makes_the_driver_resend_a_puk() {
    // A wrong PUK: the card spends one try on RESET RETRY COUNTER, and its answer is replaced by
    // 6C 10 ("wrong Le, 16"). Resending would spend a second try.
    let card = fresh(Which::Piv);
    let mut driver = Driver::new(transport(&card).with_fault(1, Fault::Garbage(&[0x6C, 0x10])));
    let (puk, pin) = unlock::piv_input(&PinPolicy::PIV, b"87654321", b"840259", b"840259").unwrap();
    let got = block_on(unlock::piv_unblock(&mut driver, &puk, &pin)).map_err(failed);
    assert_eq!(
        got,
        Err(Failed::Flow(FlowError::UnexpectedStatus {
            step: Step::ResetRetryCounter,
            status: cardunlock_core::Status::WrongLe(0x10),
        }))
    );
    assert_eq!(
        driver.transport().seen().len(),
        2,
        "SELECT, RESET RETRY COUNTER once"
    );
    assert_eq!(
        card.lock().puk_tries_left(),
        Some(2),
        "exactly one PUK try spent"
    );
}
