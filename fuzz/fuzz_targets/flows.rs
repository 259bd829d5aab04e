//! The core's flows driven by arbitrary card answers: a card that answers every command of a
//! PIV unblock, a GIDS unblock, an ISO admin unblock or a status read with the next frame of the
//! fuzz input (see `cardunlock_fuzz`), through the real driver (`61 XX`, `6C XX`, chaining).
//!
//! Whatever the card says: never a panic; RESET RETRY COUNTER at most once; the admin
//! cryptogram (GIDS GENERAL AUTHENTICATE step 2, ISO EXTERNAL AUTHENTICATE) at most once; the
//! new PIN's VERIFY only after RESET RETRY COUNTER; a status read sends no command that can
//! spend a try; an unblock that reports success sent RESET RETRY COUNTER.
#![no_main]

use std::sync::{Mutex, PoisonError};

use cardunlock_core::crypto::AdminKey;
use cardunlock_core::driver::Driver;
use cardunlock_core::flow::{AdminRequest, AdminResponder, LocalKey, MAX_ANSWER_LEN};
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock::{self, PivUnblockOptions, Select};
use cardunlock_fuzz::{replay_card, TAPE_BYTES};
use cardunlock_sim::TestRng;
use embassy_futures::block_on;
use libfuzzer_sys::fuzz_target;

/// An admin responder: the real local key, or one that vouches for any card (so the fuzzer
/// reaches the commands after the card check), or one that answers with the wrong length.
struct Responder {
    mode: u8,
    key: LocalKey<TestRng>,
    r1r2: [u8; 32],
}

/// The responder's refusal.
#[derive(Debug)]
struct Refused;

impl core::fmt::Display for Refused {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("refused")
    }
}

impl AdminResponder for Responder {
    type Error = Refused;

    async fn answer(
        &mut self,
        request: AdminRequest<'_>,
        out: &mut [u8; MAX_ANSWER_LEN],
    ) -> Result<usize, Refused> {
        if let AdminRequest::GidsCryptogram { r1, r2 } = request {
            self.r1r2[..16].copy_from_slice(r1);
            self.r1r2[16..].copy_from_slice(r2);
        }
        match (self.mode % 4, request) {
            (1, AdminRequest::GidsCardCryptogram { .. }) => {
                out[..32].copy_from_slice(&self.r1r2);
                out[32..].fill(0);
                out[39] = 0x80;
                Ok(MAX_ANSWER_LEN)
            }
            (2, _) => Ok(usize::from(self.mode >> 2) % (MAX_ANSWER_LEN + 1)),
            (3, _) => Err(Refused),
            _ => self.key.answer_now(request, out).map_err(|_| Refused),
        }
    }
}

/// The replay card's tape, reused from run to run.
static TAPE: Mutex<Vec<u8>> = Mutex::new(Vec::new());

const RRC: u8 = 0x2C;
const VERIFY: u8 = 0x20;

fuzz_target!(|data: &[u8]| {
    let [which, flags, rest @ ..] = data else {
        return;
    };
    let mut tape = TAPE.lock().unwrap_or_else(PoisonError::into_inner);
    tape.resize(TAPE_BYTES, 0);
    let card = replay_card(rest, flags & 1 != 0, &mut tape);
    let mut driver = Driver::new(card);
    let mut responder = Responder {
        mode: flags >> 1,
        key: LocalKey::new(AdminKey::piv_default(), TestRng::counter(3)),
        r1r2: [0; 32],
    };
    let (puk, piv_pin) =
        unlock::piv_input(&PinPolicy::PIV, b"12345678", b"840259", b"840259").expect("input");
    let pin = unlock::admin_input(&PinPolicy::GIDS, b"Xk9w2", b"Xk9w2").expect("input");
    // With bit 7: a status read first, and the unblock after it in the same session (the
    // application it selected, as the CLI does).
    let which = which % 6;
    let select = if flags & 0x80 != 0 && (2..4).contains(&which) {
        match block_on(unlock::read_status_selected(
            &mut driver,
            cardunlock_sim::ISO_PROFILE,
        )) {
            Ok((_, selected)) => Some(Select::After(selected)),
            Err(_) => None,
        }
    } else {
        Some(Select::Application)
    };
    let ok = match (which, select) {
        (_, None) => false,
        (0, _) => block_on(unlock::piv_unblock(&mut driver, &puk, &piv_pin)).is_ok(),
        (1, _) => block_on(unlock::piv_unblock_with(
            &mut driver,
            &puk,
            &piv_pin,
            PivUnblockOptions::LEAN,
        ))
        .is_ok(),
        (2, Some(select)) => block_on(unlock::gids_unblock_with(
            &mut driver,
            &pin,
            [7; 16],
            &mut responder,
            select,
        ))
        .is_ok(),
        (3, Some(select)) => block_on(unlock::iso_unblock_with(
            &mut driver,
            cardunlock_sim::ISO_PROFILE,
            &pin,
            &mut responder,
            select,
        ))
        .is_ok(),
        _ => {
            let status = block_on(unlock::read_status(
                &mut driver,
                cardunlock_sim::ISO_PROFILE,
            ));
            if let Ok(s) = &status {
                let _ = format!("{s:?}");
            }
            status.is_ok()
        }
    };
    let card = driver.into_inner();
    let sent: Vec<&[u8]> = card.tape().commands().collect();
    let count_ins = |ins: u8| sent.iter().filter(|c| c.get(1) == Some(&ins)).count();
    let rrc = count_ins(RRC);
    assert!(
        rrc <= 1,
        "RESET RETRY COUNTER sent {rrc} times: {sent:02X?}"
    );
    let gids_step2 = sent
        .iter()
        .filter(|c| c.get(1) == Some(&0x87) && c.get(5..7) == Some(&[0x7C, 0x2A]))
        .count();
    assert!(gids_step2 <= 1, "GIDS cryptogram sent {gids_step2} times");
    let external = count_ins(0x82);
    assert!(external <= 1, "EXTERNAL AUTHENTICATE sent {external} times");
    // VERIFY with data (the new PIN) only after the RESET RETRY COUNTER.
    let first_rrc = sent.iter().position(|c| c.get(1) == Some(&RRC));
    for (i, c) in sent.iter().enumerate() {
        if c.get(1) == Some(&VERIFY) && c.len() > 5 {
            assert!(
                first_rrc.is_some_and(|r| r < i),
                "VERIFY with data before RESET RETRY COUNTER: {sent:02X?}"
            );
        }
    }
    if which >= 4 {
        assert_eq!(rrc, 0);
        assert_eq!(external + gids_step2, 0);
        assert!(!sent
            .iter()
            .any(|c| matches!(c.get(1), Some(&VERIFY) | Some(&0x24)) && c.len() > 5));
    } else if ok {
        assert_eq!(
            rrc, 1,
            "an unblock reported success without RESET RETRY COUNTER"
        );
    }
});
