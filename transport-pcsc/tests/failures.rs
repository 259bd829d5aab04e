//! What goes wrong on a real workstation, through real pcscd: the card pulled in the middle of
//! an unblock, the card reset by another application, another application holding the reader,
//! no card, no such reader.

mod common;

use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use cardunlock_core::driver::Driver;
use cardunlock_core::flow::{NoAdmin, PivUnblock, ReadStatus};
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::secret::{NewPin, PinContext, PivPuk};
use cardunlock_core::{Command, ErrorKind, Transport, TransportError};
use cardunlock_pcsc::pcsc::Disposition;
use cardunlock_pcsc::{PcscError, PcscTransport, ReaderChoice, ShareMode};
use cardunlock_sim::{Config, PivConfig, SimCard};
use cardunlock_virtual_readers::{reader_addr, Connection, StopHandle};
use common::{empty_reader, insert, pcsc, reader, READER_INDEX};
use embassy_futures::block_on;

const SELECT_PIV: Command<'static> = Command::new(0x00, 0xA4, 0x04, 0x00)
    .with_data(&[0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00])
    .with_le(256);
const VERIFY_STATUS: Command<'static> = Command::new(0x00, 0x20, 0x00, 0x80);

/// A transport that pulls the card out of the reader before command number `after + 1`.
struct PullCardAfter<T> {
    inner: T,
    after: usize,
    pull: StopHandle,
}

impl<T: Transport> Transport for PullCardAfter<T> {
    type Error = T::Error;

    async fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, T::Error> {
        if self.after == 0 {
            self.pull.stop();
        } else {
            self.after -= 1;
        }
        self.inner.transmit(command, response).await
    }
}

#[test]
fn card_removed_mid_unblock_leaves_the_puk_untouched() {
    let card = insert(Config::Piv(PivConfig::factory().blocked()));
    let mut transport = card.connect();
    let pin = NewPin::confirmed(&PinPolicy::PIV, b"840259", b"840259", PinContext::NONE).unwrap();
    let puk = PivPuk::new(b"12345678").unwrap();
    let mut flow = PivUnblock::new(&puk, &pin);
    let err = {
        let mut session = transport.begin().unwrap();
        // SELECT goes through, then the card leaves before RESET RETRY COUNTER.
        let pulling = PullCardAfter {
            inner: &mut session,
            after: 1,
            pull: card.served.stop_handle(),
        };
        block_on(Driver::new(pulling).run(&mut flow, &mut NoAdmin)).unwrap_err()
    };
    let kind = err.transport_kind();
    assert!(
        matches!(kind, Some(ErrorKind::CardRemoved | ErrorKind::NoCard)),
        "{err:?}"
    );
    let sim = card.sim();
    assert_eq!(sim.commands_seen(), 1, "only SELECT reached the card");
    assert_eq!(sim.puk_tries_left(), Some(3));
    assert_eq!(sim.pin_tries_left(), 0);
    assert!(sim.pin_is(b"123456"));
    drop(sim);

    // The connection is dead for good: the next command says so too.
    let mut rx = [0u8; 258];
    let again = block_on(transport.transmit(&[0x00, 0x20, 0x00, 0x80], &mut rx)).unwrap_err();
    assert!(
        matches!(again.kind(), ErrorKind::CardRemoved | ErrorKind::NoCard),
        "{again:?}"
    );
}

/// vpcd answers a command whose card closed its connection cleanly (no reset) with an empty
/// success; pcscd then marks the card mute after the failed reset of our disconnect, while its
/// reader poll may never see the reader empty if the next card connects at once. The empty
/// answer must read as a pulled card, and the next card must be seen.
#[test]
fn a_card_closing_its_connection_under_a_command_is_removed_and_the_next_card_is_seen() {
    {
        let (pcsc, _lock) = empty_reader();
        let stop = AtomicBool::new(false);
        let mut connection =
            Connection::connect(reader_addr(READER_INDEX), Duration::from_secs(10), &stop).unwrap();
        let stream = connection.try_clone_stream().unwrap();
        let serving = thread::spawn(move || {
            let mut card = SimCard::new(Config::Piv(PivConfig::factory().blocked()));
            let never = AtomicBool::new(false);
            // Ends with a broken pipe: vpcd closes before the card's answer.
            let _ = connection.serve(&mut card, &never);
            card
        });
        pcsc.wait_for_card(&reader(), Duration::from_secs(10))
            .unwrap();
        let mut transport = pcsc.connect(&reader(), ShareMode::Shared).unwrap();
        let mut driver = Driver::new(&mut transport);
        assert!(block_on(driver.transceive(&SELECT_PIV))
            .unwrap()
            .status
            .is_success());
        // The card says goodbye (FIN) but still reads: vpcd's send succeeds, its read ends.
        stream.shutdown(Shutdown::Write).unwrap();
        let err = block_on(driver.transceive(&VERIFY_STATUS)).unwrap_err();
        assert_eq!(
            err.transport_kind(),
            Some(ErrorKind::CardRemoved),
            "{err:?}"
        );
        drop(transport);
        let _ = stream.shutdown(Shutdown::Both);
        let card = serving.join().unwrap();
        assert_eq!(card.pin_tries_left(), 0);
        assert_eq!(card.puk_tries_left(), Some(3));
    }
    // The next card in the reader is seen and works (before, the helper's wait for an empty
    // reader took the mute card for gone and pcscd never saw the new one).
    let card = insert(Config::Piv(PivConfig::factory()));
    let mut transport = card.connect();
    let mut driver = Driver::new(&mut transport);
    let r = block_on(driver.transceive(&SELECT_PIV)).unwrap();
    assert!(r.status.is_success());
}

#[test]
fn card_reset_by_another_application_is_reported_not_retried() {
    let card = insert(Config::Piv(PivConfig::factory()));
    let mut transport = card.connect();
    let mut driver = Driver::new(&mut transport);
    let r = block_on(driver.transceive(&SELECT_PIV)).unwrap();
    assert!(r.status.is_success());
    assert!(card.sim().is_selected());

    // Another application resets the card between our two commands.
    card.connect().disconnect(Disposition::ResetCard).unwrap();
    assert!(!card.sim().is_selected(), "the reset reached the card");
    let seen = card.sim().commands_seen();

    let err = block_on(driver.transceive(&VERIFY_STATUS)).unwrap_err();
    assert_eq!(err.transport_kind(), Some(ErrorKind::CardReset), "{err:?}");
    assert_eq!(
        card.sim().commands_seen(),
        seen,
        "the command was not resent"
    );

    // The transport reconnected: the flow can simply start again.
    let status = block_on(transport.run_exclusive(
        &mut ReadStatus::new(cardunlock_sim::ISO_PROFILE),
        &mut NoAdmin,
    ))
    .unwrap();
    assert_eq!(status.pin_tries_left, Some(3));
}

#[test]
fn a_session_keeps_other_applications_out() {
    let card = insert(Config::Piv(PivConfig::factory()));
    let mut ours = card.connect();
    let mut other = card.connect();
    let other_done = Arc::new(AtomicBool::new(false));

    let session = ours.begin().unwrap();
    let done = Arc::clone(&other_done);
    let intruder = thread::spawn(move || {
        let mut rx = [0u8; 258];
        let r = block_on(other.transmit(&[0x00, 0x20, 0x00, 0x80], &mut rx));
        done.store(true, Ordering::Release);
        r.map(|n| rx[..n].to_vec())
    });
    thread::sleep(Duration::from_millis(500));
    assert!(
        !other_done.load(Ordering::Acquire),
        "another application's APDU got in during our transaction"
    );
    session.end(Disposition::LeaveCard).unwrap();
    let answer = intruder.join().unwrap().unwrap();
    assert_eq!(&answer[answer.len() - 2..], &[0x69, 0x85]);
}

#[test]
fn exclusive_connection_makes_the_reader_busy_for_others() {
    let card = insert(Config::Piv(PivConfig::factory()));
    let _exclusive = card.pcsc.connect(&reader(), ShareMode::Exclusive).unwrap();
    let err = card.pcsc.connect(&reader(), ShareMode::Shared).unwrap_err();
    assert_eq!(err, PcscError::ReaderInUse);
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(
        err.to_string(),
        "the reader is in use by another application"
    );
}

#[test]
fn reader_list_shows_the_card() {
    let card = insert(Config::Piv(PivConfig::factory()));
    let readers = card.pcsc.list_readers().unwrap();
    let ours = readers.iter().find(|r| r.name == reader()).unwrap();
    assert!(ours.card_present);
    assert_eq!(ours.atr, card.sim().atr());
    assert_eq!(
        card.pcsc
            .find_reader(&ReaderChoice::Name(reader()))
            .unwrap(),
        reader()
    );
    assert_eq!(
        card.pcsc
            .find_reader(&ReaderChoice::Name("virtual pcd 00 00".into()))
            .unwrap(),
        reader()
    );
    // The other vpcd reader may hold a card of another test run: then the choice is ambiguous.
    match card.pcsc.find_reader(&ReaderChoice::WithCard) {
        Ok(name) => assert_eq!(name, reader()),
        Err(PcscError::AmbiguousReader { matching, .. }) => assert!(matching.contains(&reader())),
        Err(e) => panic!("{e:?}"),
    }
    let transport = card.connect();
    assert_eq!(transport.atr().unwrap(), card.sim().atr());
    assert!(transport.protocol().is_some());
}

#[test]
fn no_card_in_the_reader() {
    let (pcsc, _lock) = empty_reader();
    let err = pcsc.connect(&reader(), ShareMode::Shared).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoCard, "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("no card in reader \"{}\"", reader())
    );
    let err = pcsc
        .wait_for_card(&reader(), Duration::from_millis(300))
        .unwrap_err();
    assert_eq!(err, PcscError::Timeout);
    assert_eq!(err.kind(), ErrorKind::Timeout);
}

#[test]
fn no_such_reader() {
    let pcsc = pcsc();
    let err = pcsc
        .find_reader(&ReaderChoice::Name("No Such Reader".into()))
        .unwrap_err();
    match &err {
        PcscError::ReaderNotFound { wanted, available } => {
            assert_eq!(wanted, "No Such Reader");
            assert!(available.contains(&reader()), "{available:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("no reader matches \"No Such Reader\"; readers: "),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::Unavailable);

    let err = pcsc.find_reader(&ReaderChoice::Index(99)).unwrap_err();
    assert!(matches!(err, PcscError::ReaderNotFound { .. }), "{err:?}");

    // Both vpcd readers match: refuse to guess.
    let err = pcsc
        .find_reader(&ReaderChoice::Name("Virtual PCD".into()))
        .unwrap_err();
    assert!(matches!(err, PcscError::AmbiguousReader { .. }), "{err:?}");

    let err = PcscTransport::connect("No Such Reader", ShareMode::Shared).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    assert!(err.to_string().contains("No Such Reader"), "{err}");
}
