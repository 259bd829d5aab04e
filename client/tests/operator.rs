//! The operator's client against the real unlock server (in-process, HTTPS, pinned): sign-in
//! with password and TOTP, enrollment of simulated PIV, GIDS and ISO cards with the secrets the
//! server hands out (the client derives nothing), re-enrollment, lift-lock, the offline
//! response, the PUK read-out, sign-out, and the refusals as typed kinds.

use cardunlock_client::api::Api;
use cardunlock_client::demo::SharedCard;
use cardunlock_client::enroll::{self, Enrolled, Factory, Holder};
use cardunlock_client::iso_profiles::{IsoProfileEntry, IsoProfiles, SIMULATOR};
use cardunlock_client::operator::{card_ref, Credentials, Operator};
use cardunlock_client::{Failure, Kind};
use cardunlock_core::crypto::Algorithm;
use cardunlock_core::driver::Driver;
use cardunlock_core::flow::CardStatus;
use cardunlock_core::piv::CardId;
use cardunlock_core::unlock;
use cardunlock_protocol::operator::QuestionAnswer;
use cardunlock_protocol::{Profile, Role, Secret, User};
use cardunlock_server::operator::create_operator;
use cardunlock_server::{
    kdf, totp, Argon2Params, CardRecord, Config, MasterSecret, Server, ServerHandle,
};
use cardunlock_sim::{Config as SimConfig, IsoConfig, PivConfig, SimCard};
use embassy_futures::block_on;
use zeroize::Zeroizing;

mod common;

const PASSWORD: &str = "correct horse battery staple";

struct Env {
    server: ServerHandle,
    master: MasterSecret,
    seed: Zeroizing<Vec<u8>>,
    _dir: tempfile::TempDir,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Env {
    /// A server and one operator `eve` (enroller and helpdesk), made as the server's command
    /// line makes operators.
    fn start() -> Env {
        Self::start_with(false)
    }

    /// The same, with four eyes on PUK read-outs or not.
    fn start_with(four_eyes: bool) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterSecret::generate();
        let mut config = Config::new(dir.path().join("db.sqlite"), dir.path(), master.clone());
        config.argon2 = Argon2Params::TEST_ONLY_FAST;
        config.operators.four_eyes_puk_readout = four_eyes;
        let server = Server::spawn(config).unwrap();
        let uri = create_operator(
            server.store(),
            &master,
            &Argon2Params::TEST_ONLY_FAST,
            "eve",
            &[Role::Enroller, Role::Helpdesk],
            &Secret::new(PASSWORD),
        )
        .unwrap();
        let seed = totp::seed_from_uri(uri.expose()).unwrap();
        Env {
            server,
            master,
            seed,
            _dir: dir,
        }
    }

    fn api(&self) -> Api {
        Api::new(&self.server.url(), self.server.cert_pem()).unwrap()
    }

    /// The code `steps` TOTP steps from now (each code is accepted once).
    fn code(&self, steps: u64) -> Zeroizing<String> {
        totp::code(&self.seed, now() + steps * totp::STEP_SECS)
    }

    /// Signs in as `name` with `password` and the code `steps` steps from now.
    fn sign_in_as(&self, name: &str, password: &str, steps: u64) -> Result<Operator, Failure> {
        Operator::sign_in(
            self.api(),
            &Credentials {
                name: name.into(),
                password: Zeroizing::new(password.into()),
                totp: self.code(steps),
            },
        )
    }

    fn sign_in(&self, steps: u64) -> Operator {
        self.sign_in_as("eve", PASSWORD, steps).unwrap()
    }

    /// The server's record of the card, if it has one.
    fn record(&self, profile: &str, id: &CardId) -> Option<CardRecord> {
        self.server.store().card(profile, &id.to_string()).unwrap()
    }
}

/// A simulated card as `config` makes it, its status and its identity.
fn new_card(config: SimConfig) -> (SharedCard, CardStatus, CardId) {
    let card = SharedCard::new(SimCard::new(config));
    let st = status(&card);
    let id = st.identity.unwrap();
    (card, st, id)
}

/// Enrolls `card` (a 3DES key, [`holder`]) with `factory` as the factory's secrets.
fn enroll(
    op: &Operator,
    card: &SharedCard,
    st: &CardStatus,
    factory: &Factory,
) -> Result<Enrolled, Failure> {
    let sim = IsoProfiles::builtin();
    enroll::enroll(
        op,
        &mut Driver::new(card.clone()),
        st,
        sim.get(SIMULATOR),
        Algorithm::TripleDes,
        holder(),
        factory,
    )
}

fn status(card: &SharedCard) -> CardStatus {
    block_on(unlock::read_status(
        &mut Driver::new(card.clone()),
        cardunlock_sim::ISO_PROFILE,
    ))
    .unwrap()
}

fn holder() -> Holder {
    Holder {
        user: User {
            name: "Michael Benson".into(),
            email: "Michael.Benson@demo.local".into(),
        },
        questions: vec![QuestionAnswer {
            question: "First pet?".into(),
            answer: Secret::new("Rex"),
        }],
    }
}

#[test]
fn enrollment_puts_the_servers_secrets_on_the_card_and_re_enrollment_replaces_them() {
    let env = Env::start();
    let op = env.sign_in(0);
    let (card, st, id) = new_card(SimConfig::Piv(PivConfig::factory()));
    let enrolled = enroll(&op, &card, &st, &Factory::default()).unwrap();
    assert!(!enrolled.re_enrolled);
    let record = env
        .record("piv", &id)
        .expect("the server recorded the card");
    // The card holds exactly what the server derives for the recorded generations.
    let puk = kdf::piv_puk(&env.master, id.as_bytes(), record.puk_gen);
    assert!(card.with(|c| c.puk_is(puk.as_bytes())));
    assert!(!card.with(|c| c.puk_is(b"12345678")));
    let key = kdf::piv_mgmt_key(&env.master, id.as_bytes(), record.key_gen);
    assert!(card.with(|c| c.mgmt_key_is(cardunlock_sim::Algorithm::TripleDes, key.expose_bytes())));

    // Again: the server knows the card, so its current secrets authenticate (the factory ones
    // no longer would), and the card ends on the next generation.
    let again = enroll(&op, &card, &st, &Factory::default()).unwrap();
    assert!(again.re_enrolled);
    let record2 = env.record("piv", &id).unwrap();
    assert!(record2.key_gen > record.key_gen, "{record2:?}");
    let key = kdf::piv_mgmt_key(&env.master, id.as_bytes(), record2.key_gen);
    assert!(card.with(|c| c.mgmt_key_is(cardunlock_sim::Algorithm::TripleDes, key.expose_bytes())));
    let puk = kdf::piv_puk(&env.master, id.as_bytes(), record2.puk_gen);
    assert!(card.with(|c| c.puk_is(puk.as_bytes())));

    // The helpdesk reads the PUK out: the one on the card.
    let card_id = card_ref(Profile::Piv, &id.to_string()).unwrap();
    let readout = op
        .puk_readout(&card_id, "called back on the number on file")
        .unwrap();
    assert!(card.with(|c| c.puk_is(readout.puk.expose().as_bytes())));
    op.lift_lock(&card_id, "user called, identity checked")
        .unwrap();
    op.sign_out().unwrap();
}

#[test]
fn a_failed_personalisation_records_nothing() {
    let env = Env::start();
    let op = env.sign_in(0);
    let (card, st, id) = new_card(SimConfig::Piv(PivConfig::factory()));
    let wrong = Factory {
        admin_key_hex: Zeroizing::new("11".repeat(24)),
        ..Factory::default()
    };
    let e = enroll(&op, &card, &st, &wrong).unwrap_err();
    assert!(e.message.contains("management key"), "{e}");
    assert!(env.record("piv", &id).is_none());
    // The PUK was never touched (the key is checked first).
    assert!(card.with(|c| c.puk_is(b"12345678")));
    // The server now offers the generation it handed out as the card's current secrets; the
    // card still holds the factory's, which are tried after them: the enrollment goes through.
    let enrolled = enroll(&op, &card, &st, &Factory::default()).unwrap();
    assert!(enrolled.re_enrolled);
    let record = env.record("piv", &id).unwrap();
    let puk = kdf::piv_puk(&env.master, id.as_bytes(), record.puk_gen);
    assert!(card.with(|c| c.puk_is(puk.as_bytes())));
    // No PUK try was spent on the way.
    assert_eq!(status(&card).puk_tries_left, Some(3));
}

#[test]
fn the_server_answers_an_iso_cards_challenge() {
    let env = Env::start();
    let op = env.sign_in(0);
    let (card, st, id) = new_card(SimConfig::Iso(IsoConfig::factory()));
    enroll(&op, &card, &st, &Factory::default()).unwrap();
    let record = env.record("iso", &id).unwrap();
    let key = kdf::admin_key(
        &env.master,
        "iso",
        id.as_bytes(),
        Algorithm::TripleDes,
        record.key_gen,
    );
    let mut expected = [0xD4, 0xBD, 0x9B, 0x1D, 0xA5, 0xD2, 0x6C, 0xDA];
    key.encrypt_ecb(&mut expected).unwrap();
    let card_id = card_ref(Profile::Iso, &id.to_string()).unwrap();
    let reply = op
        .offline_response(&card_id, "d4bd 9b1d a5d2 6cda", "badge shown at the desk")
        .unwrap();
    assert_eq!(
        reply.grouped.expose(),
        cardunlock_client::hex::grouped(&expected)
    );
    // Each challenge once.
    let e = op
        .offline_response(&card_id, "D4BD9B1DA5D26CDA", "badge shown at the desk")
        .unwrap_err();
    assert_eq!(e.kind, Kind::Refused, "{e}");
    // Bad input is refused before anything is sent.
    for bad in ["zz", "", "0011 2233 4455 6677 8899"] {
        let e = op.offline_response(&card_id, bad, "x").unwrap_err();
        assert_eq!(e.kind, Kind::Usage, "{bad}: {e}");
    }
}

#[test]
fn sign_in_and_sessions_fail_as_unauthorized() {
    let env = Env::start();
    let wrong = env
        .sign_in_as("eve", "not the password at all", 0)
        .unwrap_err();
    assert_eq!(wrong.kind, Kind::Unauthorized, "{wrong}");
    assert!(!wrong.message.contains("not the password"), "{wrong}");
    let e = env.sign_in_as("Eve Smith", PASSWORD, 0).unwrap_err();
    assert_eq!(e.kind, Kind::Usage, "{e}");
    // Signed out: the token no longer works.
    let op = env.sign_in(1);
    let token = op.token().clone();
    op.sign_out().unwrap();
    let gone = Operator::resume(env.api(), token, None);
    let card = card_ref(Profile::Piv, "00112233").unwrap();
    let e = gone.lift_lock(&card, "reason").unwrap_err();
    assert_eq!(e.kind, Kind::Unauthorized, "{e}");
    assert!(e.message.starts_with("lift-lock: "), "{e}");
}

#[test]
fn a_gids_card_is_enrolled_with_the_servers_admin_key() {
    use cardunlock_core::flow::LocalKey;
    use cardunlock_core::policy::PinPolicy;
    use cardunlock_sim::GidsConfig;

    let env = Env::start();
    let op = env.sign_in(0);
    let (card, st, id) = new_card(SimConfig::Gids(GidsConfig::factory()));
    let enrolled = enroll(&op, &card, &st, &Factory::default()).unwrap();
    assert!(!enrolled.re_enrolled);
    let record = env
        .record("gids", &id)
        .expect("the server recorded the card");

    // The card now answers to the key the server derives for it (mutual authentication, the
    // card's cryptogram checked), and that key unblocks its PIN.
    let key = kdf::admin_key(
        &env.master,
        "gids",
        id.as_bytes(),
        Algorithm::TripleDes,
        record.key_gen,
    );
    let new_pin = unlock::admin_input(&PinPolicy::GIDS, b"Kq7m2x", b"Kq7m2x").unwrap();
    let mut r1 = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut r1);
    block_on(unlock::gids_unblock(
        &mut Driver::new(card.clone()),
        &new_pin,
        r1,
        &mut LocalKey::new(key, rand::rngs::OsRng),
    ))
    .unwrap();
    assert!(card.with(|c| c.pin_is(b"Kq7m2x")));
    op.sign_out().unwrap();
}

#[test]
fn with_four_eyes_the_read_out_is_refused_with_the_request_and_no_puk() {
    let env = Env::start_with(true);
    let op = env.sign_in(0);
    let (card, st, id) = new_card(SimConfig::Piv(PivConfig::factory()));
    enroll(&op, &card, &st, &Factory::default()).unwrap();
    let card_id = card_ref(Profile::Piv, &id.to_string()).unwrap();
    let e = op
        .puk_readout(&card_id, "called back on the number on file")
        .unwrap_err();
    assert_eq!(e.kind, Kind::Refused, "{e}");
    assert!(e.message.contains("second operator"), "{e}");
    let record = env.record("piv", &id).unwrap();
    assert!(!record.puk_read_out, "no PUK left the server");
    let puk = kdf::piv_puk(&env.master, id.as_bytes(), record.puk_gen);
    assert!(!e.message.contains(puk.as_str()));
    op.sign_out().unwrap();
}

/// A vendor's AID, not the simulator's.
const VENDOR_AID: [u8; 6] = [0xA0, 0x00, 0x00, 0x01, 0x23, 0x45];

fn profiles(list: &[(&str, &str)]) -> IsoProfiles {
    IsoProfiles::from_entries(
        list.iter()
            .map(|(name, aid)| IsoProfileEntry::new(name, aid, 0x01, 0x80, None).unwrap())
            .collect(),
    )
    .unwrap()
}

/// The online unlock of `card` with the workstation's `profiles`; the outcome and the card's
/// PIN and admin-key tries left after.
fn unlock_with(
    env: &Env,
    card: &SharedCard,
    profiles: &IsoProfiles,
) -> (Result<(), Failure>, u8, Option<u8>) {
    let mut ui = common::Script {
        answers: vec!["Rex"],
        pin: "482915",
        ..common::Script::default()
    };
    let result = cardunlock_client::online::unlock_with(
        &mut Driver::new(card.clone()),
        &env.api(),
        &mut ui,
        profiles,
        None,
    );
    let tries = card.with(|c| (c.pin_tries_left(), c.admin_tries_left()));
    (result, tries.0, tries.1)
}

/// An ISO card on a vendor's AID: not recognised without a configured profile (a clear "no
/// configured ISO profile" refusal); enrolled with the profile it answered on, whose name the
/// server records and returns at `start`; unlocked only with a profile of that name and AID. A
/// workstation without the named profile, or whose profile of that name has another AID, stops
/// before any try (the card's PIN and admin-key counters are unchanged). Fails if the name is
/// not stored or returned, or if the client ignores it.
#[test]
fn an_iso_cards_profile_is_recorded_and_checked_at_unlock() {
    let env = Env::start();
    let op = env.sign_in(0);
    let config = IsoConfig::factory().blocked().with_aid(&VENDOR_AID);
    let card = SharedCard::new(SimCard::new(SimConfig::Iso(config)));

    // Only the simulator's own profile (the demo feature): the card is not recognised.
    let (result, pin, admin) = unlock_with(&env, &card, &IsoProfiles::builtin());
    let e = result.unwrap_err();
    assert_eq!(e.kind, Kind::Refused, "{e}");
    assert!(e.message.contains("no configured ISO profile"), "{e}");
    assert!(e.message.contains(SIMULATOR), "{e}");
    assert_eq!((pin, admin), (0, Some(10)));

    let acme = profiles(&[("acme", "A0 00 00 01 23 45")]);
    let probes = acme.probes(None);
    let st = block_on(unlock::read_status_with(
        &mut Driver::new(card.clone()),
        &probes,
    ))
    .unwrap();
    assert_eq!(st.iso_profile, Some(0));
    let id = st.identity.unwrap();
    enroll::enroll(
        &op,
        &mut Driver::new(card.clone()),
        &st,
        acme.get("acme"),
        Algorithm::TripleDes,
        holder(),
        &Factory::default(),
    )
    .unwrap();
    let started = env
        .api()
        .start(card_ref(Profile::Iso, &id.to_string()).unwrap())
        .unwrap();
    assert_eq!(started.iso_profile.as_deref(), Some("acme"));

    // The card answers on a profile named otherwise: the server's name is not configured here.
    let (result, pin, admin) = unlock_with(&env, &card, &profiles(&[("other", "A000000123 45")]));
    let e = result.unwrap_err();
    assert_eq!(e.kind, Kind::Refused, "{e}");
    assert!(e.message.contains("\"acme\""), "{e}");
    assert!(e.message.contains("does not have"), "{e}");
    assert_eq!((pin, admin), (0, Some(10)));

    // "acme" is configured with another AID than the one the card answered on.
    let mixed = profiles(&[("other", "A0 00 00 01 23 45"), ("acme", "A0 00 00 09")]);
    let (result, pin, admin) = unlock_with(&env, &card, &mixed);
    let e = result.unwrap_err();
    assert_eq!(e.kind, Kind::Refused, "{e}");
    assert!(e.message.contains("a0000009"), "{e}");
    assert_eq!((pin, admin), (0, Some(10)));

    // The profile the server names: unlocked.
    let (result, pin, _) = unlock_with(&env, &card, &acme);
    result.unwrap();
    assert_eq!(pin, 3);
}
