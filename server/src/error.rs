//! The server's error type. No variant carries a secret: messages name what was wrong, never
//! the value.

use std::fmt;

/// What went wrong in the server, its store or its setup.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerError {
    /// No card is enrolled under this profile and identity.
    UnknownCard,
    /// An input was refused; the text says which and why (never its value if it is secret).
    InvalidInput(String),
    /// The master secret is missing, badly encoded or shorter than 32 bytes.
    MasterSecret(&'static str),
    /// The SQLite database failed.
    Database(rusqlite::Error),
    /// The PostgreSQL database refused a statement.
    #[cfg(feature = "postgres")]
    Postgres(postgres::Error),
    /// The database cannot be reached: down at start, restarting, or the connection was lost
    /// mid-request (the request failed closed: nothing it would have changed was committed).
    DatabaseUnavailable(String),
    /// The database was written by a newer version of this crate (SQLite's `user_version`,
    /// PostgreSQL's `cardunlock_schema.version`).
    SchemaVersion(i64),
    /// Reading or writing a file or socket failed.
    Io(std::io::Error),
    /// Making, loading or using the TLS certificate or configuration failed.
    Tls(TlsError),
    /// Hashing an answer failed (Argon2 parameters out of range, ...).
    Hash(String),
    /// The operating system's random generator failed.
    Random,
    /// The server's runtime or its thread failed.
    Runtime(String),
    /// A secret file or directory is open to other users; the text names it and the fix.
    Permissions(String),
    /// A store row failed its MAC or contradicts the audit log: the database was written
    /// outside the server. The request is refused (500) and an alert raised; the text names
    /// the table, never a value.
    Tampered(String),
}

/// A TLS failure: what was being done (which file, which step) and, when there was one, the
/// error under it, which [`std::error::Error::source`] returns.
#[derive(Debug)]
pub struct TlsError {
    what: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl TlsError {
    /// A failure described by `what` alone.
    pub fn new(what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            source: None,
        }
    }

    /// `what` failed because of `source`.
    pub fn caused_by(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            what: what.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(e) => write!(f, "{}: {e}", self.what),
            None => f.write_str(&self.what),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<TlsError> for ServerError {
    fn from(e: TlsError) -> Self {
        Self::Tls(e)
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownCard => f.write_str("no card is enrolled with this profile and identity"),
            Self::InvalidInput(what) => write!(f, "invalid input: {what}"),
            Self::MasterSecret(why) => write!(f, "master secret: {why}"),
            Self::Database(e) => write!(f, "database: {e}"),
            #[cfg(feature = "postgres")]
            Self::Postgres(e) => write!(f, "database: {e}"),
            Self::DatabaseUnavailable(why) => write!(f, "database unavailable: {why}"),
            Self::SchemaVersion(v) => write!(
                f,
                "database schema version {v} is newer than this server understands"
            ),
            Self::Io(e) => write!(f, "I/O: {e}"),
            Self::Tls(e) => write!(f, "TLS: {e}"),
            Self::Hash(why) => write!(f, "answer hashing: {why}"),
            Self::Random => f.write_str("the operating system's random generator failed"),
            Self::Runtime(why) => write!(f, "server runtime: {why}"),
            Self::Permissions(why) => write!(f, "insecure permissions: {why}"),
            Self::Tampered(why) => write!(f, "store integrity: {why}"),
        }
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Database(e) => Some(e),
            #[cfg(feature = "postgres")]
            Self::Postgres(e) => Some(e),
            Self::Io(e) => Some(e),
            Self::Tls(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for ServerError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Database(e)
    }
}

impl From<cardunlock_protocol::files::FileError> for ServerError {
    fn from(e: cardunlock_protocol::files::FileError) -> Self {
        use cardunlock_protocol::files::FileError;
        match e {
            FileError::Permissions(m) => Self::Permissions(m),
            FileError::Missing(m) | FileError::Io(m) | FileError::TooLarge(m) => {
                Self::InvalidInput(m)
            }
        }
    }
}

impl From<std::io::Error> for ServerError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}
