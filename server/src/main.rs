//! `cardunlock-server`: serve online unlock and the operator API, or add operators.
//!
//! - `serve`: HTTPS on `--bind`, the store at `--db` (SQLite file or `postgres://` URL), the
//!   master secret from `--master-secret-file` (owner-only), `--master-secret-stdin` or
//!   `$CARDUNLOCK_MASTER_SECRET` (hex; removed and wiped from `/proc/PID/environ` once read, as
//!   `$CARDUNLOCK_DB` is); the PostgreSQL password from `--db-password-file`, `$CARDUNLOCK_DB`
//!   or `$PGPASSFILE`, never `--db`; the certificate and key from `--tls-cert`/`--tls-key` or
//!   the state directory.
//! - `add-admin NAME`, `add-operator NAME --role ROLE...`: the password from a hidden prompt,
//!   `--password-stdin` or `--password-file` (owner-only); prints the `otpauth://` URI and its
//!   QR code for the operator's authenticator app, once.
//! - `audit verify [--head CHAIN:SEQ:MAC]...`: walks the audit log's hash chains, names the
//!   first row removed, changed, reordered or inserted, checks heads saved earlier (the server
//!   logs its heads every minute) are still in them, and prints every chain's head.
//!
//! - `audit export [--format jsonl|syslog|csv] [--out FILE]`: the audit log for a SIEM, every
//!   chain's head at the end.
//!
//! - `audit archive --before DATE --out FILE`: moves older rows into a file ending with each
//!   chain's head; `audit verify --archive FILE` then starts from those heads.
//!
//! Exit codes: 0 done; 2 bad usage or input; 3 the audit chain does not verify; 6 the database
//! cannot be reached; 1 anything else.
#![forbid(unsafe_code)]

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use zeroize::Zeroizing;

use cardunlock_server::protocol::{Role, Secret};
use cardunlock_server::{
    operator, read_secret_file, totp, Argon2Params, ChainHead, Config, MasterSecret, OpError,
    ServerError, Store, TlsFiles, TrustedProxies,
};

/// The cardunlock server: online unlock of blocked smart cards and the operator API.
#[derive(Parser, Debug)]
#[command(name = "cardunlock-server", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve online unlock and the operator API over HTTPS until Ctrl-C.
    Serve(ServeArgs),
    /// Add an operator with the role admin (the first account of a new server).
    AddAdmin(AddArgs),
    /// Add an operator with the given roles.
    AddOperator {
        #[command(flatten)]
        add: AddArgs,
        /// A role: helpdesk, enroller, auditor or admin (repeat for several).
        #[arg(long = "role", required = true)]
        roles: Vec<Role>,
    },
    /// The audit log's hash chain.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Walk the chain: name the first row removed, changed, reordered or inserted, and print
    /// the head (exit code 3 if the chain does not verify).
    Verify {
        #[command(flatten)]
        state: StateArgs,
        /// A head saved earlier (`CHAIN:SEQ:MAC`, as printed here or logged by the server;
        /// repeat for several): its chain must still hold it, else its tail was truncated.
        #[arg(long = "head")]
        heads: Vec<String>,
        /// An archive file written by `audit archive` (repeat for several): each chain must
        /// start at, or pass, its last head.
        #[arg(long = "archive", value_name = "FILE")]
        archives: Vec<PathBuf>,
    },
    /// Move the rows older than a date into a new file (JSON lines with each chain's last
    /// archived head); the chains then start from those heads.
    Archive {
        #[command(flatten)]
        state: StateArgs,
        /// Archive rows older than this day (YYYY-MM-DD, 00:00 UTC).
        #[arg(long)]
        before: String,
        /// The archive file (created, owner-only; must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Write the whole audit log for a SIEM (rows with chain, sequence number and MAC, then
    /// every chain's head): JSON lines, RFC 5424 syslog lines or CSV.
    Export {
        /// The store (no master secret needed: the export is read as stored; `audit verify`
        /// checks it).
        #[command(flatten)]
        db: DbArgs,
        /// jsonl, syslog (RFC 5424) or csv.
        #[arg(long, default_value = "jsonl")]
        format: cardunlock_server::audit_export::ExportFormat,
        /// Write here (created, owner-only) instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// The HOSTNAME of syslog lines (default: this host's name).
        #[arg(long)]
        hostname: Option<String>,
    },
}

/// Where the store is and how to reach it (every command that opens the store).
#[derive(Args, Debug)]
struct DbArgs {
    /// The store: a SQLite database file (created and migrated on start), or a PostgreSQL URL
    /// `postgres://user@host[:port]/dbname` shared by several instances; else $CARDUNLOCK_DB
    /// (removed from the environment once read), else `cardunlock.db`. A URL given here may not
    /// carry a password (the command line is visible to other users): see --db-password-file.
    #[arg(long)]
    db: Option<PathBuf>,
    /// File with the PostgreSQL password (first line; owner-only). Without it the password
    /// comes from the URL in $CARDUNLOCK_DB, or from $PGPASSFILE (else ~/.pgpass).
    #[arg(long, value_name = "FILE")]
    db_password_file: Option<PathBuf>,
    /// PEM file of the CA(s) that issue the PostgreSQL server's certificate: connect over TLS
    /// only, checking the certificate against them and the URL's host name (libpq's
    /// `sslmode=verify-full` with `sslrootcert`).
    #[arg(long, env = "CARDUNLOCK_DB_CA_FILE")]
    db_ca_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct StateArgs {
    #[command(flatten)]
    db: DbArgs,
    /// File with the master secret (hex, 32+ bytes; owner-only). Else $CARDUNLOCK_MASTER_SECRET.
    #[arg(long, conflicts_with = "master_secret_stdin")]
    master_secret_file: Option<PathBuf>,
    /// Read the master secret (hex) from standard input.
    #[arg(long)]
    master_secret_stdin: bool,
}

#[derive(Args, Debug)]
struct ServeArgs {
    #[command(flatten)]
    state: StateArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    bind: std::net::SocketAddr,
    /// Where the self-signed certificate and key are kept (made on first start), unless
    /// --tls-cert and --tls-key are given.
    #[arg(long, default_value = ".")]
    state_dir: PathBuf,
    /// The server's certificate chain (PEM, its own certificate first) instead of the state
    /// directory's: one identity for several instances, or one issued by a private CA the
    /// workstations pin. Owned by this user or root, not writable by others.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM; owned by this user or root, owner-only).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Wrong answer attempts before a card's online unlock is locked (sessions whose card
    /// proved its presence: PIV).
    #[arg(long, default_value_t = 3)]
    max_attempts: u32,
    /// Wrong answer attempts from sessions without card proof (GIDS, ISO) before the lock.
    #[arg(long, default_value_t = 10)]
    blind_max_attempts: u32,
    /// Seconds of the first back-off after a wrong answer set without card proof (doubling).
    #[arg(long, default_value_t = 60)]
    backoff_base_secs: u64,
    /// Minutes an operator session may stay idle.
    #[arg(long, default_value_t = 15)]
    operator_idle_minutes: u64,
    /// Hours an operator session lasts at most.
    #[arg(long, default_value_t = 8)]
    operator_session_hours: u64,
    /// Offline responses one operator may get per day.
    #[arg(long, default_value_t = 20)]
    daily_offline_responses: u32,
    /// PIV PUK read-outs one operator may get per day.
    #[arg(long, default_value_t = 20)]
    daily_puk_readouts: u32,
    /// Four eyes on PIV PUK read-outs: another helpdesk operator approves each before its
    /// requester collects the PUK.
    #[arg(long)]
    four_eyes_puk_readout: bool,
    /// A load balancer's network (CIDR, repeat for several): from these peers only, the client
    /// address is taken from a PROXY protocol header (v1 or v2) and from `X-Forwarded-For`
    /// (its rightmost hop outside these networks).
    #[arg(long = "trusted-proxy", value_name = "CIDR", value_parser = cardunlock_server::proxy::parse_network)]
    trusted_proxies: Vec<ipnet::IpNet>,
    /// Serve Prometheus metrics on this address (plain HTTP, `GET /metrics`; keep it on an
    /// internal network).
    #[arg(long, value_name = "ADDR")]
    metrics_bind: Option<std::net::SocketAddr>,
    /// Post every alert to this https:// URL (kind, card id hash, time; retried with backoff).
    #[arg(long, value_name = "URL")]
    alert_webhook: Option<String>,
    /// Pin the webhook receiver's certificate (PEM file) instead of the public web PKI.
    #[arg(long, value_name = "PEM", requires = "alert_webhook")]
    alert_webhook_cert: Option<PathBuf>,
    /// Append the audit chains' heads to this file every minute and on shutdown (keep it, or
    /// ship it, off the database host).
    #[arg(long, value_name = "FILE")]
    audit_heads_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct AddArgs {
    /// The operator's name (a-z, 0-9, '.', '_', '-').
    name: String,
    #[command(flatten)]
    state: StateArgs,
    /// Read the password from standard input (one line).
    #[arg(long, conflicts_with = "password_file")]
    password_stdin: bool,
    /// Read the password from a file only its owner can read (first line).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
}

/// A failure with its exit code.
struct Failure {
    code: u8,
    message: String,
}

impl From<ServerError> for Failure {
    fn from(e: ServerError) -> Self {
        let code = match e {
            ServerError::DatabaseUnavailable(_) => 6,
            ServerError::InvalidInput(_)
            | ServerError::MasterSecret(_)
            | ServerError::Permissions(_)
            | ServerError::SchemaVersion(_) => 2,
            _ => 1,
        };
        Self {
            code,
            message: e.to_string(),
        }
    }
}

impl From<OpError> for Failure {
    fn from(e: OpError) -> Self {
        match e {
            OpError::Server(e) => e.into(),
            refused @ OpError::Refused(_) => Self {
                code: 2,
                message: refused.body().message,
            },
        }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

/// Whether a `postgres://` URL has a password in its user part.
fn url_has_password(location: &std::path::Path) -> bool {
    let Some(url) = location.to_str() else {
        return false;
    };
    let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let in_user = authority
        .rsplit_once('@')
        .is_some_and(|(user, _)| user.contains(':'));
    in_user || rest.contains("password=")
}

/// One line of standard input, without its line ending.
fn stdin_line(what: &str) -> Result<Zeroizing<String>, Failure> {
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| usage(format!("{what}: cannot read standard input: {e}")))?;
    let trimmed = line.trim_end_matches(['\r', '\n']).len();
    line.truncate(trimmed);
    Ok(line)
}

/// Where the store is: `--db`, else `$CARDUNLOCK_DB`, else `cardunlock.db`. The variable is
/// taken (removed and wiped) whether used or not. A `--db` URL with a password is refused.
struct Db {
    location: PathBuf,
    password: Option<Secret>,
}

impl DbArgs {
    fn db(&self) -> Result<Db, Failure> {
        let from_env = cardunlock_server::environ::take("CARDUNLOCK_DB")?;
        let location = match (&self.db, &from_env) {
            (Some(db), _) => {
                if url_has_password(db) {
                    return Err(usage(
                        "--db: the URL carries a password, and the command line is visible to \
                         other users: give the password in --db-password-file or $PGPASSFILE, \
                         or the whole URL in $CARDUNLOCK_DB",
                    ));
                }
                db.clone()
            }
            (None, Some(url)) => PathBuf::from(url.as_str()),
            (None, None) => PathBuf::from("cardunlock.db"),
        };
        let password = match &self.db_password_file {
            Some(path) => Some(Secret::new(
                read_secret_file(path, "PostgreSQL password file")?.as_str(),
            )),
            None => None,
        };
        Ok(Db { location, password })
    }

    /// The store, over TLS when `--db-ca-file` is given.
    fn store(&self) -> Result<Store, Failure> {
        let db = self.db()?;
        let database = cardunlock_server::Database::from_location(&db.location);
        Ok(Store::open_with_ca(
            &database,
            db.password.as_ref(),
            self.db_ca_file.as_deref(),
        )?)
    }
}

impl StateArgs {
    fn store(&self) -> Result<Store, Failure> {
        self.db.store()
    }

    fn master(&self) -> Result<MasterSecret, Failure> {
        let master = if self.master_secret_stdin {
            MasterSecret::from_hex(stdin_line("master secret")?.trim())
        } else if let Some(path) = &self.master_secret_file {
            MasterSecret::from_file(path)
        } else {
            MasterSecret::from_env()
        };
        Ok(master?)
    }
}

fn serve(args: &ServeArgs) -> Result<(), Failure> {
    let db = args.state.db.db()?;
    let mut config = Config::new(db.location, args.state_dir.clone(), args.state.master()?);
    config.db_password = db.password;
    config.db_ca_file = args.state.db.db_ca_file.clone();
    config.bind = args.bind;
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.tls_files = Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    config.max_attempts = args.max_attempts;
    config.blind_max_attempts = args.blind_max_attempts;
    config.backoff_base = std::time::Duration::from_secs(args.backoff_base_secs);
    config.operators.idle_timeout = Duration::from_secs(args.operator_idle_minutes * 60);
    config.operators.session_lifetime = Duration::from_secs(args.operator_session_hours * 3600);
    config.operators.daily_offline_responses = args.daily_offline_responses;
    config.operators.daily_puk_readouts = args.daily_puk_readouts;
    config.operators.four_eyes_puk_readout = args.four_eyes_puk_readout;
    config.trusted_proxies = TrustedProxies::new(args.trusted_proxies.clone());
    config.metrics_bind = args.metrics_bind;
    config.audit_heads_file = args.audit_heads_file.clone();
    if let Some(url) = &args.alert_webhook {
        let mut hook = cardunlock_server::alerts::AlertWebhook::new(url)?;
        if let Some(path) = &args.alert_webhook_cert {
            let pem = std::fs::read_to_string(path)
                .map_err(|e| usage(format!("{}: {e}", path.display())))?;
            hook.cert_pem = Some(pem);
        }
        config.alert_webhook = Some(hook);
    }
    Ok(cardunlock_server::run_blocking(config)?)
}

fn password(args: &AddArgs) -> Result<Secret, Failure> {
    let text = if args.password_stdin {
        stdin_line("password")?
    } else if let Some(path) = &args.password_file {
        read_secret_file(path, "password file")?
    } else {
        if !std::io::stdin().is_terminal() {
            return Err(usage(
                "no terminal to ask the password on: use --password-stdin or --password-file",
            ));
        }
        let first = Zeroizing::new(
            rpassword::prompt_password(format!("Password for {}: ", args.name))
                .map_err(|e| usage(format!("password: {e}")))?,
        );
        let again = Zeroizing::new(
            rpassword::prompt_password("Again: ").map_err(|e| usage(format!("password: {e}")))?,
        );
        if *first != *again {
            return Err(usage("the two passwords differ"));
        }
        first
    };
    Ok(Secret::new(text.as_str()))
}

fn add(args: &AddArgs, roles: &[Role]) -> Result<(), Failure> {
    // Check the cheap things before asking for a password.
    cardunlock_server::protocol::operator::check_operator_name(&args.name)
        .map_err(|e| usage(e.to_string()))?;
    let master = args.state.master()?;
    let password = password(args)?;
    let store = args.state.store()?;
    store.set_audit_key(&master)?;
    let uri = operator::create_operator(
        &store,
        &master,
        &Argon2Params::default(),
        &args.name,
        roles,
        &password,
    )?;
    let mut out = std::io::stdout().lock();
    let shown = (|| -> std::io::Result<()> {
        writeln!(out, "operator {} added", args.name)?;
        writeln!(
            out,
            "Scan this with the operator's authenticator app (shown once; it is the second factor):"
        )?;
        if let Some(qr) = totp::qr_text(uri.expose()) {
            writeln!(out, "{}", qr.as_str())?;
        }
        writeln!(out, "{}", uri.expose())
    })();
    shown.map_err(|e| usage(format!("standard output: {e}")))
}

fn audit_verify(state: &StateArgs, heads: &[String], archives: &[PathBuf]) -> Result<(), Failure> {
    let expected = heads
        .iter()
        .map(|h| ChainHead::parse(h))
        .collect::<Result<Vec<_>, _>>()?;
    let mut archived = Vec::new();
    for path in archives {
        archived.extend(cardunlock_server::audit_archive::archive_heads(path)?);
    }
    let master = state.master()?;
    let store = state.store()?;
    let report = store.verify_audit_archived(&master, &expected, &archived)?;
    for head in &report.chains {
        println!("head {}", head.to_text());
    }
    match report.problem {
        None => {
            println!(
                "audit chains verified: {} rows in {} chains",
                report.rows(),
                report.chains.len()
            );
            Ok(())
        }
        Some(problem) => Err(Failure {
            code: 3,
            message: format!("the audit chain does not verify: {problem}"),
        }),
    }
}

fn audit_archive(state: &StateArgs, before: &str, out: &std::path::Path) -> Result<(), Failure> {
    let before_ms = cardunlock_server::audit_archive::date_ms(before)?;
    let master = state.master()?;
    let store = state.store()?;
    let summary = cardunlock_server::audit_archive::archive(&store, &master, before_ms, out)?;
    println!("archived {} rows to {}", summary.rows, out.display());
    for head in &summary.heads {
        println!("head {}", head.to_text());
    }
    Ok(())
}

/// This host's name (Linux), else `-`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "-".into())
}

/// A new file only its owner can read (an audit export names cards and addresses).
fn private_file(path: &std::path::Path) -> Result<std::fs::File, Failure> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .map_err(|e| usage(format!("{}: {e}", path.display())))
}

fn audit_export(
    db: &DbArgs,
    format: cardunlock_server::audit_export::ExportFormat,
    out: Option<&std::path::Path>,
    hostname: Option<&str>,
) -> Result<(), Failure> {
    let store = db.store()?;
    let host = hostname.map_or_else(host_name, str::to_owned);
    let summary = match out {
        Some(path) => {
            let mut file = std::io::BufWriter::new(private_file(path)?);
            cardunlock_server::audit_export::export(&store, format, &host, &mut file)?
        }
        None => {
            let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
            cardunlock_server::audit_export::export(&store, format, &host, &mut stdout)?
        }
    };
    eprintln!(
        "exported {} audit rows and {} chain heads",
        summary.rows,
        summary.heads.len()
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Serve(args) => serve(args),
        Command::AddAdmin(args) => add(args, &[Role::Admin]),
        Command::AddOperator { add: args, roles } => add(args, roles),
        Command::Audit(AuditCommand::Verify {
            state,
            heads,
            archives,
        }) => audit_verify(state, heads, archives),
        Command::Audit(AuditCommand::Archive { state, before, out }) => {
            audit_archive(state, before, out)
        }
        Command::Audit(AuditCommand::Export {
            db,
            format,
            out,
            hostname,
        }) => audit_export(db, *format, out.as_deref(), hostname.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("cardunlock-server: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
