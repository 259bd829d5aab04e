//! Fixtures shared by the benchmarks in `benches/`: the APDUs every encoder is asked to write,
//! the CHUID answer every parser is given, and the flows run over the simulated card in-process
//! and over `cardunlock_sim::transport::Replay`, a replay of its recorded answers that allocates
//! nothing.
//!
//! The tests at the bottom check that the peers are asked to do the same work as the core: they
//! produce the same bytes for the same command (or, for `apdu`'s extended length, that it
//! cannot).

use cardunlock_core::crypto::AdminKey;
use cardunlock_core::driver::Driver;
use cardunlock_core::flow::LocalKey;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::{piv, unlock, Command, Transport};
use cardunlock_sim::{Config, GidsConfig, PivConfig, SimCard};
use embassy_futures::block_on;

/// The PUK of a factory PIV card.
pub const PUK: &[u8] = b"12345678";
/// A new PIV PIN the PIV policy accepts.
pub const NEW_PIV_PIN: &[u8] = b"840259";
/// A new GIDS PIN the GIDS policy accepts.
pub const NEW_GIDS_PIN: &[u8] = b"Xk9w2";
/// The host random R1 of the GIDS mutual authentication (fixed: the benches are deterministic).
pub const GIDS_R1: [u8; 16] = [0x21; 16];

/// RESET RETRY COUNTER data: PUK `12345678` and new PIN `840259`, both FF-padded to 8 bytes.
pub const RRC_DATA: [u8; 16] = [
    b'1', b'2', b'3', b'4', b'5', b'6', b'7', b'8', b'8', b'4', b'0', b'2', b'5', b'9', 0xFF, 0xFF,
];

/// Length of the extended PUT DATA payload.
pub const PUT_DATA_LEN: usize = 1000;

/// The extended PUT DATA payload (a certificate-sized object).
pub fn put_data_payload() -> [u8; PUT_DATA_LEN] {
    let mut data = [0u8; PUT_DATA_LEN];
    for (i, b) in data.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(7);
    }
    data
}

/// SELECT PIV with the 9-byte AID and Le `00` (Ne 256): 15 bytes.
pub fn select_piv() -> Command<'static> {
    Command::new(0x00, 0xA4, 0x04, 0x00)
        .with_data(&piv::AID)
        .with_le(256)
}

/// PIV RESET RETRY COUNTER (16 data bytes, no Le): 21 bytes.
pub fn reset_retry_counter() -> Command<'static> {
    Command::new(0x00, 0x2C, 0x00, 0x80).with_data(&RRC_DATA)
}

/// PUT DATA with 1000 bytes, extended length (`00 03 E8`, no Le): 1007 bytes.
pub fn put_data(payload: &[u8]) -> Command<'_> {
    Command::new(0x00, 0xDB, 0x3F, 0xFF).with_data(payload)
}

/// The bytes [`Command::encode`] writes for `cmd` (the reference every peer must match).
pub fn encoded(cmd: &Command<'_>) -> Vec<u8> {
    let mut out = vec![0u8; cmd.encoded_len()];
    let n = cmd.encode(&mut out).expect("fits");
    out.truncate(n);
    out
}

/// The simulated PIV card's answer to GET DATA CHUID after SELECT: `53 3B <30 FASC-N> <34 GUID>
/// <35 expiry> <3E> <FE>` and `90 00`, 63 bytes.
pub fn chuid_answer() -> Vec<u8> {
    let mut card = SimCard::new(Config::Piv(PivConfig::factory()));
    let select = card.transmit(&encoded(&select_piv()));
    assert_eq!(select[select.len() - 2..], [0x90, 0x00], "SELECT PIV");
    let answer = card.transmit(&[
        0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03, 0x5F, 0xC1, 0x02, 0x00,
    ]);
    assert_eq!(answer[answer.len() - 2..], [0x90, 0x00], "GET DATA CHUID");
    answer
}

pub use cardunlock_sim::transport::{Recording, Replay};

/// A factory PIV card with its PIN blocked.
pub fn blocked_piv_card() -> SimCard {
    SimCard::new(Config::Piv(PivConfig::factory().blocked()))
}

/// A factory GIDS card with its PIN blocked.
pub fn blocked_gids_card() -> SimCard {
    SimCard::new(Config::Gids(GidsConfig::factory().blocked()))
}

/// The full PIV PUK unblock (policy check, SELECT, RESET RETRY COUNTER, VERIFY) over `transport`.
/// Panics unless it succeeds.
pub fn piv_unblock<T: Transport>(transport: T) -> T {
    let mut driver = Driver::new(transport);
    block_on(unlock::piv_unblock(
        &mut driver,
        &cardunlock_core::secret::PivPuk::new(PUK).unwrap(),
        &cardunlock_core::secret::NewPin::confirmed(
            &PinPolicy::PIV,
            NEW_PIV_PIN,
            NEW_PIV_PIN,
            cardunlock_core::secret::PinContext::NONE.puk(PUK),
        )
        .unwrap(),
    ))
    .expect("PIV unblock");
    driver.into_inner()
}

/// The full GIDS admin-key unblock (policy check, SELECT, mutual authentication with the factory
/// 3DES admin key, RESET RETRY COUNTER, VERIFY) over `transport`. Panics unless it succeeds.
pub fn gids_unblock<T: Transport>(transport: T) -> T {
    let mut driver = Driver::new(transport);
    // Same Z1 bytes in every run, so recorded card answers fit a replayed run.
    let mut key = LocalKey::new(
        AdminKey::piv_default(),
        cardunlock_sim::TestRng::repeat(0x44),
    );
    block_on(unlock::gids_unblock(
        &mut driver,
        &unlock::admin_input(&PinPolicy::GIDS, NEW_GIDS_PIN, NEW_GIDS_PIN).unwrap(),
        GIDS_R1,
        &mut key,
    ))
    .expect("GIDS unblock");
    driver.into_inner()
}

/// The simulated card's answers to a PIV unblock, for [`Replay`].
pub fn record_piv_unblock() -> Recording {
    Recording::record(blocked_piv_card(), |r| {
        piv_unblock(r);
    })
}

/// The simulated card's answers to a GIDS unblock, for [`Replay`].
pub fn record_gids_unblock() -> Recording {
    Recording::record(blocked_gids_card(), |r| {
        gids_unblock(r);
    })
}

/// A transport that keeps every answer of the card it wraps, as owned bytes.
struct KeepAnswers {
    card: SimCard,
    answers: Vec<Vec<u8>>,
}

impl Transport for KeepAnswers {
    type Error = cardunlock_core::ErrorKind;

    async fn transmit(
        &mut self,
        command: &[u8],
        response: &mut [u8],
    ) -> Result<usize, cardunlock_core::ErrorKind> {
        let answer = self.card.transmit(command);
        let out = response
            .get_mut(..answer.len())
            .ok_or(cardunlock_core::ErrorKind::ResponseTooLong)?;
        out.copy_from_slice(&answer);
        self.answers.push(answer);
        Ok(out.len())
    }
}

/// The simulated GIDS card's answers to [`gids_unblock`], in order: what
/// `firmware-size/src/card_answers.rs` replays to measure the GIDS unblock's stack on the
/// firmware (the library test checks that file against this).
pub fn gids_unblock_answers() -> Vec<Vec<u8>> {
    let kept = gids_unblock(KeepAnswers {
        card: blocked_gids_card(),
        answers: Vec::new(),
    });
    assert!(kept.card.pin_is(NEW_GIDS_PIN));
    kept.answers
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardunlock_core::{tlv, Response};

    fn iso7816_bytes(cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8], le: u16) -> Vec<u8> {
        let class = iso7816::command::class::Class::from_byte(cla).unwrap();
        let builder = iso7816::command::CommandBuilder::new(class, ins.into(), p1, p2, data, le);
        let mut buf = vec![0u8; 2048];
        let mut w: &mut [u8] = &mut buf;
        builder.serialize_into(&mut w).unwrap();
        let n = 2048 - w.len();
        buf.truncate(n);
        buf
    }

    fn apdu_bytes(cmd: &apdu::Command<'_>) -> Vec<u8> {
        let mut buf = vec![0u8; cmd.len()];
        cmd.write(&mut buf);
        buf
    }

    #[test]
    fn select_piv_is_the_same_for_every_encoder() {
        let ours = encoded(&select_piv());
        assert_eq!(
            ours,
            [
                0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00,
                0x00
            ]
        );
        assert_eq!(iso7816_bytes(0x00, 0xA4, 0x04, 0x00, &piv::AID, 256), ours);
        let cmd = apdu::Command::new_with_payload_le(0x00, 0xA4, 0x04, 0x00, 256, &piv::AID);
        assert_eq!(apdu_bytes(&cmd), ours);
    }

    #[test]
    fn reset_retry_counter_is_the_same_for_every_encoder() {
        let ours = encoded(&reset_retry_counter());
        assert_eq!(ours.len(), 21);
        assert_eq!(ours[..5], [0x00, 0x2C, 0x00, 0x80, 0x10]);
        assert_eq!(iso7816_bytes(0x00, 0x2C, 0x00, 0x80, &RRC_DATA, 0), ours);
        let cmd = apdu::Command::new_with_payload(0x00, 0x2C, 0x00, 0x80, &RRC_DATA);
        assert_eq!(apdu_bytes(&cmd), ours);
    }

    #[test]
    fn extended_put_data_matches_iso7816_and_apdu_gets_it_wrong() {
        let payload = put_data_payload();
        let ours = encoded(&put_data(&payload));
        assert_eq!(ours.len(), 4 + 3 + PUT_DATA_LEN);
        assert_eq!(ours[..7], [0x00, 0xDB, 0x3F, 0xFF, 0x00, 0x03, 0xE8]);
        assert_eq!(iso7816_bytes(0x00, 0xDB, 0x3F, 0xFF, &payload, 0), ours);
        // apdu 0.4 (apdu-core, default features) writes Lc as one byte: 1000 -> E8.
        let cmd = apdu::Command::new_with_payload(0x00, 0xDB, 0x3F, 0xFF, &payload);
        let theirs = apdu_bytes(&cmd);
        assert_eq!(theirs[..5], [0x00, 0xDB, 0x3F, 0xFF, 0xE8]);
        assert_ne!(theirs, ours);
    }

    #[test]
    fn chuid_answer_holds_the_guid_for_every_parser() {
        let answer = chuid_answer();
        assert_eq!(answer.len(), 63);
        let response = Response::parse(&answer).unwrap();
        assert!(response.status.is_success());
        let chuid = tlv::find(response.data, 0x53).unwrap().unwrap();
        let guid = tlv::find(chuid, 0x34).unwrap().unwrap();
        assert_eq!(guid.len(), 16);

        let theirs = apdu::Response::from(answer.as_slice());
        assert_eq!(theirs.payload, response.data);
        assert_eq!(theirs.trailer, (0x90, 0x00));

        use iso7816::tlv::{get_data_object, Tag};
        let path = [Tag::from(0x53u8), Tag::from(0x34u8)];
        assert_eq!(get_data_object(&path, response.data), Some(guid));
    }

    mod firmware {
        include!("../../firmware-size/src/card_answers.rs");
    }

    /// The answers the firmware-like binary replays for its GIDS stack measurement are the
    /// simulated card's, for the same R1, Z1 and admin key as [`gids_unblock`].
    #[test]
    #[ignore = "prints the answers for firmware-size/src/card_answers.rs"]
    fn print_gids_answers() {
        for a in gids_unblock_answers() {
            let hex: Vec<String> = a.iter().map(|b| format!("0x{b:02X}")).collect();
            println!("    &[{}],", hex.join(", "));
        }
    }

    #[test]
    fn firmware_replays_the_simulated_gids_card() {
        let answers = gids_unblock_answers();
        let replayed: Vec<&[u8]> = firmware::GIDS_UNBLOCK.to_vec();
        assert_eq!(
            replayed,
            answers.iter().map(Vec::as_slice).collect::<Vec<_>>()
        );
        assert_eq!(firmware::GIDS_R1, GIDS_R1);
        assert_eq!(firmware::GIDS_Z1_BYTE, 0x44);
        assert_eq!(firmware::NEW_GIDS_PIN, NEW_GIDS_PIN);
    }

    #[test]
    fn flows_run_against_the_sim_and_the_replay() {
        let piv = piv_unblock(blocked_piv_card());
        assert!(piv.pin_is(NEW_PIV_PIN));
        let gids = gids_unblock(blocked_gids_card());
        assert!(gids.pin_is(NEW_GIDS_PIN));

        let piv = record_piv_unblock();
        assert_eq!(piv.apdus(), 3);
        assert_eq!(piv_unblock(piv.replay()).replayed(), 3);
        let gids = record_gids_unblock();
        assert_eq!(gids.apdus(), 6);
        assert_eq!(gids_unblock(gids.replay()).replayed(), 6);
    }
}
