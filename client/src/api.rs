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
    CompleteReply, CompleteRequest, ErrorBody, Outcome, ProveReply, ProveRequest, PukReply,
    PukRequest, Secret, SessionToken, Signature, StartReply, StartRequest,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::failure::{Failure, Kind};

mod error;

pub use error::{ApiError, ReplyError, Unreachable};

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
    use cardunlock_protocol::ErrorCode;

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
