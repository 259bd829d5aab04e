//! The tables and figures of the report, from criterion's medians and the scripts' outputs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::{read, time, verdict, Criterion, ReportError, Result};

/// The cells of the peers table's row whose first cell starts with `` `prefix``.
fn peer_row<'a>(peers: &'a str, prefix: &str) -> Result<Vec<&'a str>> {
    peers
        .lines()
        .find(|l| l.starts_with(&format!("| `{prefix}")))
        .map(|l| l.split('|').map(str::trim).collect())
        .ok_or_else(|| ReportError(format!("the peers table has no `{prefix}` row")))
}

fn number<T: std::str::FromStr>(cell: Option<&&str>, what: &str) -> Result<T> {
    cell.and_then(|c| c.trim_end_matches('×').parse().ok())
        .ok_or_else(|| ReportError(format!("the peers table's {what} is not a number")))
}

/// The figure after `key` and before `unit` on the first line holding `key`, in order.
fn figures<'a>(lines: &'a [&'a str], key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    lines.iter().filter_map(move |l| {
        let rest = &l[l.find(key)? + key.len()..];
        rest.split(" bytes").next()
    })
}

/// The two targets tables and the notes on what was missed.
fn targets(c: &Criterion, peers: &str, firmware: &[&str]) -> Result<(String, String)> {
    let ours = peer_row(peers, "cardunlock unblock")?;
    let theirs = peer_row(peers, "yubico-piv-tool")?;
    let apdus: u32 = number(ours.get(2), "APDU count")?;
    let their_apdus: u32 = number(theirs.get(2), "APDU count")?;
    let ratio: f64 = number(ours.get(7), "ratio")?;
    let ratio_of = |groups: &[&str], bench: &str, reference: &str| -> Result<f64> {
        let mut worst = f64::MIN;
        for g in groups {
            worst = worst.max(c.need(g, bench)? / c.need(g, reference)?);
        }
        Ok(worst)
    };
    let encode = ["encode/select_piv_15B", "encode/reset_retry_counter_21B"];
    let parse = ["parse/chuid_response_63B", "parse/wrong_puk_response_2B"];
    let commands = [
        "parse_command/select_piv_15B",
        "parse_command/reset_retry_counter_21B",
        "parse_command/put_data_extended_1007B",
    ];
    let enc_apdu = ratio_of(&encode, "cardunlock", "apdu")?;
    let enc_floor = ratio_of(&encode, "cardunlock", "copy_floor")?;
    let split_apdu = ratio_of(&parse, "cardunlock", "apdu")?;
    let split_floor = ratio_of(&parse, "cardunlock", "split_floor")?;
    let cmd = ratio_of(&commands, "cardunlock", "iso7816")?;
    let framing = ratio_of(
        &["ccid/piv_puk_unblock"],
        "replay_through_ccid_session",
        "replay_core_only",
    )?;
    let stack: Vec<_> = figures(firmware, "peak ").collect();
    let flash: Vec<_> = figures(firmware, "flash ").collect();

    let mut t = String::new();
    let mut row = |target: &str, run: String, ok: bool| {
        let _ = writeln!(t, "| {target} | {run} | {} |", verdict(ok));
    };
    row(
        "PIV PUK unblock: ≤ 3 APDUs",
        format!("{apdus} (yubico-piv-tool: {their_apdus})"),
        apdus <= 3,
    );
    row(
        "PIV PUK unblock: ≤ 0.8× yubico-piv-tool's wall time",
        format!("{ratio:.2}× (median of per-pair ratios)"),
        ratio <= 0.8,
    );
    row(
        "encode at or below `apdu`",
        format!("ours / `apdu` ≤ {enc_apdu:.2} (short APDUs; `apdu` cannot encode extended ones)"),
        enc_apdu <= 1.0,
    );
    row(
        "encode within 2× the copy floor",
        format!("ours / floor up to {enc_floor:.1}×"),
        enc_floor <= 2.0,
    );
    row(
        "response split at or below `apdu`",
        format!("ours / `apdu` ≤ {split_apdu:.2}"),
        split_apdu <= 1.0,
    );
    row(
        "response split within 2× the floor",
        format!("ours / bare split up to {split_floor:.1}×"),
        split_floor <= 2.0,
    );
    row(
        "command parse at or below iso7816's `CommandView`",
        format!("ours / iso7816 ≤ {cmd:.2}"),
        cmd <= 1.0,
    );
    row(
        "CCID framing: the replay pair ≤ 1.5× the core path",
        format!("{framing:.2}× (criterion medians, §6)"),
        framing <= 1.5,
    );
    let unknown = "?";
    row(
        "firmware stack and flash measured",
        format!(
            "flash {} B; peak stack PIV {} B, GIDS {} B",
            flash.first().unwrap_or(&unknown),
            stack.first().unwrap_or(&unknown),
            stack.get(1).unwrap_or(&unknown),
        ),
        stack.len() >= 2 && !flash.is_empty(),
    );

    let mut m = String::new();
    let mut note = |text: String| {
        if m.is_empty() {
            m.push_str("Where a target is missed, by how much and why:\n\n");
        }
        m.push_str(&text);
    };
    if ratio > 0.8 {
        note(format!(
            "- **Wall time ({ratio:.2}× against ≤ 0.8×).** The card's RESET RETRY COUNTER (identical work for\n  \
             both tools) is most of both wall times on this card, and it stretches with the machine's load;\n  \
             cardunlock's host side (process, PC/SC context, connect, transaction, exit) is the \"wall time minus\n  \
             card time\" column of section 1. Nothing of the card's time is left to cut: 3 APDUs, the one\n  \
             that does the work plus SELECT and a ~30 µs GET METADATA.\n"
        ));
    }
    if enc_floor > 2.0 {
        note(format!(
            "- **Encode against the copy floor ({enc_floor:.1}× against ≤ 2×).** The floor copies finished bytes;\n  \
             the encoder builds the command from its fields and checks Nc, Ne and the buffer first. The\n  \
             check-free `apdu` crate is no closer to the floor, so the gap is the price of the checks and the\n  \
             length logic.\n"
        ));
    }
    if split_floor > 2.0 {
        note(format!(
            "- **Response split against the bare split ({split_floor:.1}× against ≤ 2×):** the difference is decoding the\n  \
             status word into a `Status` (a `63 CX` into its tries left), which the bare split does not do; a\n  \
             `90 00` skips the decoding.\n"
        ));
    }
    if enc_apdu > 1.0 || split_apdu > 1.0 || cmd > 1.0 {
        note(
            "- **Against a peer crate:** see the ratios in section 3; on a loaded machine rows a few percent apart\n  \
             swap places from run to run.\n"
                .into(),
        );
    }
    Ok((t.trim_end().to_string(), m))
}

/// One table row per `(group, label)`: the label, then a cell per bench, ratios to `reference`.
fn rows(c: &Criterion, groups: &[(&str, &str)], benches: &[&str], reference: &str) -> String {
    let mut out = String::new();
    for (group, label) in groups {
        let cells: Vec<String> = benches
            .iter()
            .map(|b| c.cell(group, b, reference))
            .collect();
        let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
    }
    out.trim_end().to_string()
}

/// Every placeholder of the template, computed from this run.
pub(crate) fn values(c: &Criterion, work: &Path) -> Result<BTreeMap<&'static str, String>> {
    let machine = read(&work.join("machine.env"))?;
    let peers = read(&work.join("peers.md"))?.trim().to_string();
    let firmware_text = read(&work.join("firmware.txt"))?;
    let firmware: Vec<&str> = firmware_text.trim().lines().collect();
    let mut v = BTreeMap::new();
    for key in [
        "cpu", "cores", "mem", "kernel", "rustc", "date", "load", "yubico",
    ] {
        let line = machine
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .ok_or_else(|| ReportError(format!("machine.env has no {key}=")))?;
        v.insert(key, line.to_string());
    }
    let (targets, missed) = targets(c, &peers, &firmware)?;
    v.insert("targets", targets);
    v.insert("missed", missed);
    v.insert("peers", peers);

    let encode = [
        (
            "encode/select_piv_15B",
            "SELECT PIV, 9-byte AID + Le (15 B)",
        ),
        (
            "encode/reset_retry_counter_21B",
            "RESET RETRY COUNTER, 16 B data (21 B)",
        ),
        (
            "encode/put_data_extended_1007B",
            "PUT DATA, 1000 B, extended (1007 B)",
        ),
    ];
    let mut enc = String::new();
    for (g, label) in encode {
        let apdu = if c.ns(g, "apdu").is_some() {
            c.cell(g, "apdu", "cardunlock")
        } else {
            "— wrong bytes, not timed".into()
        };
        let _ = writeln!(
            enc,
            "| {label} | {} | {} | {} | {apdu} | {} |",
            c.cell(g, "cardunlock", "cardunlock"),
            c.cell(g, "iso7816", "cardunlock"),
            c.cell(g, "iso7816_prebuilt", "cardunlock"),
            c.cell(g, "copy_floor", "cardunlock"),
        );
    }
    v.insert("encode", enc.trim_end().to_string());
    v.insert(
        "split",
        rows(
            c,
            &[
                (
                    "parse/chuid_response_63B",
                    "GET DATA CHUID answer, `90 00` (63 B)",
                ),
                ("parse/wrong_puk_response_2B", "wrong PUK, `63 C2` (2 B)"),
            ],
            &["cardunlock", "apdu", "split_floor"],
            "cardunlock",
        ),
    );
    v.insert(
        "command_parse",
        rows(
            c,
            &[
                ("parse_command/select_piv_15B", "SELECT PIV (15 B)"),
                (
                    "parse_command/reset_retry_counter_21B",
                    "RESET RETRY COUNTER (21 B)",
                ),
                (
                    "parse_command/put_data_extended_1007B",
                    "PUT DATA extended (1007 B)",
                ),
            ],
            &["cardunlock", "iso7816"],
            "cardunlock",
        ),
    );
    let g = "parse/chuid_find_guid_tag34";
    let h = "parse/chuid_response_and_guid";
    v.insert(
        "tlv",
        format!(
            "| find GUID (tag 53, then 34 inside) | `tlv::find` ×2 {} | `iso7816` `tlv::get_data_object` {} |\n\
             | response split, then GUID | {} | — |",
            c.cell(g, "cardunlock", "cardunlock"),
            c.cell(g, "iso7816", "cardunlock"),
            c.cell(h, "cardunlock", "cardunlock"),
        ),
    );
    v.insert(
        "crypto",
        rows(
            c,
            &[
                (
                    "crypto/3des_8B_block",
                    "3DES (default PIV key), 8-byte block",
                ),
                ("crypto/aes128_16B_block", "AES-128, 16-byte block"),
                ("crypto/aes192_16B_block", "AES-192, 16-byte block"),
                ("crypto/aes256_16B_block", "AES-256, 16-byte block"),
            ],
            &["cardunlock_encrypt_ecb", "prekeyed_block_floor"],
            "cardunlock_encrypt_ecb",
        ),
    );
    v.insert(
        "flows",
        rows(
            c,
            &[
                ("flow/piv_puk_unblock", "PIV PUK unblock (SELECT, RESET RETRY COUNTER, VERIFY) | 3"),
                (
                    "flow/gids_admin_unblock",
                    "GIDS admin unblock (SELECT, MSE SET, 2× GENERAL AUTHENTICATE, RRC, VERIFY) | 6",
                ),
            ],
            &["sim_card", "replay_core_only"],
            "sim_card",
        ),
    );
    let (ccid, notes) = ccid(c);
    v.insert("ccid", ccid);
    v.insert("ccid_notes", notes);
    v.insert("firmware", firmware.join("\n"));
    Ok(v)
}

/// The CCID table and what its replay pair says about the framing cost.
fn ccid(c: &Criterion) -> (String, String) {
    let g = "ccid/piv_puk_unblock";
    let reference = c.ns(g, "replay_core_only");
    let mut table = String::new();
    for (b, label) in [
        ("replay_core_only", "replay, core only"),
        (
            "replay_through_ccid_session",
            "replay, through the CCID session + loopback reader",
        ),
        ("sim_card_in_memory", "simulated card, in memory"),
        (
            "sim_card_ccid_apdu_level",
            "simulated card, CCID APDU level",
        ),
        ("sim_card_ccid_t1", "simulated card, CCID TPDU level, T=1"),
    ] {
        let _ = match (c.ns(g, b), reference) {
            (Some(t), Some(r)) => writeln!(table, "| {label} | {} | {:.2} |", time(t), t / r),
            _ => writeln!(table, "| {label} | — | — |"),
        };
    }
    let mut notes = String::new();
    if let (Some(core), Some(ccid), Some(sim), Some(sim_ccid)) = (
        reference,
        c.ns(g, "replay_through_ccid_session"),
        c.ns(g, "sim_card_in_memory"),
        c.ns(g, "sim_card_ccid_apdu_level"),
    ) {
        let per_apdu = (ccid - core) / 3.0;
        notes = format!(
            "- **Framing cost: {per_apdu:.0} ns an APDU** (the replay pair's difference, {:.2}× the core path):\n  \
             the session writes the XfrBlock header into its own buffer and sends it with the APDU from the\n  \
             core's buffer as one message, reads the reply (whole, from this framed pipe; its exchange state\n  \
             machine checks it), decodes the DataBlock from the receive buffer, copies the response out and\n  \
             wipes what it received; the loopback reader takes the XfrBlock header apart and has the card\n  \
             answer the APDU where the session holds it, behind its reply header. The simulated card itself\n  \
             costs {:.0} ns an APDU, and the CCID path through the reader simulator is {:.1}× it. Through a real USB reader an APDU takes at least one full-speed\n  \
             frame each way (1 ms) plus the card's time.\n",
            ccid / core,
            sim / 3.0,
            sim_ccid / sim,
        );
    }
    (table.trim_end().to_string(), notes)
}
