//! Reading the files both sides trust: secrets (the master secret, TLS keys, passwords) and
//! pinned certificates, checked on the descriptor that is then read.
//!
//! On Unix the file is opened with `O_NOFOLLOW` (a symbolic link in the last component is
//! refused), then `fstat` on that descriptor checks it is a regular file owned by the current
//! user or root, and its mode: a [`FileKind::Secret`] must be owner-only (no group or other
//! bits), a [`FileKind::Trusted`] file (a pinned certificate) may be readable by others but
//! not writable by group or others. The same descriptor is read afterwards, so the file checked
//! is the file read (no window to swap it). Elsewhere the file is only read.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use zeroize::Zeroizing;

/// What a file holds, which sets the checks ([module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A secret: owner-only (mode `0600` or `0400`).
    Secret,
    /// Trusted but not secret (a pinned certificate): not writable by group or others.
    Trusted,
}

/// Why a checked file was not read. Its text names the file, never its content.
#[derive(Debug)]
pub enum FileError {
    /// There is no such file.
    Missing(String),
    /// The file could not be opened or read (including a symbolic link, refused).
    Io(String),
    /// The file's owner, type or mode is refused; the text says how to fix it.
    Permissions(String),
    /// Larger than the caller accepts.
    TooLarge(String),
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(m) | Self::Io(m) | Self::Permissions(m) | Self::TooLarge(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for FileError {}

/// The largest file [`read_checked`] reads (1 MiB: keys, certificates and secrets are small).
pub const MAX_FILE: u64 = 1 << 20;

/// Opens `path` (`what` and the path name it in errors; the path alone if `what` is empty),
/// checks it as `kind` demands on the open
/// descriptor, and reads it into a buffer wiped on drop.
pub fn read_checked(
    path: &Path,
    what: &str,
    kind: FileKind,
) -> Result<Zeroizing<Vec<u8>>, FileError> {
    let named = named(what, path);
    let file = open_checked(path, what, kind)?;
    let mut content = Zeroizing::new(Vec::new());
    let mut chunk = Zeroizing::new([0u8; 4096]);
    let mut reader = file.take(MAX_FILE + 1);
    loop {
        match reader.read(&mut chunk[..]) {
            Ok(0) => break,
            Ok(n) => crate::body::extend_wiped(&mut content, &chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FileError::Io(format!("{named}: {e}"))),
        }
    }
    if content.len() as u64 > MAX_FILE {
        return Err(FileError::TooLarge(format!(
            "{named} is larger than {MAX_FILE} bytes"
        )));
    }
    Ok(content)
}

/// [`read_checked`] for a text file: its content as UTF-8.
pub fn read_checked_text(
    path: &Path,
    what: &str,
    kind: FileKind,
) -> Result<Zeroizing<String>, FileError> {
    let bytes = read_checked(path, what, kind)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| FileError::Io(format!("{}: not UTF-8 text", named(what, path))))?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// `what` and the path, for messages (the path alone when `what` is empty).
fn named(what: &str, path: &Path) -> String {
    if what.is_empty() {
        path.display().to_string()
    } else {
        format!("{what} {}", path.display())
    }
}

#[cfg(unix)]
fn open_checked(path: &Path, what: &str, kind: FileKind) -> Result<File, FileError> {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::fs::OpenOptionsExt;
    let shown = path.display();
    let named = named(what, path);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                FileError::Missing(format!("{named}: {e}"))
            } else if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                FileError::Io(format!(
                    "{named} is a symbolic link: give the file it points to"
                ))
            } else {
                FileError::Io(format!("{named}: {e}"))
            }
        })?;
    // fstat of the descriptor just opened: what is checked is what is read.
    let meta = file
        .metadata()
        .map_err(|e| FileError::Io(format!("{named}: {e}")))?;
    if !meta.is_file() {
        return Err(FileError::Permissions(format!(
            "{named} is not a regular file"
        )));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(FileError::Permissions(format!(
            "{named} belongs to another user (uid {}); it must belong to this user \
             (uid {me}) or root: run `chown {me} {shown}`",
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o777;
    match kind {
        FileKind::Secret if mode & 0o077 != 0 => Err(FileError::Permissions(format!(
            "{named} is open to other users (mode {mode:03o}); run `chmod 600 {shown}`"
        ))),
        FileKind::Trusted if mode & 0o022 != 0 => Err(FileError::Permissions(format!(
            "{named} can be written by other users (mode {mode:03o}); run \
             `chmod 644 {shown}`"
        ))),
        _ => Ok(file),
    }
}

#[cfg(not(unix))]
fn open_checked(path: &Path, what: &str, _kind: FileKind) -> Result<File, FileError> {
    File::open(path).map_err(|e| {
        let text = format!("{}: {e}", named(what, path));
        if e.kind() == std::io::ErrorKind::NotFound {
            FileError::Missing(text)
        } else {
            FileError::Io(text)
        }
    })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn set(path: &Path, m: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap();
    }

    /// Proves the mode checks: a secret open to group or others and a trusted file writable by
    /// them are refused with the fix; owner-only and read-only-for-others pass.
    #[test]
    fn modes_are_checked_by_kind() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"content").unwrap();
        for (m, secret_ok, trusted_ok) in [
            (0o600, true, true),
            (0o400, true, true),
            (0o640, false, true),
            (0o644, false, true),
            (0o604, false, true),
            (0o660, false, false),
            (0o602, false, false),
        ] {
            set(&f, m);
            let s = read_checked(&f, "key", FileKind::Secret);
            assert_eq!(s.is_ok(), secret_ok, "{m:03o}");
            if let Err(e) = s {
                let e = e.to_string();
                assert!(
                    e.contains("chmod 600") && e.contains(&format!("{m:03o}")),
                    "{e}"
                );
            }
            let t = read_checked(&f, "certificate", FileKind::Trusted);
            assert_eq!(t.is_ok(), trusted_ok, "{m:03o}");
            if let Ok(content) = t {
                assert_eq!(&content[..], b"content");
            }
        }
    }

    /// Proves O_NOFOLLOW: a symbolic link to a good file is refused, for both kinds.
    #[test]
    fn a_symbolic_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        set(&f, 0o600);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        for kind in [FileKind::Secret, FileKind::Trusted] {
            let e = read_checked(&link, "key", kind).unwrap_err().to_string();
            assert!(e.contains("symbolic link"), "{e}");
        }
        assert!(read_checked(&f, "key", FileKind::Secret).is_ok());
    }

    /// Proves the owner check: a file owned by another user is refused (run as root, where a
    /// file can be given away; skipped otherwise), and a directory is not a file.
    #[test]
    fn another_owner_and_a_directory_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_checked(dir.path(), "key", FileKind::Trusted).unwrap_err();
        assert!(
            matches!(e, FileError::Permissions(_) | FileError::Io(_)),
            "{e}"
        );
        if rustix::process::geteuid().is_root() {
            let f = dir.path().join("f");
            std::fs::write(&f, b"x").unwrap();
            set(&f, 0o600);
            std::os::unix::fs::chown(&f, Some(4242), None).unwrap();
            let e = read_checked(&f, "key", FileKind::Secret)
                .unwrap_err()
                .to_string();
            assert!(e.contains("another user") && e.contains("4242"), "{e}");
            std::os::unix::fs::chown(&f, Some(0), None).unwrap();
            assert!(read_checked(&f, "key", FileKind::Secret).is_ok());
        }
    }

    #[test]
    fn too_large_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("big");
        std::fs::write(&f, vec![b'a'; MAX_FILE as usize + 1]).unwrap();
        set(&f, 0o600);
        let e = read_checked(&f, "key", FileKind::Secret).unwrap_err();
        assert!(matches!(e, FileError::TooLarge(_)), "{e}");
    }
}
