//! `audit export`: every row and every chain's head, as JSON lines, RFC 5424 syslog lines and
//! CSV, parsed back here field by field.

mod common;

use cardunlock_core::crypto::Algorithm;
use cardunlock_server::audit_export::{export, ExportFormat};
use cardunlock_server::{ChainHead, Store};
use common::*;
use serde_json::Value;

fn store_with_rows(dir: &std::path::Path) -> Env {
    let env = Env::start(&config(dir));
    env.server
        .enroll(&enrollment("piv", "a1", Algorithm::TripleDes))
        .unwrap();
    env.start_session("piv", "a1");
    env.post("/v1/unlock/start", &card("piv", "ffff"));
    env
}

fn exported(store: &Store, format: ExportFormat) -> String {
    let mut out = Vec::new();
    export(store, format, "host.example", &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// One RFC 5424 line: PRI, version, timestamp, host, app, procid, msgid, the structured-data
/// parameters (unescaped) and the message.
struct Syslog {
    pri: u8,
    timestamp: String,
    host: String,
    app: String,
    msgid: String,
    sd_id: String,
    params: Vec<(String, String)>,
    msg: String,
}

fn parse_syslog(line: &str) -> Syslog {
    let rest = line.strip_prefix('<').expect("PRI");
    let (pri, rest) = rest.split_once('>').unwrap();
    let rest = rest.strip_prefix("1 ").expect("version 1");
    let mut header = rest.splitn(6, ' ');
    let timestamp = header.next().unwrap().to_owned();
    let host = header.next().unwrap().to_owned();
    let app = header.next().unwrap().to_owned();
    assert_eq!(header.next(), Some("-"));
    let msgid = header.next().unwrap().to_owned();
    let sd = header.next().unwrap();
    let sd = sd.strip_prefix('[').expect("one SD element");
    let (sd_id, mut rest) = sd.split_once(' ').unwrap();
    let mut params = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix(']') {
            rest = after;
            break;
        }
        let (name, after) = rest.trim_start().split_once("=\"").unwrap();
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next().expect("a closed value");
            match c {
                '\\' => value.push(chars.next().unwrap().1),
                '"' => break i + 1,
                c => value.push(c),
            }
        };
        params.push((name.to_owned(), value));
        rest = &after[end..];
    }
    Syslog {
        pri: pri.parse().unwrap(),
        timestamp,
        host,
        app,
        msgid,
        sd_id: sd_id.to_owned(),
        params,
        msg: rest.strip_prefix(' ').unwrap_or(rest).to_owned(),
    }
}

fn param<'a>(s: &'a Syslog, name: &str) -> Option<&'a str> {
    s.params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

backend_tests! {
    /// Proves the JSON lines hold every row as stored (chain, seq, MAC, address) and end
    /// with the heads `audit verify` reports, in a form `--head` reads back.
    fn json_lines_hold_every_row_and_the_heads() {
        let dir = tempfile::tempdir().unwrap();
        let env = store_with_rows(dir.path());
        let store = env.server.store();
        let audit = store.audit().unwrap();
        let text = exported(store, ExportFormat::JsonLines);
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let rows: Vec<&Value> = lines.iter().filter(|l| l["type"] == "audit").collect();
        assert_eq!(rows.len(), audit.len());
        for (row, entry) in rows.iter().zip(&audit) {
            assert_eq!(row["event"], entry.event.as_str());
            assert_eq!(row["detail"], entry.detail.as_str());
            assert_eq!(row["time_ms"], entry.time_ms);
            assert_eq!(row["mac"].as_str().unwrap().len(), 64);
            assert!(row["time"].as_str().unwrap().ends_with('Z'));
        }
        let start = rows.iter().rev().find(|r| r["event"] == "start").unwrap();
        assert_eq!(start["address"], "127.0.0.1");
        let heads: Vec<ChainHead> = lines
            .iter()
            .filter(|l| l["type"] == "head")
            .map(|l| ChainHead::parse(l["head"].as_str().unwrap()).unwrap())
            .collect();
        let report = store.verify_audit(&master(), &heads).unwrap();
        assert_eq!(report.problem, None);
        assert_eq!(heads, report.chains);
    }

    /// Proves the syslog lines are RFC 5424 (PRI authpriv, version 1, RFC 3339 UTC time, the
    /// row's fields as structured data) and include the heads.
    fn syslog_lines_are_rfc5424_with_the_heads() {
        let dir = tempfile::tempdir().unwrap();
        let env = store_with_rows(dir.path());
        let store = env.server.store();
        let audit = store.audit().unwrap();
        let text = exported(store, ExportFormat::Syslog);
        let lines: Vec<Syslog> = text.lines().map(parse_syslog).collect();
        let rows: Vec<&Syslog> = lines.iter().filter(|l| l.sd_id == "audit@32473").collect();
        assert_eq!(rows.len(), audit.len());
        for (row, entry) in rows.iter().zip(&audit) {
            assert_eq!(row.pri / 8, 10, "facility authpriv");
            assert!(row.pri % 8 >= 4 && row.pri % 8 <= 5);
            assert_eq!(row.host, "host.example");
            assert_eq!(row.app, "cardunlock-server");
            assert_eq!(row.msgid, entry.event);
            assert_eq!(param(row, "outcome"), Some(entry.outcome.as_str()));
            assert_eq!(row.msg, entry.detail);
            assert_eq!(row.timestamp.len(), "2023-11-14T22:13:20.123Z".len());
            assert!(row.timestamp.ends_with('Z'));
            assert_eq!(param(row, "mac").unwrap().len(), 64);
        }
        let heads: Vec<&Syslog> = lines.iter().filter(|l| l.sd_id == "head@32473").collect();
        assert_eq!(heads.len(), 1);
        let head = format!(
            "{}:{}:{}",
            param(heads[0], "chain").unwrap(),
            param(heads[0], "seq").unwrap(),
            param(heads[0], "mac").unwrap()
        );
        let report = store.verify_audit(&master(), &[ChainHead::parse(&head).unwrap()]).unwrap();
        assert_eq!(report.problem, None);
    }

    /// Proves the CSV export quotes every cell and defuses formulas.
    fn csv_cells_are_quoted_and_formulas_defused() {
        let dir = tempfile::tempdir().unwrap();
        let env = store_with_rows(dir.path());
        let text = exported(env.server.store(), ExportFormat::Csv);
        let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
        assert!(lines.next().unwrap().starts_with("type,id,chain,seq,mac,"));
        for line in lines {
            assert!(line.starts_with("\"audit\",") || line.starts_with("\"head\","), "{line}");
            for cell in line.split("\",\"") {
                let cell = cell.trim_matches('"');
                assert!(!cell.starts_with(['=', '+', '-', '@']), "{line}");
            }
        }
    }
}

/// Proves the server writes its chains' heads out of the database (here on shutdown; also
/// every minute), in a form `audit verify --head` takes, which then finds a cut tail.
#[test]
fn the_server_appends_its_heads_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    let file = dir.path().join("heads.jsonl");
    cfg.audit_heads_file = Some(file.clone());
    let location = cfg.db_path.clone();
    let env = Env::start(&cfg);
    env.server
        .enroll(&enrollment("piv", "b1", Algorithm::TripleDes))
        .unwrap();
    env.start_session("piv", "b1");
    env.server.shutdown();
    let text = std::fs::read_to_string(&file).unwrap();
    let heads: Vec<ChainHead> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|l| ChainHead::parse(l["head"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(heads.len(), 1, "{text}");
    let store = Store::open(&location).unwrap();
    assert_eq!(store.verify_audit(&master(), &heads).unwrap().problem, None);
    let seq = heads[0].head.seq;
    query_texts(&location, &format!("DELETE FROM audit WHERE seq = {seq}"));
    query_texts(
        &location,
        &format!(
            "UPDATE audit_heads SET seq = {}, mac = (SELECT mac FROM audit WHERE seq = {})",
            seq - 1,
            seq - 1
        ),
    );
    let found = store
        .verify_audit(&master(), &heads)
        .unwrap()
        .problem
        .unwrap();
    assert!(found.contains("before the saved head"), "{found}");
}
