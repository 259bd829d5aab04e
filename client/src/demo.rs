//! The seed scenario in-process: the unlock server on a temporary SQLite file (self-signed,
//! pinned), a user enrolled with a simulated card whose PIN is then blocked. Used by
//! `cardunlock demo`, the window's demo mode and tests.

use cardunlock_core::crypto::Algorithm;
use cardunlock_core::driver::Driver;
use cardunlock_core::flow::Profile;
use cardunlock_core::unlock;
use cardunlock_protocol::{Role, Secret};
use cardunlock_server::{Config, Enrollment, MasterSecret, Server, ServerHandle};

/// The Argon2id cost of the demo server's answer hashes ([`Demo::start_with`]).
pub use cardunlock_server::Argon2Params;
use cardunlock_sim::{Config as SimConfig, IsoConfig, PivConfig, SimCard};
use embassy_futures::block_on;
use zeroize::Zeroizing;

use crate::api::Api;
use crate::enroll::{personalise, Factory, Target};
use crate::failure::{self, Failure, Kind};
use crate::status::describe;

/// The seed user's security questions, in order.
pub const DEMO_QUESTIONS: &[&str] = &[
    "What was the name of your first pet?",
    "In which city were you born?",
];
/// The seed's answers, in question order (for scripted runs and tests).
pub const DEMO_ANSWERS: &[&str] = &["Rex", "Springfield"];
/// The new PIN scripted runs set.
pub const DEMO_NEW_PIN: &str = "840259";
/// The seed user.
pub const DEMO_USER: (&str, &str) = ("Michael Benson", "Michael.Benson@demo.local");

/// The demo's operator name.
pub const DEMO_OPERATOR: &str = "helpdesk";

/// The demo's operator, as shown once: name, password, authenticator enrolment. `Debug` shows
/// the name only.
pub struct DemoOperator {
    /// The operator name.
    pub name: String,
    /// The password.
    pub password: Zeroizing<String>,
    /// The `otpauth://` URI with the TOTP seed (for an authenticator app).
    pub totp_uri: Zeroizing<String>,
}

impl std::fmt::Debug for DemoOperator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoOperator")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Which scenario to set up.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// The seed: Michael Benson, security questions (answers in [`DEMO_ANSWERS`]), PIV card
    /// blocked.
    Seed,
    /// A user enrolled without security questions, ISO admin card blocked (the offline path:
    /// the operator answers the card's challenge, see [`Demo::operator_response`]).
    NoQuestions,
}

/// A simulated card shared between handles (cloning gives the same card), usable from any
/// thread; a core `Transport`. The simulated card's own (`cardunlock_sim::SharedCard`).
pub use cardunlock_sim::SharedCard;

/// The seed scenario, running: the server, its temporary directory, the card.
pub struct Demo {
    server: ServerHandle,
    api: Api,
    card: SharedCard,
    master: MasterSecret,
    identity: Vec<u8>,
    profile: Profile,
    argon2: Argon2Params,
    // Dropped after the server (fields drop in order): the database lives here.
    dir: tempfile::TempDir,
}

/// The generation-0 secrets the server holds for a card (what its enrollment hands out).
fn generation_zero(master: &MasterSecret, profile: Profile, identity: &[u8]) -> Target {
    use cardunlock_server::kdf;
    match profile {
        Profile::Piv => Target {
            puk: Some(kdf::piv_puk(master, identity, 0)),
            admin_key: kdf::piv_mgmt_key(master, identity, 0),
        },
        other => Target {
            puk: None,
            admin_key: kdf::admin_key(
                master,
                cardunlock_protocol::Profile::from(other).as_str(),
                identity,
                Algorithm::TripleDes,
                0,
            ),
        },
    }
}

fn setup(m: impl std::fmt::Display) -> Failure {
    Failure::new(Kind::Server, format!("demo setup: {m}"))
}

impl Demo {
    /// Starts the server, enrolls the user with a factory-fresh simulated card (personalised
    /// with derived secrets), then blocks the card's PIN.
    pub fn start(scenario: Scenario) -> Result<Demo, Failure> {
        Self::start_with(scenario, Argon2Params::default())
    }

    /// [`Demo::start`] with the Argon2id cost of the answer hashes (tests use a cheap one).
    pub fn start_with(scenario: Scenario, argon2: Argon2Params) -> Result<Demo, Failure> {
        let dir = tempfile::tempdir().map_err(|e| setup(format!("temporary directory: {e}")))?;
        let master = MasterSecret::generate();
        let mut config = Config::new(dir.path().join("cardunlock.db"), dir.path(), master.clone());
        config.argon2 = argon2;
        let server =
            Server::spawn(config).map_err(|e| setup(format!("starting the server: {e}")))?;
        let api = Api::new(&server.url(), server.cert_pem())?;

        let (sim, questions): (SimConfig, Vec<(String, String)>) = match scenario {
            Scenario::Seed => (
                SimConfig::Piv(PivConfig::factory()),
                DEMO_QUESTIONS
                    .iter()
                    .zip(DEMO_ANSWERS)
                    .map(|(q, a)| (q.to_string(), a.to_string()))
                    .collect(),
            ),
            Scenario::NoQuestions => (SimConfig::Iso(IsoConfig::factory()), Vec::new()),
        };
        let card = SharedCard::new(SimCard::new(sim));
        let mut driver = Driver::new(card.clone());
        let status = block_on(unlock::read_status(
            &mut driver,
            cardunlock_sim::ISO_PROFILE,
        ))
        .map_err(|e| failure::card(e, Kind::Usage).about("demo card"))?;
        let identity = status
            .identity
            .ok_or_else(|| setup("the simulated card has no identity"))?;
        let target = generation_zero(&master, status.profile, identity.as_bytes());
        let card_auth_key = personalise(
            &mut driver,
            &status,
            Some(cardunlock_sim::ISO_PROFILE),
            &Factory::default(),
            &target,
        )?;
        server
            .store()
            .enroll(
                &Enrollment {
                    name: DEMO_USER.0.into(),
                    email: DEMO_USER.1.into(),
                    profile: cardunlock_protocol::Profile::from(status.profile)
                        .as_str()
                        .into(),
                    identity_hex: identity.to_string(),
                    algorithm: Algorithm::TripleDes,
                    questions,
                    card_auth_key: card_auth_key.map(|k| k.to_vec()),
                },
                &argon2,
            )
            .map_err(|e| setup(format!("enrollment: {e}")))?;
        let demo = Demo {
            server,
            api,
            card,
            master,
            identity: identity.as_bytes().to_vec(),
            profile: status.profile,
            argon2,
            dir,
        };
        demo.block_pin();
        Ok(demo)
    }

    /// The user types wrong PINs until the card blocks the PIN.
    fn block_pin(&self) {
        self.card.with(|c| {
            let wrong: &[u8] = match self.profile {
                // VERIFY PIV PIN "000000" padded with FF.
                Profile::Piv => &[
                    0x00, 0x20, 0x00, 0x80, 0x08, b'0', b'0', b'0', b'0', b'0', b'0', 0xFF, 0xFF,
                ],
                // VERIFY of the ISO card's PIN reference with a wrong PIN.
                _ => &[0x00, 0x20, 0x00, 0x80, 0x04, b'0', b'0', b'0', b'0'],
            };
            for _ in 0..16 {
                if c.pin_tries_left() == 0 {
                    break;
                }
                c.transmit(wrong);
            }
        });
    }

    /// The client of the demo's server.
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// The simulated card (shared handle: cloning gives the same card), a core `Transport`.
    pub fn card(&self) -> SharedCard {
        self.card.clone()
    }

    /// Plays the operator for the offline scenario: the response to a challenge (grouped hex).
    pub fn operator_response(&self, challenge_hex: &str) -> Result<String, Failure> {
        let challenge =
            crate::hex::parse(challenge_hex).map_err(|e| Failure::usage("challenge", e))?;
        let key = cardunlock_server::kdf::admin_key(
            &self.master,
            cardunlock_protocol::Profile::from(self.profile).as_str(),
            &self.identity,
            Algorithm::TripleDes,
            0,
        );
        let n = key.algorithm().block_len();
        if challenge.len() != n {
            return Err(Failure::usage(
                "challenge",
                format!("it must be {n} bytes ({} hex digits)", 2 * n),
            ));
        }
        let mut block = challenge;
        key.encrypt_ecb(&mut block)
            .map_err(|e| Failure::usage("challenge", e))?;
        Ok(crate::hex::grouped(&block))
    }

    /// Adds the demo's help-desk operator (every role), made the way `cardunlock-server
    /// add-operator` makes operators: a fresh random password and TOTP seed, shown once.
    pub fn add_operator(&self) -> Result<DemoOperator, Failure> {
        use rand::Rng;
        const CHARS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        let mut rng = rand::rngs::OsRng;
        let password: Zeroizing<String> = Zeroizing::new(
            (0..16)
                .map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())]))
                .collect(),
        );
        let uri = cardunlock_server::operator::create_operator(
            self.server.store(),
            &self.master,
            &self.argon2,
            DEMO_OPERATOR,
            &Role::ALL,
            &Secret::new(password.as_str()),
        )
        .map_err(|e| setup(format!("demo operator: {e}")))?;
        Ok(DemoOperator {
            name: DEMO_OPERATOR.into(),
            password,
            totp_uri: Zeroizing::new(uri.expose().to_string()),
        })
    }

    /// The operator console's address (a browser on this machine; the certificate is the
    /// demo's self-signed one, [`Demo::cert_path`]).
    pub fn console_url(&self) -> String {
        format!("{}/console/", self.server.url())
    }

    /// The server's certificate (PEM), for `--cert`.
    pub fn cert_path(&self) -> std::path::PathBuf {
        self.dir.path().join(cardunlock_server::CERT_FILE)
    }

    /// The card's identity (hex, as `cardunlock status` shows it).
    pub fn card_identity(&self) -> String {
        hex::encode(&self.identity)
    }

    /// The server's URL, for display.
    pub fn server_url(&self) -> String {
        self.server.url()
    }

    /// The card's status line ("PIV card, id ..., PIN BLOCKED, ..."), for display.
    pub fn card_status(&self) -> Result<String, Failure> {
        let mut driver = Driver::new(self.card.clone());
        let status = block_on(unlock::read_status(
            &mut driver,
            cardunlock_sim::ISO_PROFILE,
        ))
        .map_err(|e| failure::card(e, Kind::Usage).about("demo card"))?;
        Ok(describe(&status))
    }

    /// Where the demo's SQLite database is.
    pub fn database_path(&self) -> std::path::PathBuf {
        self.dir.path().join("cardunlock.db")
    }

    /// The PUK generation the server has on record, and whether the card holds that PUK.
    pub fn puk_agreement(&self) -> Result<Option<(u32, bool)>, Failure> {
        let record = self
            .server
            .store()
            .card(
                cardunlock_protocol::Profile::from(self.profile).as_str(),
                &hex::encode(&self.identity),
            )
            .map_err(|e| setup(format!("store: {e}")))?;
        Ok(record.map(|r| {
            let puk = cardunlock_server::kdf::piv_puk(&self.master, &self.identity, r.puk_gen);
            (r.puk_gen, self.card.with(|c| c.puk_is(puk.as_bytes())))
        }))
    }
}
