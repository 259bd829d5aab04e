//! The core's GIDS unblock flow, against the simulated GIDS card, with the server answering the
//! admin requests over HTTPS: the server checks the card's cryptogram itself and answers only
//! `R1 || R2 || 00.. 80`, which the flow accepts; a forged card answer is refused by the server
//! and the new PIN never leaves.

mod common;

use cardunlock_core::crypto::{AdminKey, Algorithm};
use cardunlock_core::driver::Driver;
use cardunlock_core::flow::{
    AdminRequest, AdminResponder, GidsChangeAdminKey, LocalKey, MAX_ANSWER_LEN,
};
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock;
use cardunlock_server::kdf;
use cardunlock_sim::{Config as SimConfig, GidsConfig, SimCard};
use cardunlock_tests::{
    fill_counter, shared, transport, Fault, Seen, SharedCard, FORGED_GIDS_CRYPTOGRAM,
};
use common::*;
use embassy_futures::block_on;
use serde_json::{json, Value};

/// Why the relay could not answer the flow.
#[derive(Debug)]
enum RelayError {
    /// The flow asked for something a GIDS flow never asks.
    Unexpected,
    /// The server refused (the HTTP status; the body is in the kept replies).
    Refused(u16),
    /// A 200 reply without an answer.
    NoAnswer,
    /// The answer is not hex.
    NotHex(hex::FromHexError),
    /// The answer does not fit the flow's buffer.
    TooLong,
}

impl std::fmt::Display for RelayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unexpected => f.write_str("a GIDS flow asked for something else"),
            Self::Refused(status) => write!(f, "the server refused with HTTP {status}"),
            Self::NoAnswer => f.write_str("no answer"),
            Self::NotHex(e) => write!(f, "the answer is not hex: {e}"),
            Self::TooLong => f.write_str("answer too long"),
        }
    }
}

impl std::error::Error for RelayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::NotHex(e) => Some(e),
            _ => None,
        }
    }
}

/// Relays the flow's admin requests to the server, keeping every reply.
struct ServerResponder<'a> {
    env: &'a Env,
    session: String,
    replies: Vec<(u16, Value)>,
}

impl AdminResponder for ServerResponder<'_> {
    type Error = RelayError;

    async fn answer(
        &mut self,
        request: AdminRequest<'_>,
        out: &mut [u8; MAX_ANSWER_LEN],
    ) -> Result<usize, RelayError> {
        let request = match request {
            AdminRequest::GidsCryptogram { r1, r2 } => {
                json!({ "kind": "gids_cryptogram", "r1": hex::encode(r1), "r2": hex::encode(r2) })
            }
            AdminRequest::GidsCardCryptogram { cryptogram } => {
                json!({ "kind": "gids_card_cryptogram", "cryptogram": hex::encode(cryptogram) })
            }
            _ => return Err(RelayError::Unexpected),
        };
        let reply = self.env.post(
            "/v1/unlock/admin",
            &json!({ "session": self.session, "request": request }),
        );
        self.replies.push(reply.clone());
        if reply.0 != 200 {
            return Err(RelayError::Refused(reply.0));
        }
        let answer = reply.1["answer"].as_str().ok_or(RelayError::NoAnswer)?;
        let bytes = hex::decode(answer).map_err(RelayError::NotHex)?;
        out.get_mut(..bytes.len())
            .ok_or(RelayError::TooLong)?
            .copy_from_slice(&bytes);
        Ok(bytes.len())
    }
}

/// A blocked GIDS card personalised with the server's derived admin key, enrolled; its
/// identity.
fn enrolled_card(env: &Env) -> (SharedCard, String) {
    let card = shared(SimCard::new(SimConfig::Gids(
        GidsConfig::factory().blocked(),
    )));
    let mut driver = Driver::new(transport(&card));
    let status = block_on(unlock::read_status(
        &mut driver,
        cardunlock_sim::ISO_PROFILE,
    ))
    .unwrap();
    let identity = status.identity.unwrap().to_string();
    env.server
        .enroll(&enrollment("gids", &identity, Algorithm::TripleDes))
        .unwrap();
    let key = kdf::admin_key(
        &master(),
        "gids",
        &hex::decode(&identity).unwrap(),
        Algorithm::TripleDes,
        0,
    );
    let mut personalise = GidsChangeAdminKey::new(&key, [7; 16]);
    let mut factory = LocalKey::new(AdminKey::piv_default(), fill_counter(3));
    block_on(driver.run(&mut personalise, &mut factory)).unwrap();
    (card, identity)
}

backend_tests! {
    fn a_gids_card_unlocks_with_the_server_checking_its_cryptogram() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        let (card, identity) = enrolled_card(&env);
        let session = env.verified_session("gids", &identity);
        let mut responder = ServerResponder { env: &env, session, replies: Vec::new() };
        let mut driver = Driver::new(transport(&card));
        block_on(unlock::gids_unblock(
            &mut driver,
            &unlock::admin_input(&PinPolicy::GIDS, b"Xk9w2", b"Xk9w2").unwrap(),
            *b"host-random-R1!!",
            &mut responder,
        ))
        .unwrap();
        assert!(card.lock().pin_is(b"Xk9w2"));
        // The card-cryptogram answer held R1 || R2 and no byte of the card's Z2.
        let answer = hex::decode(responder.replies[1].1["answer"].as_str().unwrap()).unwrap();
        assert_eq!(&answer[..16], b"host-random-R1!!");
        assert_eq!(answer[32..], [0, 0, 0, 0, 0, 0, 0, 0x80]);
    }

    fn a_forged_card_cryptogram_is_refused_by_the_server_before_the_pin_leaves() {
        // SELECT, MSE SET, GA step 1, GA step 2: the card's answer replaced by a well-formed
        // forgery (someone else's card, or a relay that does not hold the key).
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        let (card, identity) = enrolled_card(&env);
        let session = env.verified_session("gids", &identity);
        let mut responder = ServerResponder { env: &env, session, replies: Vec::new() };
        let mut driver =
            Driver::new(transport(&card).with_fault(3, Fault::Garbage(&FORGED_GIDS_CRYPTOGRAM)));
        let got = block_on(unlock::gids_unblock(
            &mut driver,
            &unlock::admin_input(&PinPolicy::GIDS, b"Xk9w2", b"Xk9w2").unwrap(),
            *b"host-random-R1!!",
            &mut responder,
        ));
        assert!(got.is_err());
        let last = responder.replies.last().unwrap();
        assert_error(last, 403, "card_not_authenticated");
        assert!(!driver.transport().seen().iter().any(|c| c[1] == 0x2C), "no RESET RETRY COUNTER");
        assert!(card.lock().pin_is(b"1234"));
    }
}
