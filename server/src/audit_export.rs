//! `cardunlock-server audit export`: the whole audit log for a SIEM, as JSON lines, RFC 5424
//! syslog lines or CSV (cells defused against spreadsheet formulas), each row with its chain,
//! sequence number and MAC, followed by every chain's head (so a SIEM that keeps the export
//! holds heads outside the database, and `audit verify --head` can find a cut tail later).

use std::io::Write;

use serde_json::json;

use crate::store::chain::{ChainHead, ChainRow};
use crate::{ServerError, Store};

/// How [`export`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object a line: `{"type":"audit",...}` rows, then `{"type":"head",...}`.
    JsonLines,
    /// RFC 5424 syslog lines (facility authpriv), the row's fields as structured data.
    Syslog,
    /// CSV with a header line; every cell quoted, formulas defused.
    Csv,
}

impl std::str::FromStr for ExportFormat {
    type Err = ServerError;
    fn from_str(s: &str) -> Result<Self, ServerError> {
        match s {
            "jsonl" | "json" => Ok(Self::JsonLines),
            "syslog" | "rfc5424" => Ok(Self::Syslog),
            "csv" => Ok(Self::Csv),
            _ => Err(ServerError::InvalidInput(
                "the export format is jsonl, syslog or csv".into(),
            )),
        }
    }
}

/// What [`export`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    /// Rows written.
    pub rows: usize,
    /// The heads written after them.
    pub heads: Vec<ChainHead>,
}

/// The structured-data id of the rows and heads: `audit@32473` (32473 is the enterprise
/// number RFC 5612 sets aside for examples and documentation; no number is registered for
/// cardunlock).
const SD_AUDIT: &str = "audit@32473";
const SD_HEAD: &str = "head@32473";
/// Facility authpriv (10): security and authorisation messages.
const FACILITY: u8 = 10;

/// The rows (id order) and every chain's stored head, read in one transaction (heads first,
/// so every head's row is among the rows).
pub(crate) fn snapshot(store: &Store) -> Result<(Vec<ChainRow>, Vec<ChainHead>), ServerError> {
    store.transact(|tx| {
        let mut heads: Vec<ChainHead> = Vec::new();
        if let Some(global) = tx.audit_head()?.filter(|h| h.seq > 0) {
            heads.push(ChainHead {
                chain: None,
                head: global,
            });
        }
        for (chain, head) in tx.lane_heads()? {
            heads.push(ChainHead {
                chain: Some(chain),
                head,
            });
        }
        Ok((tx.audit_chain_rows(false)?, heads))
    })
}

/// Writes the whole audit log of `store` to `out` in `format`; `hostname` names this host in
/// syslog lines (`-` if unknown).
pub fn export(
    store: &Store,
    format: ExportFormat,
    hostname: &str,
    out: &mut dyn Write,
) -> Result<ExportSummary, ServerError> {
    let (rows, heads) = snapshot(store)?;
    write_all(&rows, &heads, format, hostname, out)
        .map_err(|e| ServerError::InvalidInput(format!("cannot write the export: {e}")))?;
    Ok(ExportSummary {
        rows: rows.len(),
        heads,
    })
}

/// Writes `rows` and `heads` in `format`.
pub(crate) fn write_all(
    rows: &[ChainRow],
    heads: &[ChainHead],
    format: ExportFormat,
    hostname: &str,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let host = syslog_name(hostname, 255);
    if format == ExportFormat::Csv {
        out.write_all(
            b"type,id,chain,seq,mac,time_ms,operator,role,address,profile,identity,session,\
              event,outcome,detail\r\n",
        )?;
    }
    for row in rows {
        match format {
            ExportFormat::JsonLines => writeln!(out, "{}", json_row(row))?,
            ExportFormat::Syslog => writeln!(out, "{}", syslog_row(row, &host))?,
            ExportFormat::Csv => out.write_all(csv_row(row).as_bytes())?,
        }
    }
    for head in heads {
        match format {
            ExportFormat::JsonLines => writeln!(out, "{}", json_head(head))?,
            ExportFormat::Syslog => writeln!(out, "{}", syslog_head(head, &host))?,
            ExportFormat::Csv => out.write_all(csv_head(head).as_bytes())?,
        }
    }
    out.flush()
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(crate) fn rfc3339(ms: i64) -> String {
    let date_time = crate::console::layout::time(ms).replace(' ', "T");
    format!("{date_time}.{:03}Z", ms.rem_euclid(1000))
}

fn json_row(row: &ChainRow) -> serde_json::Value {
    let e = &row.entry;
    json!({
        "type": "audit",
        "id": row.id,
        "chain": row.chain,
        "seq": row.seq,
        "mac": row.mac.as_deref().map(hex::encode),
        "time": rfc3339(e.time_ms),
        "time_ms": e.time_ms,
        "profile": e.profile,
        "identity": e.identity_hex,
        "session": e.session,
        "event": e.event,
        "outcome": e.outcome,
        "detail": e.detail,
        "operator": e.operator,
        "role": e.role,
        "address": e.address,
    })
}

fn json_head(head: &ChainHead) -> serde_json::Value {
    json!({
        "type": "head",
        "chain": head.chain,
        "seq": head.head.seq,
        "mac": hex::encode(head.head.mac),
        "head": head.to_text(),
    })
}

/// Printable US-ASCII without spaces, at most `max` characters (`-` if nothing is left), as
/// RFC 5424 wants HOSTNAME, APP-NAME and MSGID.
fn syslog_name(text: &str, max: usize) -> String {
    let name: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if name.is_empty() {
        "-".into()
    } else {
        name
    }
}

/// An SD-PARAM value: `"`, `\` and `]` escaped with `\` (RFC 5424 6.3.3), control characters
/// as spaces so a record stays on one line.
fn sd_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' | '\\' | ']' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A warning for what an operator should look at, a notice for the rest.
fn severity(event: &str, outcome: &str) -> u8 {
    let warn = event == "alert"
        || matches!(
            outcome,
            "locked" | "wrong_answers" | "alert" | "puk_at_risk"
        )
        || outcome.starts_with("refused");
    if warn {
        4
    } else {
        5
    }
}

fn sd_element(id: &str, params: &[(&str, Option<String>)]) -> String {
    let mut sd = format!("[{id}");
    for (name, value) in params {
        if let Some(v) = value {
            sd.push_str(&format!(" {name}=\"{}\"", sd_value(v)));
        }
    }
    sd.push(']');
    sd
}

fn syslog_row(row: &ChainRow, host: &str) -> String {
    let e = &row.entry;
    let pri = FACILITY * 8 + severity(&e.event, &e.outcome);
    let sd = sd_element(
        SD_AUDIT,
        &[
            ("id", Some(row.id.to_string())),
            ("chain", row.chain.clone()),
            ("seq", row.seq.map(|s| s.to_string())),
            ("mac", row.mac.as_deref().map(hex::encode)),
            ("outcome", Some(e.outcome.clone())),
            ("profile", e.profile.clone()),
            ("identity", e.identity_hex.clone()),
            ("session", e.session.clone()),
            ("operator", e.operator.clone()),
            ("role", e.role.clone()),
            ("address", e.address.clone()),
        ],
    );
    let detail: String = e
        .detail
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!(
        "<{pri}>1 {} {host} cardunlock-server - {} {sd} {detail}",
        rfc3339(e.time_ms),
        syslog_name(&e.event, 32)
    )
}

fn syslog_head(head: &ChainHead, host: &str) -> String {
    let pri = FACILITY * 8 + 6;
    let sd = sd_element(
        SD_HEAD,
        &[
            ("chain", head.chain.clone()),
            ("seq", Some(head.head.seq.to_string())),
            ("mac", Some(hex::encode(head.head.mac))),
        ],
    );
    let now = rfc3339(crate::store::now_ms());
    format!(
        "<{pri}>1 {now} {host} cardunlock-server - audit_head {sd} audit head {}",
        head.to_text()
    )
}

fn csv_line(cells: &[String]) -> String {
    let cells: Vec<String> = cells
        .iter()
        .map(|c| crate::operator::audit::csv_cell(c))
        .collect();
    format!("{}\r\n", cells.join(","))
}

fn csv_row(row: &ChainRow) -> String {
    let e = &row.entry;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    csv_line(&[
        "audit".into(),
        row.id.to_string(),
        text(&row.chain),
        row.seq.map(|s| s.to_string()).unwrap_or_default(),
        row.mac.as_deref().map(hex::encode).unwrap_or_default(),
        e.time_ms.to_string(),
        text(&e.operator),
        text(&e.role),
        text(&e.address),
        text(&e.profile),
        text(&e.identity_hex),
        text(&e.session),
        e.event.clone(),
        e.outcome.clone(),
        e.detail.clone(),
    ])
}

fn csv_head(head: &ChainHead) -> String {
    let mut cells = vec![String::new(); 15];
    cells[0] = "head".into();
    cells[2] = head.chain.clone().unwrap_or_default();
    cells[3] = head.head.seq.to_string();
    cells[4] = hex::encode(head.head.mac);
    cells[14] = head.to_text();
    csv_line(&cells)
}

/// Appends `heads` to `path` as JSON head lines with the time (the file is created
/// owner-only), for `audit verify --head` to find a cut tail later.
pub fn append_heads(heads: &[ChainHead], path: &std::path::Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    let now = crate::store::now_ms();
    let mut text = String::new();
    for head in heads {
        let mut line = json_head(head);
        line["time"] = rfc3339(now).into();
        text.push_str(&format!("{line}\n"));
    }
    file.write_all(text.as_bytes())?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    /// Proves a value cannot close its parameter or element early (RFC 5424 escapes).
    #[test]
    fn sd_values_are_escaped() {
        assert_eq!(sd_value(r#"a"b]c\d"#), r#"a\"b\]c\\d"#);
        assert_eq!(sd_value("line\nbreak"), "line break");
        assert_eq!(syslog_name("has space", 32), "hasspace");
        assert_eq!(syslog_name("", 32), "-");
    }
}
