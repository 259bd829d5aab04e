//! Files that hold secrets: the master-secret file, the TLS key, the state directory and the
//! SQLite database, kept away from other users (Unix permissions; elsewhere nothing is checked).
//!
//! - The state directory is created 0700; an existing one that group or others can write to is
//!   refused (they could swap the certificate and key).
//! - The master-secret file, `server.key` and other secret files are read with
//!   [`cardunlock_protocol::files`]: refused when group or others can read them, when another
//!   user owns them, or when they are symbolic links (checked on the descriptor then read).
//! - The SQLite database (and its `-wal` / `-shm` files) is created 0600; an existing one open
//!   to group or others is set to 0600 (logged).

use std::path::Path;

use cardunlock_protocol::files::{read_checked_text, FileKind};

use crate::ServerError;

/// The permission bits of `path` (Unix), or `None` elsewhere.
#[cfg(unix)]
fn mode(path: &Path) -> Result<Option<u32>, ServerError> {
    use std::os::unix::fs::PermissionsExt;
    Ok(Some(std::fs::metadata(path)?.permissions().mode() & 0o777))
}

#[cfg(not(unix))]
fn mode(_: &Path) -> Result<Option<u32>, ServerError> {
    Ok(None)
}

/// Reads a secret from a text file (checked on the descriptor read: no symbolic link, owned
/// by this user or root, owner-only; refused with [`ServerError::Permissions`] otherwise); the
/// first line, without its line ending.
pub fn read_secret_file(
    path: &Path,
    what: &str,
) -> Result<zeroize::Zeroizing<String>, ServerError> {
    let text = read_checked_text(path, what, FileKind::Secret)?;
    let line = text.lines().next().unwrap_or("");
    Ok(zeroize::Zeroizing::new(line.to_owned()))
}

/// Creates the state directory 0700, or checks an existing one is not writable by others.
pub(crate) fn state_dir(path: &Path) -> Result<(), ServerError> {
    if !path.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(path)?;
        return Ok(());
    }
    match mode(path)? {
        Some(m) if m & 0o022 != 0 => Err(ServerError::Permissions(format!(
            "state directory {} can be written by other users (mode {m:03o}); run `chmod 700 {}`",
            path.display(),
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Makes the SQLite database file 0600 before SQLite opens it (SQLite gives its `-wal` and
/// `-shm` files the database's permissions); tightens an existing one open to others.
pub(crate) fn sqlite_file(path: &Path) -> Result<(), ServerError> {
    if path.as_os_str().is_empty() || path == Path::new(":memory:") {
        return Ok(());
    }
    if !path.exists() {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(path) {
            Ok(_) => return Ok(()),
            // Made meanwhile by another process: check it below.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
    }
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = Path::new(&file);
        if let Some(m) = mode(file).ok().flatten() {
            if m & 0o077 != 0 {
                log::warn!(
                    "{} was open to other users (mode {m:03o}): set to 600",
                    file.display()
                );
                std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn set(path: &Path, m: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap();
    }

    #[test]
    fn state_dir_is_made_private_and_a_writable_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/state");
        state_dir(&state).unwrap();
        assert_eq!(mode(&state).unwrap(), Some(0o700));
        set(&state, 0o755);
        assert!(
            state_dir(&state).is_ok(),
            "readable is fine: its key file is checked"
        );
        set(&state, 0o777);
        assert!(matches!(
            state_dir(&state),
            Err(ServerError::Permissions(_))
        ));
    }

    #[test]
    fn sqlite_files_are_made_or_set_0600() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sub/c.db");
        sqlite_file(&db).unwrap();
        assert_eq!(mode(&db).unwrap(), Some(0o600));
        set(&db, 0o644);
        let wal = dir.path().join("sub/c.db-wal");
        std::fs::write(&wal, b"").unwrap();
        set(&wal, 0o664);
        sqlite_file(&db).unwrap();
        assert_eq!(mode(&db).unwrap(), Some(0o600));
        assert_eq!(mode(&wal).unwrap(), Some(0o600));
    }
}
