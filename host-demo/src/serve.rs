//! `cardunlock serve`, `enroll` and `lift-lock`: the server and the operator's side.

use std::path::PathBuf;

use cardunlock_server::{Config, MasterSecret, Store};

use cardunlock_client::{Failure, Kind};

#[cfg(any(feature = "pcsc", feature = "ccid"))]
use crate::secrets::SecretArg;

#[derive(clap::Args, Debug)]
pub struct ServerStateArgs {
    /// The store: a SQLite database file (created and migrated on start), or a PostgreSQL URL
    /// `postgres://user@host[:port]/dbname` shared by several server instances (schema created
    /// and migrated on start). Prefer $CARDUNLOCK_DB for a URL with a password.
    #[arg(long, env = "CARDUNLOCK_DB", default_value = "cardunlock.db")]
    pub db: PathBuf,
    /// File with the master secret (hex, 32+ bytes). Else $CARDUNLOCK_MASTER_SECRET.
    #[arg(long, conflicts_with = "master_secret_stdin")]
    pub master_secret_file: Option<PathBuf>,
    /// Read the master secret (hex) from standard input.
    #[arg(long)]
    pub master_secret_stdin: bool,
}

impl ServerStateArgs {
    /// Opens the store; an unreachable database is exit code 6, any other failure 2.
    fn open_store(&self) -> Result<Store, Failure> {
        Store::open(&self.db).map_err(|e| {
            let code = match e {
                cardunlock_server::ServerError::DatabaseUnavailable(_) => Kind::Server,
                _ => Kind::Usage,
            };
            Failure::new(code, format!("{e}"))
        })
    }

    fn master(&self) -> Result<MasterSecret, Failure> {
        if self.master_secret_stdin {
            let hex = crate::secrets::Source {
                subject: "master secret",
                option: "master-secret",
                value: None,
                stdin: true,
                file: None,
            }
            .get()?;
            return MasterSecret::from_hex(&hex).map_err(|e| Failure::usage("master secret", e));
        }
        match &self.master_secret_file {
            Some(path) => MasterSecret::from_file(path),
            None => MasterSecret::from_env(),
        }
        .map_err(|e| Failure::usage("master secret", e))
    }
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    state: ServerStateArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    bind: std::net::SocketAddr,
    /// Where the self-signed certificate and key are kept (made on first start).
    #[arg(long, default_value = ".")]
    state_dir: PathBuf,
    /// Wrong answer attempts before a card's online unlock is locked.
    #[arg(long, default_value_t = 3)]
    max_attempts: u32,
}

pub fn serve(args: &ServeArgs) -> Result<(), Failure> {
    let mut config = Config::new(
        args.state.db.clone(),
        args.state_dir.clone(),
        args.state.master()?,
    );
    config.bind = args.bind;
    config.max_attempts = args.max_attempts;
    cardunlock_server::run_blocking(config)
        .map_err(|e| Failure::new(Kind::Server, format!("server: {e}")))
}

#[cfg(any(feature = "pcsc", feature = "ccid"))]
#[derive(clap::Args, Debug)]
pub struct EnrollArgs {
    #[command(flatten)]
    card: crate::card::CardArgs,
    #[command(flatten)]
    state: ServerStateArgs,
    /// The user's name.
    #[arg(long)]
    name: String,
    /// The user's email.
    #[arg(long)]
    email: String,
    /// A security question (repeat; the answers follow in the same order).
    #[arg(long = "question")]
    questions: Vec<String>,
    /// The answer to the question at the same position (visible to other users of this
    /// machine: prefer --answers-stdin or --answers-file). Asked hidden when absent.
    #[arg(long = "answer", value_name = "ANSWER")]
    answers: Vec<SecretArg>,
    /// Read the answers from standard input, one per line, in question order.
    #[arg(long, conflicts_with_all = ["answers", "answers_file"])]
    answers_stdin: bool,
    /// Read the answers from a file only its owner can read, one per line (`-`: standard input).
    #[arg(long, value_name = "FILE", conflicts_with = "answers")]
    answers_file: Option<PathBuf>,
    /// The card's current (factory) PUK, replaced by the derived one.
    #[arg(long, default_value = cardunlock_client::enroll::FACTORY_PUK)]
    factory_puk: SecretArg,
    /// Read the factory PUK from a file only its owner can read (`-`: standard input).
    #[arg(long, value_name = "FILE")]
    factory_puk_file: Option<PathBuf>,
    /// The card's current (factory) admin / management key (hex); its algorithm is read from
    /// the card where it says (YubiKey metadata), else --algorithm, else 3DES.
    #[arg(long, default_value = cardunlock_client::enroll::FACTORY_ADMIN_KEY_HEX)]
    factory_admin_key: SecretArg,
    /// Read the factory admin key (hex) from a file only its owner can read (`-`: standard input).
    #[arg(long, value_name = "FILE")]
    factory_admin_key_file: Option<PathBuf>,
    /// Admin key algorithm, for ISO admin cards (which do not report it) or to override the card.
    #[arg(long, value_parser = crate::respond::parse_algorithm)]
    algorithm: Option<cardunlock_core::crypto::Algorithm>,
}

#[cfg(any(feature = "pcsc", feature = "ccid"))]
impl EnrollArgs {
    /// The card options.
    pub fn card_mut(&mut self) -> &mut crate::card::CardArgs {
        &mut self.card
    }
}

#[cfg(any(feature = "pcsc", feature = "ccid"))]
pub fn enroll(args: &EnrollArgs) -> Result<(), Failure> {
    use crate::secrets::{one_stdin, Source};
    use cardunlock_core::crypto::Algorithm;
    use cardunlock_core::iso::IsoProfile;
    use cardunlock_core::unlock;
    use cardunlock_server::Argon2Params;

    let answers_src = Source {
        subject: "answers",
        option: "answers",
        value: None,
        stdin: args.answers_stdin,
        file: args.answers_file.as_deref(),
    };
    // A default value counts as not given: only an explicit file replaces it.
    let puk_src = Source {
        subject: "factory PUK",
        option: "factory-puk",
        value: if args.factory_puk_file.is_some() {
            None
        } else {
            Some(&args.factory_puk)
        },
        stdin: false,
        file: args.factory_puk_file.as_deref(),
    };
    let key_src = Source {
        subject: "factory admin key",
        option: "factory-admin-key",
        value: if args.factory_admin_key_file.is_some() {
            None
        } else {
            Some(&args.factory_admin_key)
        },
        stdin: false,
        file: args.factory_admin_key_file.as_deref(),
    };
    let master_src = Source {
        subject: "master secret",
        option: "master-secret",
        value: None,
        stdin: args.state.master_secret_stdin,
        file: None,
    };
    one_stdin(&[&answers_src, &puk_src, &key_src, &master_src])?;
    let answers: Vec<zeroize::Zeroizing<String>> = if !args.answers.is_empty() {
        args.answers
            .iter()
            .map(|a| zeroize::Zeroizing::new(a.expose().to_string()))
            .collect()
    } else if let Some(lines) = answers_src.lines()? {
        lines
    } else {
        let mut typed = Vec::with_capacity(args.questions.len());
        for q in &args.questions {
            typed.push(
                crate::terminal::hidden(&format!("Answer to {q:?}"))
                    .map_err(|f| Failure::new(f.kind, format!("answers: {}", f.message)))?,
            );
        }
        typed
    };
    if args.questions.len() != answers.len() {
        return Err(Failure::usage(
            "answers",
            format!(
                "{} questions and {} answers: give one answer per --question, in order",
                args.questions.len(),
                answers.len()
            ),
        ));
    }
    let master = args.state.master()?;
    let store = args.state.open_store()?;
    let factory = cardunlock_client::enroll::Factory {
        puk: puk_src.get()?,
        admin_key_hex: key_src.get()?,
        algorithm: args.algorithm,
    };
    let iso = IsoProfile {
        algorithm: args.algorithm.unwrap_or(Algorithm::TripleDes),
        ..IsoProfile::SIM
    };
    // Reset at the end: drop the admin authentication the personalisation established.
    let (status, identity) =
        crate::card::Card::connect(&args.card)?.run(crate::card::End::Reset, |driver| {
            let status = embassy_futures::block_on(unlock::read_status(driver, iso))
                .map_err(|e| cardunlock_client::failure::card(&e, Kind::Usage).about("card"))?;
            let identity = status
                .identity
                .ok_or_else(|| Failure::new(Kind::Refused, "card: it has no readable identity"))?;
            cardunlock_client::enroll::personalise(driver, &status, &master, &factory)?;
            Ok::<_, Failure>((status, identity))
        })??;
    let enrollment = cardunlock_server::Enrollment {
        name: args.name.clone(),
        email: args.email.clone(),
        profile: cardunlock_client::online::wire_profile(status.profile)
            .as_str()
            .into(),
        identity_hex: identity.to_string(),
        algorithm: if status.profile == cardunlock_core::flow::Profile::IsoAdmin {
            iso.algorithm
        } else {
            Algorithm::TripleDes
        },
        questions: args
            .questions
            .iter()
            .cloned()
            .zip(answers.iter().map(|a| a.to_string()))
            .collect(),
    };
    store
        .enroll(&enrollment, &Argon2Params::default())
        .map_err(|e| Failure::new(Kind::Refused, format!("enrollment: {e}")))?;
    println!(
        "Enrolled {} <{}>: {} card {identity}, {} security question(s).",
        args.name,
        args.email,
        status.profile.name().to_uppercase(),
        args.questions.len()
    );
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct LiftLockArgs {
    #[command(flatten)]
    state: ServerStateArgs,
    /// Card profile: piv, gids, iso.
    #[arg(long)]
    profile: String,
    /// Card identity (hex, as `cardunlock status` shows it).
    #[arg(long)]
    identity: String,
}

pub fn lift_lock(args: &LiftLockArgs) -> Result<(), Failure> {
    let store = args.state.open_store()?;
    store
        .lift_lock(&args.profile, &args.identity)
        .map_err(|e| Failure::new(Kind::Refused, format!("lift-lock: {e}")))?;
    println!(
        "Online unlock lifted for {} card {}.",
        args.profile, args.identity
    );
    Ok(())
}
