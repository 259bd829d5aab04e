//! Findings of the fuzz targets (`fuzz/`), each replayed as the card answers that found it.

use cardunlock_core::driver::Driver;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock;
use cardunlock_core::{ErrorKind, Transport};
use embassy_futures::block_on;

/// A card answering with a fixed script and recording every command.
struct Script {
    answers: Vec<&'static [u8]>,
    sent: Vec<Vec<u8>>,
}

impl Script {
    fn new(answers: &[&'static [u8]]) -> Self {
        Self {
            answers: answers.iter().rev().copied().collect(),
            sent: Vec::new(),
        }
    }

    fn count(&self, ins: u8) -> usize {
        self.sent.iter().filter(|c| c[1] == ins).count()
    }
}

impl Transport for Script {
    type Error = ErrorKind;

    async fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, ErrorKind> {
        self.sent.push(command.to_vec());
        let a = self.answers.pop().ok_or(ErrorKind::CardRemoved)?;
        response[..a.len()].copy_from_slice(a);
        Ok(a.len())
    }
}

/// fuzz target `flows`: a card answering `6C XX` to RESET RETRY COUNTER made the driver send it
/// again (two PUK tries for one unblock). EXTERNAL and GENERAL AUTHENTICATE: see the driver's
/// own `a_command_with_a_secret_is_never_resent_on_6c`.
#[test]
fn wrong_le_never_resends_reset_retry_counter() {
    let mut driver = Driver::new(Script::new(&[
        &[0x90, 0x00],
        &[0x6C, 0x08],
        &[0x90, 0x00],
        &[0x90, 0x00],
    ]));
    let (puk, pin) =
        unlock::piv_input(&PinPolicy::PIV, b"12345678", b"840259", b"840259").expect("valid input");
    let result = block_on(unlock::piv_unblock(&mut driver, &puk, &pin));
    assert!(result.is_err(), "a 6C answer to RRC is no success");
    assert_eq!(driver.into_inner().count(0x2C), 1);
}

/// A `6C XX` to a command that spends nothing is still resent with the right Le.
#[test]
fn wrong_le_still_resends_a_status_query() {
    let mut driver = Driver::new(Script::new(&[&[0x6C, 0x02], &[0xAB, 0xCD, 0x90, 0x00]]));
    let cmd = cardunlock_core::Command::new(0x00, 0xCA, 0x01, 0x00).with_le(256);
    let data = block_on(driver.transceive(&cmd)).map(|r| r.data.to_vec());
    assert_eq!(data, Ok(vec![0xAB, 0xCD]));
    assert_eq!(driver.into_inner().sent[1], [0x00, 0xCA, 0x01, 0x00, 0x02]);
}
