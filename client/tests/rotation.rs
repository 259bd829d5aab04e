//! The PIV PUK rotation when it is cut off, with the real server in-process and the
//! simulated card: the card must never be left with a PUK the server cannot name, and the
//! next unlock must not waste a PUK try when the rotation did reach the card.
use std::cell::RefCell;
use std::rc::Rc;

use cardunlock_core::piv::{select, verify_pin};
use cardunlock_core::secret::PivPin;
use cardunlock_core::ErrorKind;
use cardunlock_server::{Argon2Params, Config, Enrollment, MasterSecret, Server, ServerHandle};
use cardunlock_sim::{Config as SimConfig, PivConfig, SharedCard, SimCard};

use cardunlock_client::api::Api;
use cardunlock_client::enroll::{personalise, Factory, Target};
use cardunlock_client::online::unlock;
use cardunlock_client::Failure;
use cardunlock_core::crypto::Algorithm;
use cardunlock_core::driver::Driver;
use cardunlock_core::unlock as core_unlock;
use cardunlock_core::Transport;

mod common;
use common::Script;
use embassy_futures::block_on;
use zeroize::Zeroizing;

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Runs after each command with the command and the card's answer.
type AfterHook = Box<dyn FnMut(&[u8], &[u8])>;

/// The sim card, shared with the test, and a hook run after each command (what the card saw and
/// said, for the test to act on mid-flow: a card pulled, a reset counted).
struct Hooked {
    card: SharedCard,
    after: AfterHook,
}

impl Transport for Hooked {
    type Error = ErrorKind;

    async fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, ErrorKind> {
        let answer = self.card.lock().transmit(command);
        response
            .get_mut(..answer.len())
            .ok_or(ErrorKind::ResponseTooLong)?
            .copy_from_slice(&answer);
        (self.after)(command, &answer);
        Ok(answer.len())
    }
}

fn config(dir: &std::path::Path, master: &MasterSecret) -> Config {
    let mut c = Config::new(dir.join("db.sqlite"), dir, master.clone());
    c.argon2 = Argon2Params::TEST_ONLY_FAST;
    c
}

fn block(card: &SharedCard) {
    let wrong = PivPin::new(b"000000").unwrap();
    let mut buf = [0u8; 32];
    let select_len = select().encode(&mut buf).unwrap();
    card.lock().transmit(&buf[..select_len]);
    let n = verify_pin(&wrong).encode(&mut buf).unwrap();
    for _ in 0..3 {
        card.lock().transmit(&buf[..n]);
    }
    assert_eq!(card.lock().pin_tries_left(), 0);
}

fn unlock_once(
    card: &SharedCard,
    server: &ServerHandle,
    pin: &'static str,
    after: AfterHook,
) -> Result<(), Failure> {
    let api = Api::new(&server.url(), server.cert_pem())?;
    let mut driver = Driver::new(Hooked {
        card: card.clone(),
        after,
    });
    let mut ui = Script {
        answers: vec!["Rex"],
        pin,
        ..Script::default()
    };
    unlock(&mut driver, &api, &mut ui)
}

fn enrolled() -> (
    tempfile::TempDir,
    MasterSecret,
    ServerHandle,
    SharedCard,
    Vec<u8>,
) {
    let dir = tempfile::tempdir().unwrap();
    let master = MasterSecret::generate();
    let server = Server::spawn(config(dir.path(), &master)).unwrap();
    let card = SharedCard::new(SimCard::new(SimConfig::Piv(PivConfig::factory())));
    let mut driver = Driver::new(Hooked {
        card: card.clone(),
        after: Box::new(|_, _| {}),
    });
    let status = block_on(core_unlock::read_status(
        &mut driver,
        cardunlock_sim::ISO_PROFILE,
    ))
    .unwrap();
    let id = status.identity.unwrap();
    let target = Target {
        puk: Some(cardunlock_server::kdf::piv_puk(&master, id.as_bytes(), 0)),
        admin_key: cardunlock_server::kdf::piv_mgmt_key(&master, id.as_bytes(), 0),
    };
    let card_auth_key =
        personalise(&mut driver, &status, None, &Factory::default(), &target).unwrap();
    server
        .enroll(&Enrollment {
            name: "Michael Benson".into(),
            email: "Michael.Benson@demo.local".into(),
            profile: "piv".into(),
            identity_hex: id.to_string(),
            algorithm: Algorithm::TripleDes,
            questions: vec![("First pet?".into(), "Rex".into())],
            card_auth_key: card_auth_key.map(|k| k.to_vec()),
        })
        .unwrap();
    (dir, master, server, card, id.as_bytes().to_vec())
}

#[test]
fn rotation_reached_the_card_but_not_the_server() {
    let (dir, master, server, card, id) = enrolled();
    block(&card);
    // The server goes away right after the card accepted the new PUK: `complete` is lost.
    let handle = Rc::new(RefCell::new(Some(server)));
    let h = handle.clone();
    let after: AfterHook = Box::new(move |cmd, answer| {
        if cmd.get(1) == Some(&0x24) && answer.ends_with(&[0x90, 0x00]) {
            if let Some(s) = h.borrow_mut().take() {
                s.shutdown();
            }
        }
    });
    let server_ref = handle.borrow();
    let url_server = server_ref.as_ref().unwrap();
    let api_url = url_server.url();
    let cert = url_server.cert_pem().to_string();
    drop(server_ref);
    {
        let api = Api::new(&api_url, &cert).unwrap();
        let mut driver = Driver::new(Hooked {
            card: card.clone(),
            after,
        });
        let mut ui = Script {
            answers: vec!["Rex"],
            pin: "840259",
            ..Script::default()
        };
        // The card is unlocked; the lost `complete` is only a warning.
        unlock(&mut driver, &api, &mut ui).unwrap();
    }
    assert!(
        card.lock().puk_is(kdf_puk(&master, &id, 1).as_bytes()),
        "the card took generation 1"
    );
    // A restart on the same database: the rotation is still pending there.
    let server = Server::spawn(config(dir.path(), &master)).unwrap();
    block(&card);
    let resets = unlock_counting_resets(&card, &server, "735194");
    // The card held g+1, the first candidate: no PUK try was spent on a wrong one.
    assert_eq!(resets, 1, "one RESET RETRY COUNTER, with the right PUK");
    assert_server_and_card_agree(&server, &card, &master, &id);
}

#[test]
fn rotation_cut_off_before_the_card() {
    let (dir, master, server, card, id) = enrolled();
    block(&card);
    // The card is pulled right before CHANGE REFERENCE DATA: it keeps generation 0.
    let pulled = Rc::new(RefCell::new(false));
    let p = pulled.clone();
    let hooked_card = card.clone();
    let api = Api::new(&server.url(), server.cert_pem()).unwrap();
    {
        struct Pull {
            inner: Hooked,
            pulled: Rc<RefCell<bool>>,
        }
        impl Transport for Pull {
            type Error = ErrorKind;
            async fn transmit(
                &mut self,
                command: &[u8],
                response: &mut [u8],
            ) -> Result<usize, ErrorKind> {
                if command.get(1) == Some(&0x24) {
                    *self.pulled.borrow_mut() = true;
                    return Err(ErrorKind::CardRemoved);
                }
                self.inner.transmit(command, response).await
            }
        }
        let mut driver = Driver::new(Pull {
            inner: Hooked {
                card: hooked_card,
                after: Box::new(|_, _| {}),
            },
            pulled: p,
        });
        let mut ui = Script {
            answers: vec!["Rex"],
            pin: "840259",
            ..Script::default()
        };
        // The PIN is unblocked; the rotation failed, which the client reports to the server.
        unlock(&mut driver, &api, &mut ui).unwrap();
    }
    assert!(*pulled.borrow());
    assert!(
        card.lock().puk_is(kdf_puk(&master, &id, 0).as_bytes()),
        "the card kept generation 0"
    );
    drop(server);
    let server = Server::spawn(config(dir.path(), &master)).unwrap();
    block(&card);
    let resets = unlock_counting_resets(&card, &server, "735194");
    // The client told the server the rotation failed: generation 0 is tried first.
    assert_eq!(resets, 1, "one RESET RETRY COUNTER, with the right PUK");
    assert_server_and_card_agree(&server, &card, &master, &id);
}

/// Runs an online unlock and counts the RESET RETRY COUNTER commands it sent.
fn unlock_counting_resets(card: &SharedCard, server: &ServerHandle, pin: &'static str) -> usize {
    let resets = Rc::new(RefCell::new(0));
    let r = resets.clone();
    let hook: AfterHook =
        Box::new(move |cmd, _| *r.borrow_mut() += usize::from(cmd.get(1) == Some(&0x2C)));
    unlock_once(card, server, pin, hook).unwrap();
    let n = *resets.borrow();
    n
}

/// The card holds the PUK of the generation the server has on record.
fn assert_server_and_card_agree(
    server: &ServerHandle,
    card: &SharedCard,
    master: &MasterSecret,
    id: &[u8],
) {
    let record = server.store().card("piv", &hex(id)).unwrap().unwrap();
    assert!(
        card.lock()
            .puk_is(kdf_puk(master, id, record.puk_gen).as_bytes()),
        "server and card agree"
    );
}

fn kdf_puk(master: &MasterSecret, id: &[u8], generation: u32) -> Zeroizing<String> {
    cardunlock_server::kdf::piv_puk(master, id, generation)
}

/// A modified workstation reports a rotation it did not make (`puk_rotated: true`, the card
/// still on PUK(0)). The next real unlock is given PUK(1) only; the card refuses it (one PUK
/// try spent), the client says so to the server and to the user, and the server marks the card
/// diverged with an alert. The unlock after that is refused by the server with its clear
/// message before any PUK try. Fails if the client does not report the refused PUKs or the
/// server ignores the report.
#[test]
fn a_rotation_the_workstation_did_not_make_is_caught_on_the_next_unlock() {
    use cardunlock_core::flow::Profile;
    use cardunlock_server::protocol::CardRef;

    let (_dir, _master, server, card, id) = enrolled();
    block(&card);
    let api = Api::new(&server.url(), server.cert_pem()).unwrap();
    let started = api
        .start(CardRef {
            profile: Profile::Piv.into(),
            identity: hex(&id).parse().unwrap(),
        })
        .unwrap();
    // The card proves its presence (a modified workstation still needs the card).
    let mut driver = Driver::new(Hooked {
        card: card.clone(),
        after: Box::new(|_, _| {}),
    });
    let signature = cardunlock_client::presence::sign_nonce(&mut driver, &started).unwrap();
    api.prove(&started.session, signature).unwrap();
    api.answers(&started.session, &[Zeroizing::new("Rex".to_string())])
        .unwrap();
    api.puk(&started.session, Some(3)).unwrap();
    // The lie: nothing was sent to the card.
    api.complete(&started.session, true, true, 0, "").unwrap();
    assert_eq!(card.lock().puk_tries_left(), Some(3));

    let failure = unlock_once(&card, &server, "840259", Box::new(|_, _| {})).unwrap_err();
    assert!(
        failure.message.contains("refused every PUK"),
        "{}",
        failure.message
    );
    assert_eq!(
        card.lock().puk_tries_left(),
        Some(2),
        "one try spent on PUK(1)"
    );
    let audit = server.store().audit().unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.event == "diverged" && e.outcome == "alert"),
        "{audit:#?}"
    );

    let failure = unlock_once(&card, &server, "840259", Box::new(|_, _| {})).unwrap_err();
    assert!(
        failure.message.contains("enrolled again"),
        "{}",
        failure.message
    );
    assert_eq!(card.lock().puk_tries_left(), Some(2), "no PUK try spent");
    assert_eq!(card.lock().pin_tries_left(), 0, "the PIN stays blocked");
}
