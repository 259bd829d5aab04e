//! The PostgreSQL password from a password file in libpq's format (`$PGPASSFILE`, else
//! `~/.pgpass`): lines `host:port:database:user:password`, `*` matching anything, `\:` and
//! `\\` escaping, `#` starting a comment; the first matching line wins. The file is read with
//! [`cardunlock_protocol::files`] (owner-only, owned by this user or root, no symbolic link):
//! where libpq only ignores a file others can read, the server refuses to start.

use std::path::PathBuf;

use cardunlock_protocol::files::{read_checked_text, FileError, FileKind};
use postgres::config::Host;
use zeroize::Zeroizing;

use crate::ServerError;

/// The password file's path: `$PGPASSFILE`, else `$HOME/.pgpass`.
fn path() -> Option<PathBuf> {
    std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")))
}

/// The password for `config`'s first host, port, database and user, if the password file
/// has one. No file is no password; a file refused by its checks is an error.
pub(super) fn lookup(config: &postgres::Config) -> Result<Option<Zeroizing<String>>, ServerError> {
    let Some(path) = path() else {
        return Ok(None);
    };
    let explicit = std::env::var_os("PGPASSFILE").is_some();
    let text = match read_checked_text(&path, "PostgreSQL password file", FileKind::Secret) {
        Ok(text) => text,
        Err(FileError::Missing(_)) if !explicit => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(_)) => "localhost".to_owned(),
        None => "localhost".to_owned(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user().unwrap_or_default();
    let dbname = config.get_dbname().unwrap_or(user);
    Ok(find(&text, [&host, &port, dbname, user]))
}

/// The password of the first line of `text` matching `wanted` (host, port, database, user).
fn find(text: &str, wanted: [&str; 4]) -> Option<Zeroizing<String>> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .find_map(|line| {
            let fields = split(line)?;
            let matches = fields[..4]
                .iter()
                .zip(wanted)
                .all(|(f, w)| f.as_str() == "*" || f.as_str() == w);
            matches.then(|| Zeroizing::new(fields[4].to_string()))
        })
}

/// The five fields of a line, unescaped; `None` if it has fewer.
fn split(line: &str) -> Option<[Zeroizing<String>; 5]> {
    let mut fields: Vec<Zeroizing<String>> = vec![Zeroizing::new(String::new())];
    let mut chars = line.trim_end_matches('\r').chars();
    while let Some(c) = chars.next() {
        if c == ':' && fields.len() < 5 {
            fields.push(Zeroizing::new(String::new()));
            continue;
        }
        let c = if c == '\\' {
            chars.next().unwrap_or('\\')
        } else {
            c
        };
        fields.last_mut()?.push(c);
    }
    fields.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_line_wins_with_wildcards_and_escapes() {
        let text = "# comment\n\
                    db.example:5432:other:app:nope\n\
                    db.example:*:cards:app:pa\\:ss\\\\word\n\
                    *:*:*:*:fallback\n";
        let get = |w: [&str; 4]| find(text, w).map(|p| p.to_string());
        assert_eq!(
            get(["db.example", "5433", "cards", "app"]).as_deref(),
            Some("pa:ss\\word")
        );
        assert_eq!(
            get(["db.example", "5432", "other", "app"]).as_deref(),
            Some("nope")
        );
        assert_eq!(get(["h", "1", "d", "u"]).as_deref(), Some("fallback"));
        assert_eq!(find("a:b:c\n", ["a", "b", "c", "d"]), None);
    }
}
