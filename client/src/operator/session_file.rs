//! The operator's session kept between commands: one owner-only file (mode 0600 on Unix) in
//! the user's state directory holding the server's URL, the operator's name and the bearer
//! token, so several commands reuse one sign-in. A file others can read is refused (and never
//! written); signing out deletes it. The token is only ever sent to the server it came from.

use std::io::Write;
use std::path::{Path, PathBuf};

use cardunlock_protocol::SessionToken;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::failure::{Failure, Kind};

/// The file's name in the state directory.
pub const FILE_NAME: &str = "operator-session.json";

/// A kept session: where it is valid, whose it is, the token.
#[derive(Serialize, Deserialize)]
pub struct Saved {
    /// The server's base URL (`https://host:port`) the token belongs to.
    pub server: String,
    /// The operator's name.
    pub operator: String,
    /// The bearer token.
    pub token: SessionToken,
}

impl std::fmt::Debug for Saved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Saved")
            .field("server", &self.server)
            .field("operator", &self.operator)
            .field("token", &self.token)
            .finish()
    }
}

/// The user's state directory for cardunlock: `$CARDUNLOCK_STATE_DIR`, else
/// `$XDG_STATE_HOME/cardunlock`, else `~/.local/state/cardunlock` (Windows:
/// `%LOCALAPPDATA%\cardunlock`).
pub fn state_dir() -> Result<PathBuf, Failure> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("CARDUNLOCK_STATE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = var("XDG_STATE_HOME") {
        return Ok(PathBuf::from(dir).join("cardunlock"));
    }
    if cfg!(windows) {
        if let Some(dir) = var("LOCALAPPDATA") {
            return Ok(PathBuf::from(dir).join("cardunlock"));
        }
    }
    var("HOME")
        .map(|home| PathBuf::from(home).join(".local/state/cardunlock"))
        .ok_or_else(|| {
            Failure::usage(
                "operator session",
                "no state directory: set $CARDUNLOCK_STATE_DIR or $HOME",
            )
        })
}

/// The session file in the user's state directory.
pub fn default_path() -> Result<PathBuf, Failure> {
    Ok(state_dir()?.join(FILE_NAME))
}

fn io_failure(path: &Path, what: &str, e: std::io::Error) -> Failure {
    Failure::usage(
        &format!("operator session {}", path.display()),
        format!("{what}: {e}"),
    )
}

/// Writes `saved` to `path`, owner-only (0600 from creation on Unix, never readable by others
/// in between), replacing what was there.
pub fn save(path: &Path, saved: &Saved) -> Result<(), Failure> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir).map_err(|e| io_failure(dir, "creating the directory", e))?;
    }
    let json = Zeroizing::new(
        serde_json::to_vec(saved)
            .map_err(|e| Failure::new(Kind::Usage, format!("operator session: {e}")))?,
    );
    // A fresh file each time: an existing one might have been made with wider permissions.
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_failure(path, "replacing it", e)),
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| io_failure(path, "creating it", e))?;
    file.write_all(&json)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_failure(path, "writing it", e))
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// The session kept at `path` for `server`, if any: `None` when there is no file or it belongs
/// to another server. A file others can read or that does not parse is an error (named, never
/// quoted).
pub fn load(path: &Path, server: &str) -> Result<Option<Saved>, Failure> {
    use cardunlock_protocol::files::{read_checked, FileError, FileKind};
    let what = "operator session";
    let text = match read_checked(path, what, FileKind::Secret) {
        Ok(bytes) => bytes,
        Err(FileError::Missing(_)) => return Ok(None),
        Err(FileError::Permissions(e)) => {
            return Err(Failure::new(
                Kind::Usage,
                format!("{e}; or delete it and sign in again"),
            ))
        }
        Err(e) => return Err(Failure::new(Kind::Usage, e.to_string())),
    };
    let saved: Saved = serde_json::from_slice(&text).map_err(|e| {
        Failure::usage(
            &format!("operator session {}", path.display()),
            format!(
                "it is not a saved session ({} error at line {}): delete it and sign in again",
                crate::api::json_category(e.classify()),
                e.line()
            ),
        )
    })?;
    Ok((saved.server == server.trim().trim_end_matches('/')).then_some(saved))
}

/// Deletes the kept session (no file: nothing to do).
pub fn delete(path: &Path) -> Result<(), Failure> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_failure(path, "deleting it", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(server: &str) -> Saved {
        Saved {
            server: server.into(),
            operator: "alice".into(),
            token: SessionToken::new("ab".repeat(32)),
        }
    }

    #[test]
    fn saved_owner_only_loaded_for_its_server_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/cardunlock").join(FILE_NAME);
        save(&path, &saved("https://127.0.0.1:8443")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let dir_mode = std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(dir_mode & 0o077, 0);
        }
        let back = load(&path, "https://127.0.0.1:8443/").unwrap().unwrap();
        assert_eq!(back.operator, "alice");
        assert_eq!(back.token.expose(), "ab".repeat(32));
        // Another server never gets this token.
        assert!(load(&path, "https://10.0.0.1:8443").unwrap().is_none());
        delete(&path).unwrap();
        assert!(!path.exists());
        assert!(load(&path, "https://127.0.0.1:8443").unwrap().is_none());
        delete(&path).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_read_is_refused_and_replaced_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let json = serde_json::to_vec(&saved("https://h:1")).unwrap();
        std::fs::write(&path, json).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load(&path, "https://h:1").unwrap_err();
        assert!(e.message.contains("open to other users"), "{e}");
        assert!(!e.message.contains("abab"), "{e}");
        save(&path, &saved("https://h:1")).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(load(&path, "https://h:1").unwrap().is_some());
    }

    #[test]
    fn a_damaged_file_is_named_not_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        save(&path, &saved("https://h:1")).unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.truncate(text.len() - 3);
        std::fs::write(&path, &text).unwrap();
        let e = load(&path, "https://h:1").unwrap_err();
        assert!(e.message.contains("not a saved session"), "{e}");
        assert!(!e.message.contains("abab"), "{e}");
        let shown = format!("{:?}", saved("https://h:1"));
        assert!(!shown.contains("abab"), "{shown}");
    }
}
