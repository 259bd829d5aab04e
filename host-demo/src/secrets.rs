//! Secrets from the command line's three safe places and one unsafe one: a hidden prompt,
//! standard input (`--x-stdin`, or `--x-file -`), a file (`--x-file PATH`, refused when others
//! may read it), or the option itself (`--x VALUE`, visible in the process list: for tests and
//! throw-away cards). Values are wiped on drop and never shown by `Debug`.

use std::convert::Infallible;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cardunlock_client::Failure;
use zeroize::Zeroizing;

/// A secret given as an option value or in the environment.
#[derive(Clone)]
pub struct SecretArg(Zeroizing<String>);

impl SecretArg {
    /// The value, to hand to the card or the key parser.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for SecretArg {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Infallible> {
        Ok(Self(Zeroizing::new(s.to_string())))
    }
}

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The admin key options of `unlock` and `admin-auth`: `--admin-key HEX` (or
/// `$CARDUNLOCK_ADMIN_KEY`), `--admin-key-stdin`, `--admin-key-file FILE`; `--key`, `--key-stdin`
/// and `--key-file` are the same (admin-auth's names).
#[derive(clap::Args, Debug)]
pub struct AdminKeyArgs {
    /// The admin key (hex): a GIDS / ISO card's admin key, a PIV card's management key.
    #[arg(
        long,
        env = "CARDUNLOCK_ADMIN_KEY",
        hide_env_values = true,
        value_name = "HEX",
        visible_alias = "key"
    )]
    pub admin_key: Option<SecretArg>,
    /// Read the admin key (hex) from standard input.
    #[arg(long, visible_alias = "key-stdin")]
    pub admin_key_stdin: bool,
    /// Read the admin key (hex) from a file only its owner can read (`-`: standard input).
    #[arg(long, value_name = "FILE", visible_alias = "key-file")]
    pub admin_key_file: Option<PathBuf>,
}

impl AdminKeyArgs {
    /// Where the key comes from; `subject` names it in messages ("admin key").
    pub fn source<'a>(&'a self, subject: &'a str) -> Source<'a> {
        Source {
            subject,
            option: "admin-key",
            value: self.admin_key.as_ref(),
            stdin: self.admin_key_stdin,
            file: self.admin_key_file.as_deref(),
        }
    }
}

/// Where one secret comes from, as given on the command line.
pub struct Source<'a> {
    /// What it is, for messages ("PUK", "new PIN").
    pub subject: &'a str,
    /// The option stem (`puk` for `--puk`, `--puk-stdin`, `--puk-file`).
    pub option: &'a str,
    /// `--x VALUE` (or its environment variable).
    pub value: Option<&'a SecretArg>,
    /// `--x-stdin`.
    pub stdin: bool,
    /// `--x-file PATH` (`-`: standard input).
    pub file: Option<&'a Path>,
}

impl Source<'_> {
    /// Whether this secret reads standard input.
    pub fn uses_stdin(&self) -> bool {
        self.stdin || self.file.is_some_and(|f| f == Path::new("-"))
    }

    /// Whether the secret was given at all (else it is prompted).
    #[cfg_attr(not(any(feature = "pcsc", feature = "ccid")), allow(dead_code))]
    pub fn given(&self) -> bool {
        self.value.is_some() || self.stdin || self.file.is_some()
    }

    fn conflict(&self) -> Result<(), Failure> {
        let n = usize::from(self.value.is_some())
            + usize::from(self.stdin)
            + usize::from(self.file.is_some());
        if n > 1 {
            return Err(Failure::usage(
                self.subject,
                format!(
                    "give it one way: --{o}, --{o}-stdin or --{o}-file",
                    o = self.option
                ),
            ));
        }
        Ok(())
    }

    /// The whole text given, `None` when it must be prompted.
    fn text(&self) -> Result<Option<Zeroizing<String>>, Failure> {
        self.conflict()?;
        if let Some(v) = self.value {
            return Ok(Some(Zeroizing::new(v.expose().to_string())));
        }
        if self.uses_stdin() {
            let mut text = Zeroizing::new(String::new());
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Failure::usage(self.subject, format!("standard input: {e}")))?;
            return Ok(Some(text));
        }
        if let Some(path) = self.file {
            return read_secret_file(self.subject, path).map(Some);
        }
        Ok(None)
    }

    /// The secret: its one line (trailing newline removed), or prompted hidden at a terminal.
    pub fn get(&self) -> Result<Zeroizing<String>, Failure> {
        match self.text()? {
            Some(text) => one_line(self.subject, &text),
            None => self.prompt(),
        }
    }

    /// The secret when given, `None` when it would have to be prompted.
    #[cfg_attr(not(any(feature = "pcsc", feature = "ccid")), allow(dead_code))]
    pub fn get_given(&self) -> Result<Option<Zeroizing<String>>, Failure> {
        match self.text()? {
            Some(text) => one_line(self.subject, &text).map(Some),
            None => Ok(None),
        }
    }

    /// One secret per line (answers): the lines given, `None` when none was given.
    #[cfg_attr(not(any(feature = "pcsc", feature = "ccid")), allow(dead_code))]
    pub fn lines(&self) -> Result<Option<Vec<Zeroizing<String>>>, Failure> {
        Ok(self.text()?.map(|text| {
            text.lines()
                .map(|l| Zeroizing::new(l.trim_end_matches('\r').to_string()))
                .collect()
        }))
    }

    /// Asks at the terminal with the input hidden.
    pub fn prompt(&self) -> Result<Zeroizing<String>, Failure> {
        crate::terminal::hidden(self.subject).map_err(|f| {
            Failure::new(
                f.kind,
                format!(
                    "{}: it is asked at a terminal, and standard input is not one: give \
                     --{o}-stdin or --{o}-file",
                    self.subject,
                    o = self.option
                ),
            )
        })
    }
}

fn one_line(subject: &str, text: &str) -> Result<Zeroizing<String>, Failure> {
    let line = text.strip_suffix('\n').unwrap_or(text);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.contains('\n') {
        return Err(Failure::usage(subject, "give one line, not several"));
    }
    if line.is_empty() {
        return Err(Failure::usage(subject, "it is empty"));
    }
    Ok(Zeroizing::new(line.to_string()))
}

/// Reads a secret file, checked on the descriptor read: no symbolic link, a regular file
/// owned by this user or root that no one else may read or write.
pub fn read_secret_file(subject: &str, path: &Path) -> Result<Zeroizing<String>, Failure> {
    use cardunlock_protocol::files::{read_checked_text, FileKind};
    read_checked_text(path, "", FileKind::Secret).map_err(|e| Failure::usage(subject, e))
}

/// Refuses two secrets read from standard input in one run.
#[cfg_attr(not(any(feature = "pcsc", feature = "ccid")), allow(dead_code))]
pub fn one_stdin(sources: &[&Source<'_>]) -> Result<(), Failure> {
    let readers: Vec<&str> = sources
        .iter()
        .filter(|s| s.uses_stdin())
        .map(|s| s.subject)
        .collect();
    if readers.len() > 1 {
        return Err(Failure::usage(
            "standard input",
            format!(
                "only one secret can come from it, and {} were asked to ({}); put the others in \
                 files",
                readers.len(),
                readers.join(", ")
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s: SecretArg = "12345678".parse().unwrap();
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(s.expose(), "12345678");
    }

    #[test]
    fn files_others_can_read_are_refused_and_private_ones_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("puk");
        std::fs::write(&path, "12345678\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let src = Source {
            subject: "PUK",
            option: "puk",
            value: None,
            stdin: false,
            file: Some(&path),
        };
        let e = src.get().err().unwrap();
        assert!(
            e.message.starts_with("PUK: ") && e.message.contains("chmod 600"),
            "{e}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(src.get().unwrap().as_str(), "12345678");
        std::fs::write(&path, "1\n2\n").unwrap();
        assert!(src.get().is_err(), "two lines for one secret");
        assert_eq!(src.lines().unwrap().unwrap().len(), 2);
    }
}
