//! Secrets given in the environment (`CARDUNLOCK_MASTER_SECRET`, `CARDUNLOCK_DB`): read once,
//! removed from the environment, and overwritten in the environment block the process started
//! with.
//!
//! Removing a variable only drops libc's pointer to it: Linux keeps showing the block the
//! process was started with in `/proc/PID/environ` (to its owner and root) for the process's
//! whole life. On Linux that block (its bounds are fields 50 and 51 of `/proc/self/stat`) is
//! overwritten through `/proc/self/mem`, so no `unsafe` code is needed: every `NAME=value`
//! entry of the variable gets its value replaced by zero bytes. Elsewhere the variable is only
//! removed.

use zeroize::Zeroizing;

use crate::ServerError;

/// The value of `name`, then the variable removed from the environment and its value wiped
/// from the original environment block; `None` if it is not set. Call it at start-up, before
/// other threads read the environment.
pub fn take(name: &str) -> Result<Option<Zeroizing<String>>, ServerError> {
    let value = std::env::var_os(name).map(|v| v.into_string());
    std::env::remove_var(name);
    if let Err(e) = wipe_initial(name) {
        // Before any logger: said on standard error, the start goes on (the variable is gone
        // from the environment children and later readers see).
        eprintln!("warning: {name}: could not wipe it from /proc/self/environ: {e}");
    }
    match value {
        None => Ok(None),
        Some(Ok(text)) => Ok(Some(Zeroizing::new(text))),
        Some(Err(raw)) => {
            drop(Zeroizing::new(raw.into_encoded_bytes()));
            Err(ServerError::InvalidInput(format!(
                "{name} is not UTF-8 text"
            )))
        }
    }
}

/// Overwrites the values of `name` in the process's original environment block (Linux).
#[cfg(target_os = "linux")]
fn wipe_initial(name: &str) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let (start, end) = environ_bounds()?;
    let len = usize::try_from(end.saturating_sub(start))
        .map_err(|_| std::io::Error::other("environment block too large"))?;
    let mem = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/proc/self/mem")?;
    let mut block = Zeroizing::new(vec![0u8; len]);
    mem.read_exact_at(&mut block, start)?;
    for (offset, value_len) in values_of(&block, name) {
        let zeros = vec![0u8; value_len];
        mem.write_all_at(&zeros, start + offset as u64)?;
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn wipe_initial(_name: &str) -> std::io::Result<()> {
    Ok(())
}

/// `env_start` and `env_end` from `/proc/self/stat` (fields 50 and 51, Linux 3.5 and later).
#[cfg(target_os = "linux")]
fn environ_bounds() -> std::io::Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    parse_bounds(&stat).ok_or_else(|| std::io::Error::other("unexpected /proc/self/stat"))
}

/// Parses fields 50 and 51 of a `/proc/PID/stat` line (the command name, field 2, may hold
/// spaces and parentheses: fields are counted after its last `)`).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_bounds(stat: &str) -> Option<(u64, u64)> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(50 - 3);
    let start = fields.next()?.parse().ok()?;
    let end = fields.next()?.parse().ok()?;
    (start < end).then_some((start, end))
}

/// Where the values of `NAME=value` entries are in a block of NUL-terminated entries: (offset,
/// length) of each value.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn values_of(block: &[u8], name: &str) -> Vec<(usize, usize)> {
    let prefix_len = name.len() + 1;
    let mut found = Vec::new();
    let mut offset = 0;
    for entry in block.split(|&b| b == 0) {
        if entry.len() >= prefix_len
            && &entry[..name.len()] == name.as_bytes()
            && entry[name.len()] == b'='
        {
            found.push((offset + prefix_len, entry.len() - prefix_len));
        }
        offset += entry.len() + 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_found_at_entry_starts_only() {
        let block = b"A=1\0XCARD=no\0CARD=secret\0CARDX=no\0CARD=\0CARD=two\0";
        let found = values_of(block, "CARD");
        assert_eq!(found, vec![(18, 6), (39, 0), (45, 3)]);
        assert_eq!(&block[18..24], b"secret");
        assert_eq!(&block[45..48], b"two");
    }

    #[test]
    fn stat_bounds_are_read_after_the_command_name() {
        let mut fields: Vec<String> = (3..=49).map(|n| n.to_string()).collect();
        fields.extend(["1000".into(), "2000".into(), "0".into()]);
        let stat = format!("42 (a) b (c)) {}", fields.join(" "));
        assert_eq!(parse_bounds(&stat), Some((1000, 2000)));
        assert_eq!(parse_bounds("42 (a) R 1 2"), None);
    }
}
