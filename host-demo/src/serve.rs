//! `cardunlock serve`, `enroll` and `lift-lock`: the server and the operator's side.
#![allow(clippy::drop_non_drop)] // `drop(driver)` ends its borrow of the PC/SC session before the transaction ends.

use std::path::PathBuf;

use cardunlock_server::{Argon2Params, Config, MasterSecret, Store};

use crate::{exit, Failure};

#[derive(clap::Args, Debug)]
pub struct ServerStateArgs {
    /// The store: a SQLite database file (created and migrated on start), or a PostgreSQL URL
    /// `postgres://user@host[:port]/dbname` shared by several server instances (schema created
    /// and migrated on start). Prefer $CARDUNLOCK_DB for a URL with a password.
    #[arg(long, env = "CARDUNLOCK_DB", default_value = "cardunlock.db")]
    pub db: PathBuf,
    /// File with the master secret (hex, 32+ bytes). Else $CARDUNLOCK_MASTER_SECRET.
    #[arg(long)]
    pub master_secret_file: Option<PathBuf>,
}

impl ServerStateArgs {
    /// Opens the store; an unreachable database is exit code 6, any other failure 2.
    fn open_store(&self) -> Result<Store, Failure> {
        Store::open(&self.db).map_err(|e| {
            let code = match e {
                cardunlock_server::ServerError::DatabaseUnavailable(_) => exit::SERVER,
                _ => exit::USAGE,
            };
            Failure::new(code, format!("{e}"))
        })
    }

    fn master(&self) -> Result<MasterSecret, Failure> {
        match &self.master_secret_file {
            Some(path) => MasterSecret::from_file(path),
            None => MasterSecret::from_env(),
        }
        .map_err(|e| Failure::new(exit::USAGE, format!("master secret: {e}")))
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
    let config = Config {
        db_path: args.state.db.clone(),
        master: args.state.master()?,
        bind: args.bind,
        state_dir: args.state_dir.clone(),
        max_attempts: args.max_attempts,
        session_ttl: std::time::Duration::from_secs(300),
        argon2: Argon2Params::default(),
    };
    cardunlock_server::run_blocking(config)
        .map_err(|e| Failure::new(exit::SERVER, format!("server: {e}")))
}

#[cfg(any(feature = "pcsc", feature = "ccid"))]
#[derive(clap::Args, Debug)]
pub struct EnrollArgs {
    #[command(flatten)]
    state: ServerStateArgs,
    /// The user's name.
    #[arg(long)]
    name: String,
    /// The user's email.
    #[arg(long)]
    email: String,
    /// A security question (repeat; pairs with --answer in order).
    #[arg(long = "question")]
    questions: Vec<String>,
    /// The answer to the question at the same position.
    #[arg(long = "answer")]
    answers: Vec<crate::secret_arg::SecretArg>,
    /// The card's current (factory) PUK, replaced by the derived one.
    #[arg(long, default_value = "12345678")]
    factory_puk: crate::secret_arg::SecretArg,
    /// The card's current (factory) admin / management key (hex, 3DES).
    #[arg(
        long,
        default_value = "010203040506070801020304050607080102030405060708"
    )]
    factory_admin_key: crate::secret_arg::SecretArg,
    /// Admin key algorithm of ISO admin cards.
    #[arg(long, default_value = "3des", value_parser = crate::respond::parse_algorithm)]
    algorithm: cardunlock_core::crypto::Algorithm,
}

#[cfg(any(feature = "pcsc", feature = "ccid"))]
pub fn enroll(reader: Option<&str>, args: &EnrollArgs, verbose: bool) -> Result<(), Failure> {
    use cardunlock_core::crypto::{AdminKey, Algorithm};
    use cardunlock_core::iso::IsoProfile;
    use cardunlock_core::unlock;

    if args.questions.len() != args.answers.len() {
        return Err(Failure::new(
            exit::USAGE,
            "give one --answer for each --question",
        ));
    }
    let master = args.state.master()?;
    let store = args.state.open_store()?;
    let factory = crate::enroll::Factory {
        puk: zeroize::Zeroizing::new(args.factory_puk.expose().to_string()),
        admin_key: AdminKey::from_hex(Algorithm::TripleDes, args.factory_admin_key.expose())
            .map_err(|e| Failure::new(exit::USAGE, format!("factory admin key: {e}")))?,
    };
    let iso = IsoProfile {
        algorithm: args.algorithm,
        ..IsoProfile::SIM
    };
    // Reset at the end: drop the admin authentication the personalisation established.
    let (status, identity) = crate::card::Card::connect(reader, verbose)?.run(
        verbose,
        crate::card::End::Reset,
        |driver| {
            let status = embassy_futures::block_on(unlock::read_status(driver, iso))
                .map_err(|e| Failure::new(exit::COMMUNICATION, e.to_string()))?;
            let identity = status
                .identity
                .ok_or_else(|| Failure::new(exit::REFUSED, "the card has no readable identity"))?;
            crate::enroll::personalise(driver, &status, &master, &factory, args.algorithm)?;
            Ok::<_, Failure>((status, identity))
        },
    )??;
    let enrollment = cardunlock_server::Enrollment {
        name: args.name.clone(),
        email: args.email.clone(),
        profile: status.profile.name().into(),
        identity_hex: identity.to_string(),
        algorithm: if status.profile == cardunlock_core::flow::Profile::IsoAdmin {
            args.algorithm
        } else {
            Algorithm::TripleDes
        },
        questions: args
            .questions
            .iter()
            .cloned()
            .zip(args.answers.iter().map(|a| a.expose().to_string()))
            .collect(),
    };
    store
        .enroll(&enrollment, &Argon2Params::default())
        .map_err(|e| Failure::new(exit::REFUSED, format!("enrollment: {e}")))?;
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
        .map_err(|e| Failure::new(exit::REFUSED, format!("lift-lock: {e}")))?;
    println!(
        "Online unlock lifted for {} card {}.",
        args.profile, args.identity
    );
    Ok(())
}
