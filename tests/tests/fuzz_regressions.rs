//! Findings of the fuzz targets (`fuzz/`), each replayed as the card answers that found it.

use cardunlock_core::driver::Driver;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock;
use cardunlock_testkit::{Exchange, Recorder, Replay, Tape};
use embassy_futures::block_on;

/// A card answering with `answers` in order (then gone), keeping every command.
fn script<'a>(
    answers: &'a [&'a [u8]],
) -> Recorder<Replay<impl Iterator<Item = Exchange<'a>>>, Vec<u8>> {
    let exchanges = answers.iter().map(|a| Exchange::any(a));
    Recorder::new(Replay::new(exchanges), vec![0; 64 * 1024])
}

/// The commands the card saw with instruction `ins`.
fn count(tape: &Tape<Vec<u8>>, ins: u8) -> usize {
    tape.commands().filter(|c| c.get(1) == Some(&ins)).count()
}

/// fuzz target `flows`: a card answering `6C XX` to RESET RETRY COUNTER made the driver send it
/// again (two PUK tries for one unblock). EXTERNAL and GENERAL AUTHENTICATE: see the driver's
/// own `a_command_with_a_secret_is_never_resent_on_6c`.
#[test]
fn wrong_le_never_resends_reset_retry_counter() {
    let mut driver = Driver::new(script(&[
        &[0x90, 0x00],
        &[0x6C, 0x08],
        &[0x90, 0x00],
        &[0x90, 0x00],
    ]));
    let (puk, pin) =
        unlock::piv_input(&PinPolicy::PIV, b"12345678", b"840259", b"840259").expect("valid input");
    let result = block_on(unlock::piv_unblock(&mut driver, &puk, &pin));
    assert!(result.is_err(), "a 6C answer to RRC is no success");
    assert_eq!(count(driver.into_inner().tape(), 0x2C), 1);
}

/// A `6C XX` to a command that spends nothing is still resent with the right Le.
#[test]
fn wrong_le_still_resends_a_status_query() {
    let mut driver = Driver::new(script(&[&[0x6C, 0x02], &[0xAB, 0xCD, 0x90, 0x00]]));
    let cmd = cardunlock_core::Command::new(0x00, 0xCA, 0x01, 0x00).with_le(256);
    let data = block_on(driver.transceive(&cmd)).map(|r| r.data.to_vec());
    assert_eq!(data, Ok(vec![0xAB, 0xCD]));
    let recorder = driver.into_inner();
    let sent: Vec<&[u8]> = recorder.tape().commands().collect();
    assert_eq!(sent[1], [0x00, 0xCA, 0x01, 0x00, 0x02]);
}
