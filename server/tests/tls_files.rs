//! The server's certificate and key from files (`serve --tls-cert --tls-key`): several
//! instances with one identity that one pinned certificate reaches, and a certificate issued by
//! a private CA that the workstations pin (its name checked).

mod common;

use std::path::{Path, PathBuf};

use cardunlock_client::api::{read_cert, Api};
use cardunlock_server::protocol::{CardRef, Profile};
use cardunlock_server::{Server, ServerError, TlsFiles};
use common::*;

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = mode;
}

/// Writes `cert.pem` (0644) and `key.pem` (0600) under `dir`, named `name`.
fn files(dir: &Path, name: &str, cert_pem: &str, key_pem: &str) -> TlsFiles {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    write(&cert, cert_pem, 0o644);
    write(&key, key_pem, 0o600);
    TlsFiles { cert, key }
}

/// A private CA and a function issuing server certificates for given names.
struct Ca {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Ca {
    fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "cardunlock test CA");
        let issuer =
            rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
                .unwrap();
        Self { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// (certificate chain PEM: leaf then CA, key PEM) for `names`.
    fn issue(&self, names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = rcgen::CertificateParams::new(names).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &*self.issuer).unwrap();
        (format!("{}{}", cert.pem(), self.pem()), key.serialize_pem())
    }
}

/// The workstation's view: the pinned file read as the CLI reads it, then one request.
/// `Ok` when the TLS handshake passed (whatever the server answered), `Err` with the
/// transport error otherwise.
fn reach(pinned: &Path, url: &str) -> Result<(), String> {
    let api = Api::new(url, &read_cert(pinned).map_err(|f| f.message)?).unwrap();
    let card = CardRef {
        profile: Profile::Iso,
        identity: "0011223344".parse().unwrap(),
    };
    match api.start(card) {
        Ok(_) | Err(cardunlock_client::api::ApiError::Refused(_)) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

fn with_files(dir: &Path, tls: TlsFiles) -> cardunlock_server::Config {
    let mut config = config(dir);
    config.tls_files = Some(tls);
    config
}

/// Proves one identity for several instances: two servers on one store, each with its own
/// state directory but the same certificate and key files, are both reached by a workstation
/// pinning that one certificate, and neither made a certificate of its own.
#[test]
fn two_instances_share_one_certificate_a_workstation_pins() {
    let dir = tempfile::tempdir().unwrap();
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let tls = files(
        dir.path(),
        "shared",
        &made.cert.pem(),
        &made.signing_key.serialize_pem(),
    );
    let mut config = with_files(dir.path(), tls.clone());
    let a = Server::spawn(config.clone()).unwrap();
    config.state_dir = dir.path().join("state-b");
    let b = Server::spawn(config).unwrap();
    assert_eq!(a.cert_pem(), b.cert_pem());
    assert_eq!(a.cert_path(), tls.cert.as_path());
    for server in [&a, &b] {
        reach(&tls.cert, &server.url()).unwrap();
    }
    assert!(!dir.path().join("state/server.key").exists());
    assert!(!dir.path().join("state-b/server.key").exists());
    // A server with an identity of its own is not reached by the shared pin.
    let own = Server::spawn(config_in(dir.path(), "own")).unwrap();
    let e = reach(&tls.cert, &own.url()).unwrap_err();
    assert!(e.contains("cannot reach"), "{e}");
}

fn config_in(dir: &Path, name: &str) -> cardunlock_server::Config {
    let mut c = config(dir);
    c.state_dir = dir.join(name);
    c
}

/// Proves CA pinning checks the chain and the name: a certificate the pinned CA issued for
/// this host passes; one it issued for another name, and one it did not issue, are refused.
#[test]
fn a_pinned_ca_accepts_what_it_issued_for_this_host_only() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let ca_path: PathBuf = dir.path().join("ca.pem");
    write(&ca_path, &ca.pem(), 0o644);

    let (chain, key) = ca.issue(&["localhost", "127.0.0.1"]);
    let good = Server::spawn(with_files(
        dir.path(),
        files(dir.path(), "good", &chain, &key),
    ))
    .unwrap();
    reach(&ca_path, &good.url()).unwrap();

    let (chain, key) = ca.issue(&["unlock.other.example"]);
    let mut config = with_files(dir.path(), files(dir.path(), "other", &chain, &key));
    config.state_dir = dir.path().join("state-other");
    let other = Server::spawn(config).unwrap();
    let e = reach(&ca_path, &other.url()).unwrap_err();
    assert!(e.contains("cannot reach"), "{e}");

    let stranger = Ca::new();
    let (chain, key) = stranger.issue(&["localhost", "127.0.0.1"]);
    let mut config = with_files(dir.path(), files(dir.path(), "stranger", &chain, &key));
    config.state_dir = dir.path().join("state-stranger");
    let foreign = Server::spawn(config).unwrap();
    let e = reach(&ca_path, &foreign.url()).unwrap_err();
    assert!(e.contains("cannot reach"), "{e}");
}

/// Proves the files are checked before serving: a key that is not the certificate's, a key
/// others can read, and a certificate others can write are each refused at start.
#[test]
fn mismatched_or_exposed_files_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let one = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let two = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let tls = files(
        dir.path(),
        "mixed",
        &one.cert.pem(),
        &two.signing_key.serialize_pem(),
    );
    let e = Server::spawn(with_files(dir.path(), tls)).err().unwrap();
    assert!(
        matches!(&e, ServerError::Tls(m) if m.to_string().contains("do not go together")),
        "{e}"
    );
    #[cfg(unix)]
    {
        let tls = files(
            dir.path(),
            "open",
            &one.cert.pem(),
            &one.signing_key.serialize_pem(),
        );
        write(&tls.key, &one.signing_key.serialize_pem(), 0o644);
        let e = Server::spawn(with_files(dir.path(), tls.clone()))
            .err()
            .unwrap();
        assert!(
            matches!(&e, ServerError::Permissions(m) if m.contains("chmod 600")),
            "{e}"
        );
        write(&tls.key, &one.signing_key.serialize_pem(), 0o600);
        write(&tls.cert, &one.cert.pem(), 0o664);
        let e = Server::spawn(with_files(dir.path(), tls.clone()))
            .err()
            .unwrap();
        assert!(matches!(&e, ServerError::Permissions(_)), "{e}");
        write(&tls.cert, &one.cert.pem(), 0o644);
        assert!(Server::spawn(with_files(dir.path(), tls)).is_ok());
    }
}
