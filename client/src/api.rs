//! The HTTPS client of the unlock server (`server/API.md`), pinned to the server's certificate.
//!
//! One method per endpoint; every request and reply is the shared contract's type
//! (`cardunlock-protocol`), so the client cannot drift from the server.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use cardunlock_protocol::body::extend_wiped;
use cardunlock_protocol::{
    paths, AdminAnswer, AdminBody, AdminRequest, AnswersReply, AnswersRequest, CardRef,
    CompleteReply, CompleteRequest, ErrorBody, ErrorCode, Outcome, ProveReply, ProveRequest,
    PukReply, PukRequest, Secret, SessionToken, Signature, StartReply, StartRequest,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::failure::{Failure, Kind};

/// Why the server did not give what was asked.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// No connection (refused, TLS failure, timeout).
    Unreachable(Unreachable),
    /// The server answered with a refusal (the contract's error body).
    Refused(ErrorBody),
    /// The exchange left the contract: the request would not encode, the reply would not read
    /// or parse.
    Protocol {
        /// What was asked (the endpoint's path, or "admin answer").
        what: String,
        /// An HTTP error status that came without the contract's error body.
        status: Option<u16>,
        /// What went wrong.
        error: ReplyError,
    },
}

/// No connection to the server: its URL and the transport's error (kept as the source).
#[derive(Debug, Clone)]
pub struct Unreachable {
    /// The URL asked.
    pub url: String,
    source: Arc<dyn std::error::Error + Send + Sync>,
}

impl Unreachable {
    /// `url` could not be reached because of `source`.
    pub fn new(
        url: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            url: url.into(),
            source: Arc::new(source),
        }
    }
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.source, self.url)
    }
}

impl std::error::Error for Unreachable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// How an exchange left the contract. Never holds what the reply said: it may be a secret.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ReplyError {
    /// The request did not encode as JSON.
    Encode(Arc<serde_json::Error>),
    /// The reply could not be read.
    Read(Arc<std::io::Error>),
    /// The reply is not the contract's JSON: where, never what.
    OffContract {
        /// What kind of JSON error (read, syntax, data or truncation).
        category: &'static str,
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
    },
    /// The admin answer is not hex.
    AdminAnswer(crate::hex::HexError),
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Encode(e) => write!(f, "encoding the request: {e}"),
            Self::Read(e) => write!(f, "reading the reply: {e}"),
            Self::OffContract {
                category,
                line,
                column,
            } => write!(
                f,
                "the reply does not follow the contract ({category} error at line {line}, \
                 column {column})"
            ),
            Self::AdminAnswer(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ReplyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Encode(e) => Some(&**e),
            Self::Read(e) => Some(&**e),
            Self::OffContract { .. } => None,
            Self::AdminAnswer(e) => Some(e),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(e) => write!(f, "unlock server: cannot reach it: {e}"),
            Self::Refused(body) if body.message.is_empty() => {
                write!(f, "unlock server: it refused ({})", body.error)
            }
            Self::Refused(body) => write!(f, "unlock server: {}", body.message),
            Self::Protocol {
                what,
                status: None,
                error,
            } => write!(f, "unlock server: unexpected answer: {what}: {error}"),
            Self::Protocol {
                what,
                status: Some(status),
                error,
            } => write!(
                f,
                "unlock server: unexpected answer: {what}: HTTP {status} without an error body \
                 ({error})"
            ),
        }
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unreachable(e) => Some(e),
            Self::Refused(_) => None,
            Self::Protocol { error, .. } => Some(error),
        }
    }
}

impl ApiError {
    /// The failure this error means for the unlock (the card was not touched by it).
    pub fn failure(&self) -> Failure {
        let kind = match self {
            Self::Unreachable(_) | Self::Protocol { .. } => Kind::Server,
            Self::Refused(body) => match body.error {
                ErrorCode::Locked => Kind::Locked,
                ErrorCode::NoQuestions | ErrorCode::CardNotVerified => Kind::NoQuestions,
                ErrorCode::WrongAnswers => Kind::WrongAnswers {
                    attempts_left: body.attempts_left.unwrap_or(0),
                },
                ErrorCode::InternalError | ErrorCode::Unavailable | ErrorCode::TooManyRequests => {
                    Kind::Server
                }
                ErrorCode::Unauthorized => Kind::Unauthorized,
                _ => Kind::Refused,
            },
        };
        Failure::new(kind, self.to_string()).caused_by(self.clone())
    }

    /// The contract's error code, when the server answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Refused(body) => Some(body.error),
            _ => None,
        }
    }
}

/// The HTTP methods of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    /// Reads.
    Get,
    /// Creates or acts.
    Post,
    /// Ends (the operator's sign-out).
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Delete => "DELETE",
        }
    }
}

/// HTTPS client for the unlock server, pinned to the server's certificate (https:// only).
pub struct Api {
    agent: ureq::Agent,
    base: String,
}

impl Api {
    /// A client for `base_url` (`https://host:port`) trusting only `pinned_cert_pem`.
    ///
    /// `http://` is refused: the pinned certificate is what protects the answers and the PUK.
    pub fn new(base_url: &str, pinned_cert_pem: &str) -> Result<Api, Failure> {
        let base = base_url.trim().trim_end_matches('/');
        let lower = base.to_ascii_lowercase();
        if lower.starts_with("http://") {
            return Err(Failure::usage(
                "--server",
                format!(
                    "{base} is plain HTTP; the server's certificate is pinned, which needs \
                     https:// (the answers and the PUK never travel unencrypted)"
                ),
            ));
        }
        if !lower.starts_with("https://") || base.len() <= "https://".len() {
            return Err(Failure::usage(
                "--server",
                format!("{base:?} is not a server URL: give https://host:port"),
            ));
        }
        let tls = cardunlock_protocol::pinned_client_config(pinned_cert_pem)
            .map_err(|e| Failure::usage("server certificate", e))?;
        let agent = ureq::AgentBuilder::new()
            .tls_config(tls)
            .timeout_connect(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build();
        Ok(Self {
            agent,
            base: base.to_string(),
        })
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// POSTs `body` and parses the reply. Both go through buffers wiped afterwards (requests
    /// carry answers and the session token, replies PUKs and admin answers).
    fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, ApiError> {
        self.call(Method::Post, path, None, Some(body))
    }

    /// Sends one request of the contract and parses the reply: `body` (if any) as JSON, the
    /// operator's session token (if any) as `Authorization: Bearer`. Request and reply go
    /// through buffers wiped afterwards (they carry passwords, tokens, PUKs, keys).
    pub(crate) fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&SessionToken>,
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.request(method.as_str(), &url);
        // ureq keeps its own copy of the header; this one is wiped.
        let authorization = bearer.map(|t| Zeroizing::new(format!("Bearer {}", t.expose())));
        if let Some(value) = &authorization {
            request = request.set("Authorization", value);
        }
        let sent = match body {
            Some(body) => {
                let bytes =
                    Zeroizing::new(serde_json::to_vec(body).map_err(|e| ApiError::Protocol {
                        what: path.to_owned(),
                        status: None,
                        error: ReplyError::Encode(Arc::new(e)),
                    })?);
                request
                    .set("Content-Type", "application/json")
                    .send_bytes(&bytes)
            }
            None => request.call(),
        };
        match sent {
            Ok(resp) => read_reply(resp)
                .and_then(|body| parse_reply(&body))
                .map_err(|error| ApiError::Protocol {
                    what: path.to_owned(),
                    status: None,
                    error,
                }),
            Err(ureq::Error::Status(status, resp)) => {
                match read_reply(resp).and_then(|body| parse_reply::<ErrorBody>(&body)) {
                    Ok(body) => Err(ApiError::Refused(body)),
                    Err(error) => Err(ApiError::Protocol {
                        what: path.to_owned(),
                        status: Some(status),
                        error,
                    }),
                }
            }
            Err(ureq::Error::Transport(t)) => Err(ApiError::Unreachable(Unreachable::new(url, t))),
        }
    }

    /// `start`: a session for `card` (questions, attempts left, PIN policy).
    pub fn start(&self, card: CardRef) -> Result<StartReply, ApiError> {
        self.post(paths::START, &StartRequest { card })
    }

    /// `prove` (PIV): the card's signature of the session's nonce (DER, hex); the questions
    /// once it verifies.
    pub fn prove(
        &self,
        session: &SessionToken,
        signature: Signature,
    ) -> Result<ProveReply, ApiError> {
        self.post(
            paths::PROVE,
            &ProveRequest {
                session: session.clone(),
                signature,
            },
        )
    }

    /// `answers`: the answers, in question order; the user once they are verified.
    pub fn answers(
        &self,
        session: &SessionToken,
        answers: &[Zeroizing<String>],
    ) -> Result<AnswersReply, ApiError> {
        let request = AnswersRequest {
            session: session.clone(),
            answers: answers.iter().map(|a| Secret::new(a.as_str())).collect(),
        };
        self.post(paths::ANSWERS, &request)
    }

    /// `admin`: the server's answer (bytes) to an admin request.
    pub fn admin(
        &self,
        session: &SessionToken,
        request: AdminRequest,
    ) -> Result<Zeroizing<Vec<u8>>, ApiError> {
        let body = AdminBody {
            session: session.clone(),
            request,
        };
        let a: AdminAnswer = self.post(paths::ADMIN, &body)?;
        crate::hex::parse(a.answer.expose())
            .map(Zeroizing::new)
            .map_err(|e| ApiError::Protocol {
                what: "admin answer".into(),
                status: None,
                error: ReplyError::AdminAnswer(e),
            })
    }

    /// `puk` (PIV): the PUK candidates and the next PUK. `puk_tries_left`: what the card
    /// reported, so the server never releases more candidates than the card can take.
    pub fn puk(
        &self,
        session: &SessionToken,
        puk_tries_left: Option<u32>,
    ) -> Result<PukReply, ApiError> {
        let request = PukRequest {
            session: session.clone(),
            puk_tries_left,
        };
        self.post(paths::PUK, &request)
    }

    /// `complete`: the outcome, and whether the PUK was rotated.
    pub fn complete(
        &self,
        session: &SessionToken,
        unlocked: bool,
        puk_rotated: bool,
        puk_rejected: u32,
        detail: &str,
    ) -> Result<(), ApiError> {
        let request = CompleteRequest {
            session: session.clone(),
            outcome: if unlocked {
                Outcome::Unlocked
            } else {
                Outcome::Failed
            },
            puk_rotated,
            detail: detail.into(),
            puk_rejected,
        };
        let _: CompleteReply = self.post(paths::COMPLETE, &request)?;
        Ok(())
    }
}

/// Reads a pinned certificate file (the server's certificate or its private CA's), checked on
/// the descriptor read: no symbolic link, a regular file owned by this user or root, not
/// writable by group or others (whoever can write it chooses the server the workstation
/// trusts).
pub fn read_cert(path: &std::path::Path) -> Result<String, Failure> {
    use cardunlock_protocol::files::{read_checked_text, FileKind};
    read_checked_text(path, "server certificate", FileKind::Trusted)
        .map(|text| text.as_str().to_owned())
        .map_err(|e| Failure::new(Kind::Usage, e.to_string()))
}

/// The longest reply read, in bytes (the contract's replies are a few hundred).
const MAX_REPLY: u64 = 1 << 20;

/// Reads a reply body into a buffer wiped when dropped (and when it grows).
fn read_reply(resp: ureq::Response) -> Result<Zeroizing<Vec<u8>>, ReplyError> {
    let mut body = Zeroizing::new(Vec::new());
    let mut chunk = Zeroizing::new([0u8; 1024]);
    let mut reader = resp.into_reader().take(MAX_REPLY);
    loop {
        match reader.read(&mut chunk[..]) {
            Ok(0) => return Ok(body),
            Ok(n) => extend_wiped(&mut body, &chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReplyError::Read(Arc::new(e))),
        }
    }
}

/// Parses a reply. The error names where the reply left the contract, never what it held:
/// serde_json's own message quotes the offending value, which can be a PUK.
fn parse_reply<T: DeserializeOwned>(body: &[u8]) -> Result<T, ReplyError> {
    serde_json::from_slice(body).map_err(|e| ReplyError::OffContract {
        category: json_category(e.classify()),
        line: e.line(),
        column: e.column(),
    })
}

/// What kind of JSON error, in words (never the offending text: it may be a secret).
pub(crate) fn json_category(c: serde_json::error::Category) -> &'static str {
    use serde_json::error::Category;
    match c {
        Category::Io => "read",
        Category::Syntax => "syntax",
        Category::Data => "data",
        Category::Eof => "truncation",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_off_the_contract_is_refused_without_quoting_it() {
        // A PUK where a list of PUKs belongs: serde_json's message would quote it.
        let body = br#"{"puk_candidates":"87654321","next_puk":"11223344","tries_left":3}"#;
        let raw = serde_json::from_slice::<PukReply>(body)
            .map(|_| ())
            .unwrap_err();
        assert!(
            raw.to_string().contains("87654321"),
            "the check below must mean something"
        );
        let e = parse_reply::<PukReply>(body)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not follow the contract"), "{e}");
        assert!(!e.contains("87654321") && !e.contains("11223344"), "{e}");
        let ok: PukReply =
            parse_reply(br#"{"puk_candidates":["87654321"],"next_puk":"11223344","tries_left":3}"#)
                .unwrap();
        assert_eq!(ok.tries_left, 3);
    }

    #[test]
    fn plain_http_and_nonsense_urls_are_refused_before_any_connection() {
        let e = Api::new("http://127.0.0.1:8443", "").err().unwrap();
        assert_eq!(e.kind, Kind::Usage);
        assert!(e.message.starts_with("--server: "), "{e}");
        assert!(e.message.contains("https://"), "{e}");
        let e = Api::new("HTTP://host", "").err().unwrap();
        assert_eq!(e.kind, Kind::Usage);
        let e = Api::new("ftp://host", "").err().unwrap();
        assert!(e.message.contains("https://host:port"), "{e}");
        // https with a certificate that is not PEM: the certificate is named.
        let e = Api::new("https://127.0.0.1:1", "not a pem").err().unwrap();
        assert!(e.message.starts_with("server certificate"), "{e}");
    }

    /// Proves the pinned certificate is checked before it is trusted: a file others can write
    /// (they would choose the server) is refused, one only its owner writes is read.
    #[cfg(unix)]
    #[test]
    fn a_pinned_certificate_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.crt");
        std::fs::write(&path, "-----BEGIN CERTIFICATE-----\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = read_cert(&path).unwrap_err();
        assert_eq!(e.kind, Kind::Usage);
        assert!(e.message.contains("can be written by other users"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_cert(&path).unwrap().starts_with("-----BEGIN"));
    }

    #[test]
    fn refusals_map_to_kinds() {
        let mut body = ErrorBody::new(ErrorCode::WrongAnswers, "The answers are not correct.");
        body.attempts_left = Some(2);
        let f = ApiError::Refused(body).failure();
        assert_eq!(f.kind, Kind::WrongAnswers { attempts_left: 2 });
        assert_eq!(f.exit_code(), 1);
        let f = ApiError::Refused(ErrorBody::new(ErrorCode::Locked, "locked")).failure();
        assert_eq!(f.kind, Kind::Locked);
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let f = ApiError::Unreachable(Unreachable::new("https://h:1", refused)).failure();
        assert_eq!((f.kind.clone(), f.exit_code()), (Kind::Server, 6));
    }

    /// Proves a failure keeps the error under it: removing `caused_by` in
    /// [`ApiError::failure`] (or the sources here) breaks the chain this walks.
    #[test]
    fn failures_keep_their_source() {
        use std::error::Error as _;
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let f = ApiError::Unreachable(Unreachable::new("https://h:1", refused)).failure();
        let api = f.source().unwrap();
        assert!(
            api.to_string()
                .starts_with("unlock server: cannot reach it"),
            "{api}"
        );
        let unreachable = api.source().unwrap();
        let io = unreachable.source().unwrap();
        assert_eq!(io.to_string(), "refused");
        let f = ApiError::Refused(ErrorBody::new(ErrorCode::Locked, "locked")).failure();
        assert!(f.source().unwrap().source().is_none());
    }
}
