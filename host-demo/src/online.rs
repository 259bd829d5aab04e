//! Online unlock: the client side of `server/API.md`.
//!
//! card status -> `start` (user, questions, PIN policy) -> answers -> new PIN checked against the
//! server's policy (before any card command) -> admin-key cards: the card's challenge relayed to
//! the server; PIV: a one-time PUK, then the PUK rotated to the next generation -> `complete`.

use std::time::Duration;

use cardunlock_core::crypto::Algorithm;
use cardunlock_core::driver::{Driver, Error};
use cardunlock_core::flow::{
    AdminRequest, AdminResponder, FlowError, PivChangePuk, Profile, MAX_ANSWER_LEN,
};
use cardunlock_core::iso::IsoProfile;
use cardunlock_core::policy::{Charset, PinPolicy};
use cardunlock_core::secret::PivReference;
use cardunlock_core::unlock::{self, UnlockError};
use cardunlock_core::{Transport, TransportError};
use embassy_futures::block_on;
use rand::RngCore;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroizing;

use crate::demo::{describe, UNLOCKED};
use crate::respond::parse_hex;
use crate::{exit, Failure};

/// Why the server did not give what was asked.
#[derive(Debug)]
pub enum ApiError {
    /// No connection (refused, TLS failure, timeout).
    Unreachable(String),
    /// The server answered with an error.
    Refused {
        code: String,
        message: String,
        attempts_left: Option<u32>,
    },
    /// The server's answer did not parse.
    Protocol(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(e) => write!(f, "cannot reach the unlock server: {e}"),
            Self::Refused { message, code, .. } if message.is_empty() => {
                write!(f, "the unlock server refused: {code}")
            }
            Self::Refused { message, .. } => f.write_str(message),
            Self::Protocol(e) => write!(f, "unexpected answer from the unlock server: {e}"),
        }
    }
}

/// An HTTPS client for one server, pinned to its certificate.
pub struct Api {
    agent: ureq::Agent,
    base: String,
}

impl Api {
    /// A client for `base` (`https://host:port`) trusting only `cert_pem`.
    pub fn new(base: &str, cert_pem: &str) -> Result<Self, Failure> {
        let tls = cardunlock_server::pinned_client_config(cert_pem)
            .map_err(|e| Failure::new(exit::USAGE, format!("server certificate: {e}")))?;
        let agent = ureq::AgentBuilder::new()
            .tls_config(tls)
            .timeout_connect(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build();
        Ok(Self {
            agent,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> Result<T, ApiError> {
        let url = format!("{}{path}", self.base);
        match self.agent.post(&url).send_json(body) {
            Ok(resp) => resp
                .into_json::<T>()
                .map_err(|e| ApiError::Protocol(e.to_string())),
            Err(ureq::Error::Status(_, resp)) => {
                let v: serde_json::Value = resp.into_json().unwrap_or_default();
                Err(ApiError::Refused {
                    code: v["error"].as_str().unwrap_or("").to_string(),
                    message: v["message"].as_str().unwrap_or("").to_string(),
                    attempts_left: v["attempts_left"].as_u64().map(|n| n as u32),
                })
            }
            Err(ureq::Error::Transport(t)) => Err(ApiError::Unreachable(format!("{} ({url})", t))),
        }
    }
}

#[derive(Deserialize, Debug)]
pub struct User {
    pub name: String,
    pub email: String,
}

#[derive(Deserialize, Debug)]
pub struct Policy {
    pub min_len: usize,
    pub max_len: usize,
    pub charset: String,
    #[serde(default = "yes")]
    pub forbid_repeated: bool,
    #[serde(default = "yes")]
    pub forbid_sequences: bool,
    #[serde(default = "yes")]
    pub builtin_blocklist: bool,
    #[serde(default)]
    pub custom_blocklist: Vec<String>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Debug)]
pub struct Started {
    pub session: String,
    pub user: User,
    pub questions: Vec<String>,
    pub attempts_left: u32,
    pub pin_policy: Policy,
}

#[derive(Deserialize)]
struct PukRelease {
    puk_candidates: Vec<String>,
    next_puk: String,
}

#[derive(Deserialize)]
struct AdminAnswer {
    answer: String,
}

/// What the unlock asks the person in front of the card.
pub trait Ui {
    /// Shows a line.
    fn say(&mut self, line: &str);
    /// The answers to `questions`, one each, in order.
    fn answers(&mut self, questions: &[String]) -> Result<Vec<Zeroizing<String>>, Failure>;
    /// Whether to ask again after wrong answers (a person: yes; a script: no).
    fn can_retry(&self) -> bool;
    /// The new PIN and its confirmation.
    fn new_pin(&mut self) -> Result<(Zeroizing<String>, Zeroizing<String>), Failure>;
}

/// Relays admin requests to the server inside a verified session.
struct Remote<'a> {
    api: &'a Api,
    session: &'a str,
}

fn alg_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::TripleDes => "3des",
        Algorithm::Aes128 => "aes128",
        Algorithm::Aes192 => "aes192",
        Algorithm::Aes256 => "aes256",
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl AdminResponder for Remote<'_> {
    type Error = String;

    async fn answer(
        &mut self,
        request: AdminRequest<'_>,
        out: &mut [u8; MAX_ANSWER_LEN],
    ) -> Result<usize, String> {
        let request = match request {
            AdminRequest::Encrypt { algorithm, block } => {
                json!({"kind": "encrypt", "algorithm": alg_name(algorithm), "block": hex(block)})
            }
            AdminRequest::GidsCryptogram { r1, r2 } => {
                json!({"kind": "gids_cryptogram", "r1": hex(r1), "r2": hex(r2)})
            }
            AdminRequest::GidsCardCryptogram { cryptogram } => {
                json!({"kind": "gids_card_cryptogram", "cryptogram": hex(cryptogram)})
            }
            AdminRequest::Decrypt { .. } => {
                return Err("the server does not decrypt PIV witnesses".into())
            }
            _ => return Err("the server does not answer this admin request".into()),
        };
        let a: AdminAnswer = self
            .api
            .post(
                "/v1/unlock/admin",
                json!({"session": self.session, "request": request}),
            )
            .map_err(|e| e.to_string())?;
        let bytes = Zeroizing::new(parse_hex(&a.answer)?);
        let dst = out
            .get_mut(..bytes.len())
            .ok_or("the server's answer is too long")?;
        dst.copy_from_slice(&bytes);
        Ok(bytes.len())
    }
}

fn api_failure(e: &ApiError) -> Failure {
    let code = match e {
        ApiError::Unreachable(_) | ApiError::Protocol(_) => exit::SERVER,
        ApiError::Refused { .. } => exit::REFUSED,
    };
    Failure::new(code, e.to_string())
}

fn card_failure<T: TransportError + std::fmt::Display, R: std::fmt::Debug + std::fmt::Display>(
    e: &Error<T, R>,
) -> Failure {
    crate::failure::card(e, exit::SERVER)
}

fn unlock_failure<T: TransportError + std::fmt::Display, R: std::fmt::Debug + std::fmt::Display>(
    e: &UnlockError<T, R>,
) -> Failure {
    crate::failure::unlock(e, exit::SERVER)
}

/// Runs an online unlock of the card behind `driver`.
pub fn unlock<T: Transport>(
    driver: &mut Driver<T>,
    api: &Api,
    ui: &mut dyn Ui,
    iso_algorithm: Algorithm,
) -> Result<(), Failure>
where
    T::Error: TransportError + std::fmt::Display,
{
    let iso = IsoProfile {
        algorithm: iso_algorithm,
        ..IsoProfile::SIM
    };
    let status = block_on(unlock::read_status(driver, iso)).map_err(|e| card_failure(&e))?;
    let identity = status
        .identity
        .ok_or_else(|| Failure::new(exit::REFUSED, "the card has no readable identity"))?;
    ui.say(&format!("Card: {}", describe(&status)));

    let card = json!({"profile": status.profile.name(), "identity": identity.to_string()});
    let started: Started = api.post("/v1/unlock/start", json!({ "card": card })).map_err(|e| match &e {
        ApiError::Refused { code, .. } if code == "no_questions" => Failure::new(
            exit::REFUSED,
            "Online unlock is not available: no security questions are enrolled for this card. \
             Use offline mode: `cardunlock unlock --offline` and call your operator.",
        ),
        ApiError::Unreachable(_) => {
            Failure::new(exit::SERVER, format!("{e}. The card was not touched; try again later or use offline mode."))
        }
        _ => api_failure(&e),
    })?;
    ui.say(&format!("{}\n{}", started.user.name, started.user.email));

    let mut attempts_left = started.attempts_left;
    loop {
        let answers = ui.answers(&started.questions)?;
        let plain: Vec<&str> = answers.iter().map(|a| a.as_str()).collect();
        let result: Result<serde_json::Value, ApiError> = api.post(
            "/v1/unlock/answers",
            json!({"session": started.session, "answers": plain}),
        );
        match result {
            Ok(_) => break,
            Err(ApiError::Refused {
                code,
                attempts_left: left,
                ..
            }) if code == "wrong_answers" => {
                attempts_left = left.unwrap_or(attempts_left.saturating_sub(1));
                let m = format!(
                    "The answers are not correct. {attempts_left} attempt{} left before online unlock is locked for this card.",
                    if attempts_left == 1 { "" } else { "s" }
                );
                if !ui.can_retry() || attempts_left == 0 {
                    return Err(Failure::new(exit::REFUSED, m));
                }
                ui.say(&m);
            }
            Err(e) => return Err(api_failure(&e)),
        }
    }

    let p = &started.pin_policy;
    let blocklist: Vec<&str> = p.custom_blocklist.iter().map(String::as_str).collect();
    let policy = PinPolicy {
        min_len: p.min_len,
        max_len: p.max_len,
        charset: if p.charset == "digits" {
            Charset::Digits
        } else {
            Charset::Alphanumeric
        },
        forbid_repeated: p.forbid_repeated,
        forbid_sequences: p.forbid_sequences,
        builtin_blocklist: p.builtin_blocklist,
        custom_blocklist: &blocklist,
    };
    // The policy is checked here, before any card command, and again by the unlock entry points.
    let (pin, confirm) = loop {
        ui.say("Enter new PIN to unlock the smart card.");
        let (pin, confirm) = ui.new_pin()?;
        match policy.check(pin.as_bytes(), confirm.as_bytes(), None, None) {
            Ok(()) => break (pin, confirm),
            Err(v) => {
                let m = crate::failure::policy_message(&v);
                if !ui.can_retry() {
                    return Err(Failure::new(exit::POLICY, m));
                }
                ui.say(&m);
            }
        }
    };

    let result = match status.profile {
        Profile::Piv => piv(driver, api, &started.session, &policy, &pin, &confirm),
        Profile::Gids => {
            let mut r1 = [0u8; 16];
            rand::thread_rng().fill_bytes(&mut r1);
            let mut remote = Remote {
                api,
                session: &started.session,
            };
            match unlock::admin_input(&policy, pin.as_bytes(), confirm.as_bytes()) {
                Ok(new_pin) => block_on(unlock::gids_unblock(driver, &new_pin, r1, &mut remote)),
                Err(e) => Err(e.into()),
            }
            .map(|()| false)
            .map_err(|e| unlock_failure(&e))
        }
        Profile::IsoAdmin => {
            let mut remote = Remote {
                api,
                session: &started.session,
            };
            match unlock::admin_input(&policy, pin.as_bytes(), confirm.as_bytes()) {
                Ok(new_pin) => block_on(unlock::iso_unblock(driver, iso, &new_pin, &mut remote)),
                Err(e) => Err(e.into()),
            }
            .map(|()| false)
            .map_err(|e| unlock_failure(&e))
        }
    };
    let (outcome, rotated, detail) = match &result {
        Ok(rotated) => ("unlocked", *rotated, String::new()),
        Err(f) => ("failed", false, f.message.clone()),
    };
    let done: Result<serde_json::Value, ApiError> = api.post(
        "/v1/unlock/complete",
        json!({"session": started.session, "outcome": outcome, "puk_rotated": rotated, "detail": detail}),
    );
    result?;
    if let Err(e) = done {
        // The card is unlocked; the server learns the rotation on the next unlock.
        ui.say(&format!(
            "warning: could not report the outcome to the server: {e}"
        ));
    }
    ui.say(UNLOCKED);
    Ok(())
}

/// PIV: release the PUK, unblock, rotate the PUK. Returns whether the rotation happened.
fn piv<T: Transport>(
    driver: &mut Driver<T>,
    api: &Api,
    session: &str,
    policy: &PinPolicy<'_>,
    pin: &str,
    confirm: &str,
) -> Result<bool, Failure>
where
    T::Error: TransportError + std::fmt::Display,
{
    let release: PukRelease = api
        .post("/v1/unlock/puk", json!({ "session": session }))
        .map_err(|e| api_failure(&e))?;
    let candidates: Vec<Zeroizing<String>> = release
        .puk_candidates
        .into_iter()
        .map(Zeroizing::new)
        .collect();
    let next = Zeroizing::new(release.next_puk);
    let mut used = None;
    for (i, puk) in candidates.iter().enumerate() {
        let input = unlock::piv_input(policy, puk.as_bytes(), pin.as_bytes(), confirm.as_bytes());
        match input
            .map_err(UnlockError::from)
            .and_then(|(puk, pin)| block_on(unlock::piv_unblock(driver, &puk, &pin)))
        {
            Ok(()) => {
                used = Some(puk);
                break;
            }
            // An earlier rotation was cut off: the card holds the other candidate.
            Err(UnlockError::Card(Error::Flow(FlowError::WrongPuk { .. })))
                if i + 1 < candidates.len() =>
            {
                continue
            }
            Err(e) => return Err(unlock_failure(&e)),
        }
    }
    let used =
        used.ok_or_else(|| Failure::new(exit::REFUSED, "the server has no PUK this card accepts"))?;
    let old = PivReference::puk(used.as_bytes())
        .map_err(|e| Failure::new(exit::REFUSED, format!("PUK: {e:?}")))?;
    let new = PivReference::puk(next.as_bytes())
        .map_err(|e| Failure::new(exit::REFUSED, format!("next PUK: {e:?}")))?;
    match block_on(driver.run(
        &mut PivChangePuk::new(&old, &new),
        &mut cardunlock_core::flow::NoAdmin,
    )) {
        Ok(()) => Ok(true),
        // The PIN is unblocked; the old PUK stays valid and the server keeps both candidates.
        Err(_) => Ok(false),
    }
}

/// Reads the pinned certificate.
#[cfg_attr(not(feature = "pcsc"), allow(dead_code))]
pub fn read_cert(path: &std::path::Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| {
        Failure::new(
            exit::USAGE,
            format!("server certificate {}: {e}", path.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    //! The PIV PUK rotation when it is cut off, with the real server in-process and the
    //! simulated card: the card must never be left with a PUK the server cannot name, and the
    //! next unlock must not waste a PUK try when the rotation did reach the card.
    use std::cell::RefCell;
    use std::rc::Rc;

    use cardunlock_core::piv::{select, verify_pin};
    use cardunlock_core::secret::PivReference;
    use cardunlock_core::ErrorKind;
    use cardunlock_server::{Argon2Params, Config, Enrollment, MasterSecret, Server, ServerHandle};
    use cardunlock_sim::{Config as SimConfig, PivConfig, SimCard};

    use super::*;
    use crate::ui::Scripted;

    /// Runs after each command with the command and the card's answer.
    type AfterHook = Box<dyn FnMut(&[u8], &[u8])>;

    /// The sim card, shared with the test, and a hook run after each command.
    struct Hooked {
        card: Rc<RefCell<SimCard>>,
        after: AfterHook,
    }

    impl Transport for Hooked {
        type Error = ErrorKind;

        async fn transmit(
            &mut self,
            command: &[u8],
            response: &mut [u8],
        ) -> Result<usize, ErrorKind> {
            let answer = self.card.borrow_mut().transmit(command);
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
        c.argon2 = Argon2Params {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        };
        c
    }

    fn block(card: &Rc<RefCell<SimCard>>) {
        let wrong = PivReference::pin(b"000000").unwrap();
        let mut buf = [0u8; 32];
        let select_len = select().encode(&mut buf).unwrap();
        card.borrow_mut().transmit(&buf[..select_len]);
        let n = verify_pin(&wrong).encode(&mut buf).unwrap();
        for _ in 0..3 {
            card.borrow_mut().transmit(&buf[..n]);
        }
        assert_eq!(card.borrow().pin_tries_left(), 0);
    }

    fn unlock_once(
        card: &Rc<RefCell<SimCard>>,
        server: &ServerHandle,
        pin: &str,
        after: AfterHook,
    ) -> Result<(), Failure> {
        let api = Api::new(&server.url(), server.cert_pem())?;
        let mut driver = Driver::new(Hooked {
            card: card.clone(),
            after,
        });
        let mut ui = Scripted {
            answers: vec!["Rex".into()],
            new_pin: pin.into(),
            show_answers: false,
        };
        unlock(&mut driver, &api, &mut ui, Algorithm::TripleDes)
    }

    fn enrolled() -> (
        tempfile::TempDir,
        MasterSecret,
        ServerHandle,
        Rc<RefCell<SimCard>>,
        Vec<u8>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterSecret::generate();
        let server = Server::spawn(config(dir.path(), &master)).unwrap();
        let card = Rc::new(RefCell::new(SimCard::new(SimConfig::Piv(
            PivConfig::factory(),
        ))));
        let mut driver = Driver::new(Hooked {
            card: card.clone(),
            after: Box::new(|_, _| {}),
        });
        let status = block_on(unlock::read_status(&mut driver, IsoProfile::SIM)).unwrap();
        crate::enroll::personalise(
            &mut driver,
            &status,
            &master,
            &crate::enroll::Factory::default(),
            Algorithm::TripleDes,
        )
        .unwrap();
        let id = status.identity.unwrap();
        server
            .enroll(&Enrollment {
                name: "Michael Benson".into(),
                email: "Michael.Benson@demo.local".into(),
                profile: "piv".into(),
                identity_hex: id.to_string(),
                algorithm: Algorithm::TripleDes,
                questions: vec![("First pet?".into(), "Rex".into())],
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
            let mut ui = Scripted {
                answers: vec!["Rex".into()],
                new_pin: "840259".into(),
                show_answers: false,
            };
            // The card is unlocked; the lost `complete` is only a warning.
            unlock(&mut driver, &api, &mut ui, Algorithm::TripleDes).unwrap();
        }
        assert!(
            card.borrow().puk_is(kdf_puk(&master, &id, 1).as_bytes()),
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
            let mut ui = Scripted {
                answers: vec!["Rex".into()],
                new_pin: "840259".into(),
                show_answers: false,
            };
            // The PIN is unblocked; the rotation failed, which the client reports to the server.
            unlock(&mut driver, &api, &mut ui, Algorithm::TripleDes).unwrap();
        }
        assert!(*pulled.borrow());
        assert!(
            card.borrow().puk_is(kdf_puk(&master, &id, 0).as_bytes()),
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
    fn unlock_counting_resets(
        card: &Rc<RefCell<SimCard>>,
        server: &ServerHandle,
        pin: &str,
    ) -> usize {
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
        card: &Rc<RefCell<SimCard>>,
        master: &MasterSecret,
        id: &[u8],
    ) {
        let record = server.store().card("piv", &hex(id)).unwrap().unwrap();
        assert!(
            card.borrow()
                .puk_is(kdf_puk(master, id, record.puk_gen).as_bytes()),
            "server and card agree"
        );
    }

    fn kdf_puk(master: &MasterSecret, id: &[u8], generation: u32) -> Zeroizing<String> {
        cardunlock_server::kdf::piv_puk(master, id, generation)
    }
}
