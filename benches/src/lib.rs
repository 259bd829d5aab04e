//! Fixtures shared by the benchmarks in `benches/`: the APDUs every encoder is asked to write,
//! the CHUID answer every parser is given, and the flows run over the simulated card in-process
//! and over a `cardunlock_testkit::Replay` of its recorded exchanges, which allocates nothing.
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

use cardunlock_ccid::clock::NoTimeout;
use cardunlock_ccid::descriptor::{ClassDescriptor, ExchangeLevel};
use cardunlock_ccid::loopback::Loopback;
use cardunlock_ccid::session::{NoControl, Session};
use cardunlock_testkit::{Exchange, Recorder, Tape};
pub use cardunlock_testkit::{Exchanges, Replay};

/// Bytes of a [`Recording`]: room for a whole unblock (each exchange reserves the driver's
/// response buffer while it is in flight).
pub const RECORDING_BYTES: usize = 4096;

/// The simulated card's exchanges with one flow, on a fixed-size tape (no heap).
pub struct Recording(Tape<[u8; RECORDING_BYTES]>);

impl Recording {
    /// Runs `flow` over `card` through a recorder and keeps the exchanges. Panics when they do
    /// not fit.
    pub fn record(
        card: SimCard,
        flow: impl FnOnce(&mut Recorder<SimCard, [u8; RECORDING_BYTES]>),
    ) -> Self {
        let mut recorder = Recorder::new(card, [0; RECORDING_BYTES]);
        flow(&mut recorder);
        assert!(!recorder.is_full(), "the recording does not fit");
        Self(recorder.into_parts().1)
    }

    /// Number of APDUs the flow exchanged.
    pub fn apdus(&self) -> usize {
        self.0.len()
    }

    /// A transport that replays these exchanges from the start, each command checked.
    pub fn replay(&self) -> Replay<Exchanges<'_>> {
        self.0.replay()
    }

    /// The exchanges, in order.
    pub fn exchanges(&self) -> Exchanges<'_> {
        self.0.exchanges()
    }

    /// A powered CCID session at short APDU level over the in-memory loopback reader, with
    /// [`Recording::replay`] in its slot: the path the CCID framing is timed on.
    pub fn replay_session(&self) -> LoopbackSession<'_> {
        let level = ClassDescriptor::TYPICAL.with_level(ExchangeLevel::ShortApdu);
        let mut session = Session::new(
            Loopback::new(self.replay(), LOOPBACK_ATR),
            NoTimeout,
            NoControl,
            &level,
            0,
        )
        .expect("session");
        block_on(session.power_on()).expect("power on");
        session
    }
}

/// The ATR the loopback reader answers power-on with.
pub const LOOPBACK_ATR: &[u8] = &[0x3B, 0x80, 0x80, 0x01, 0x01];

/// [`Recording::replay_session`]'s session.
pub type LoopbackSession<'a> = Session<Loopback<Replay<Exchanges<'a>>>, NoTimeout, NoControl>;

/// A factory PIV card with its PIN blocked.
pub fn blocked_piv_card() -> SimCard {
    SimCard::new(Config::Piv(PivConfig::factory().blocked()))
}

/// A factory GIDS card with its PIN blocked.
pub fn blocked_gids_card() -> SimCard {
    SimCard::new(Config::Gids(GidsConfig::factory().blocked()))
}

/// The full PIV PUK unblock (policy check, SELECT, RESET RETRY COUNTER, VERIFY) over `transport`.
/// Panics unless it succeeds. Never in line, so a profiler can count it alone
/// (`--toggle-collect='cardunlock_benches::piv_unblock*'`, see `examples/ccid_floor.rs`).
#[inline(never)]
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

/// The simulated GIDS card's exchanges with [`gids_unblock`], in order, as (command, answer):
/// what `firmware-size/src/card_answers.rs` replays to run the GIDS unblock on the firmware
/// (the library test checks that file against this).
pub fn gids_unblock_exchanges() -> Vec<(Vec<u8>, Vec<u8>)> {
    exchanges_with(blocked_gids_card(), NEW_GIDS_PIN, |r| {
        gids_unblock(r);
    })
}

/// The simulated PIV card's exchanges with [`piv_unblock`], in order, as (command, answer): what
/// `firmware-size/src/card_answers.rs` replays to run the PIV unblock on the firmware.
pub fn piv_unblock_exchanges() -> Vec<(Vec<u8>, Vec<u8>)> {
    exchanges_with(blocked_piv_card(), NEW_PIV_PIN, |r| {
        piv_unblock(r);
    })
}

/// The exchanges of `flow` with `card`, which must end with `new_pin` set.
fn exchanges_with(
    card: SimCard,
    new_pin: &[u8],
    flow: impl FnOnce(&mut Recorder<SimCard, Vec<u8>>),
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut recorder = Recorder::new(card, vec![0; RECORDING_BYTES]);
    flow(&mut recorder);
    let (card, tape) = recorder.into_parts();
    assert!(card.pin_is(new_pin));
    owned(tape.exchanges())
}

fn owned(exchanges: Exchanges<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
    exchanges
        .map(|e: Exchange<'_>| {
            (
                e.command.unwrap_or_default().to_vec(),
                e.answer.expect("the card answered").to_vec(),
            )
        })
        .collect()
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

    fn hex(bytes: &[u8]) -> String {
        let hex: Vec<String> = bytes.iter().map(|b| format!("0x{b:02X}")).collect();
        format!("&[{}]", hex.join(", "))
    }

    /// Prints the exchanges for `firmware-size/src/card_answers.rs` (then `cargo fmt`).
    #[test]
    #[ignore = "prints the exchanges for firmware-size/src/card_answers.rs"]
    fn print_firmware_exchanges() {
        for (name, exchanges) in [
            ("PIV_UNBLOCK", piv_unblock_exchanges()),
            ("GIDS_UNBLOCK", gids_unblock_exchanges()),
        ] {
            println!(
                "pub const {name}: [Exchange<'static>; {}] = [",
                exchanges.len()
            );
            for (command, answer) in exchanges {
                println!("    Exchange::new({}, {}),", hex(&command), hex(&answer));
            }
            println!("];");
        }
    }

    /// The exchanges the firmware-like binary replays (commands checked there) are the
    /// simulated card's, for the same PUK and PIN, and the same R1, Z1 and admin key as
    /// [`gids_unblock`].
    #[test]
    fn firmware_replays_the_simulated_cards() {
        for (replayed, recorded) in [
            (&firmware::PIV_UNBLOCK[..], piv_unblock_exchanges()),
            (&firmware::GIDS_UNBLOCK[..], gids_unblock_exchanges()),
        ] {
            let replayed: Vec<(&[u8], &[u8])> = replayed
                .iter()
                .map(|e| (e.command.unwrap(), e.answer.unwrap()))
                .collect();
            let recorded: Vec<(&[u8], &[u8])> = recorded
                .iter()
                .map(|(c, a)| (c.as_slice(), a.as_slice()))
                .collect();
            assert_eq!(replayed, recorded);
        }
        assert_eq!(firmware::GIDS_R1, GIDS_R1);
        assert_eq!(firmware::GIDS_Z1_BYTE, 0x44);
        assert_eq!(firmware::NEW_GIDS_PIN, NEW_GIDS_PIN);
        assert_eq!(firmware::PUK, PUK);
        assert_eq!(firmware::NEW_PIV_PIN, NEW_PIV_PIN);
    }

    #[test]
    fn flows_run_against_the_sim_and_the_replay() {
        let piv = piv_unblock(blocked_piv_card());
        assert!(piv.pin_is(NEW_PIV_PIN));
        let gids = gids_unblock(blocked_gids_card());
        assert!(gids.pin_is(NEW_GIDS_PIN));

        let piv = record_piv_unblock();
        assert_eq!(piv.apdus(), 3);
        let replay = piv_unblock(piv.replay());
        assert_eq!((replay.replayed(), replay.mismatch()), (3, None));
        let gids = record_gids_unblock();
        assert_eq!(gids.apdus(), 6);
        let replay = gids_unblock(gids.replay());
        assert_eq!((replay.replayed(), replay.mismatch()), (6, None));
    }
}
