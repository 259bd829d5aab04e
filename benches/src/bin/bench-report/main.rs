//! Writes `BENCHMARKS.md` from one run of every benchmark: criterion's medians
//! (`<criterion>/<group>/<bench>/new/estimates.json`), the whole-process table of
//! `scripts/bench-peers.sh`, the lines of `scripts/firmware-stack.sh` and the machine facts
//! `scripts/bench-all.sh` collects, filled into the prose of `benches/report/BENCHMARKS.md.in`.
//! The "Unlock server" section of the file it replaces (written by the server's own benchmark)
//! is kept as it is.
//!
//! ```text
//! bench-report --criterion target/criterion --work DIR [--template F] [--out BENCHMARKS.md]
//! ```
//! `DIR` holds `machine.env` (`key=value` lines), `peers.md` and `firmware.txt`.

use std::path::{Path, PathBuf};

mod tables;
mod template;

use std::process::ExitCode;
use tables::values;
use template::{fill, kept_server_section};

/// A failure, with the file or figure it is about.
#[derive(Debug)]
pub(crate) struct ReportError(pub(crate) String);

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) type Result<T> = std::result::Result<T, ReportError>;

pub(crate) fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| ReportError(format!("cannot read {}: {e}", path.display())))
}

/// Criterion's medians, in nanoseconds.
pub(crate) struct Criterion {
    pub(crate) dir: PathBuf,
}

impl Criterion {
    /// The median of `group/bench`, `None` when the bench did not run.
    pub(crate) fn ns(&self, group: &str, bench: &str) -> Option<f64> {
        let path = self
            .dir
            .join(group.replace('/', "_"))
            .join(bench)
            .join("new/estimates.json");
        let text = std::fs::read_to_string(path).ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        json["median"]["point_estimate"].as_f64()
    }

    /// Like [`Self::ns`], for a figure the report cannot do without.
    pub(crate) fn need(&self, group: &str, bench: &str) -> Result<f64> {
        self.ns(group, bench)
            .ok_or_else(|| ReportError(format!("no criterion result for {group}/{bench}")))
    }

    /// A table cell: the time, and its ratio to `reference` in the same group.
    pub(crate) fn cell(&self, group: &str, bench: &str, reference: &str) -> String {
        match (self.ns(group, bench), self.ns(group, reference)) {
            (Some(t), Some(r)) => format!("{} ({:.2})", time(t), t / r),
            (Some(t), None) => time(t),
            (None, _) => "—".into(),
        }
    }
}

/// A time in nanoseconds, with a sensible unit and precision.
pub(crate) fn time(ns: f64) -> String {
    if ns >= 10_000.0 {
        format!("{:.1} µs", ns / 1000.0)
    } else if ns >= 100.0 {
        format!("{ns:.0} ns")
    } else {
        format!("{ns:.1} ns")
    }
}

pub(crate) fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut criterion, mut work) = (None, None);
    let mut template = PathBuf::from("benches/report/BENCHMARKS.md.in");
    let mut out = PathBuf::from("BENCHMARKS.md");
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .map(PathBuf::from)
            .ok_or_else(|| ReportError(format!("{flag} needs a value")))?;
        match flag.as_str() {
            "--criterion" => criterion = Some(value),
            "--work" => work = Some(value),
            "--template" => template = value,
            "--out" => out = value,
            _ => return Err(ReportError(format!("unknown option {flag}"))),
        }
    }
    let usage = || {
        ReportError(
            "usage: bench-report --criterion DIR --work DIR [--template F] [--out F]".into(),
        )
    };
    let c = Criterion {
        dir: criterion.ok_or_else(usage)?,
    };
    let values = values(&c, &work.ok_or_else(usage)?)?;
    let mut text = fill(&read(&template)?, &values)?.trim_end().to_string();
    text.push('\n');
    if let Ok(old) = std::fs::read_to_string(&out) {
        let kept = kept_server_section(&old);
        if !kept.is_empty() {
            text.push_str(kept);
            text.push('\n');
        }
    }
    std::fs::write(&out, text)
        .map_err(|e| ReportError(format!("cannot write {}: {e}", out.display())))?;
    eprintln!("bench-report: wrote {}", out.display());
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-report: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn fill_replaces_every_placeholder_and_refuses_drift() {
        let mut v = BTreeMap::new();
        v.insert("a", "1".to_string());
        v.insert("b", "two".to_string());
        assert_eq!(fill("x {{a}} y {{b}}.", &v).unwrap(), "x 1 y two.");
        assert!(
            fill("x {{a}} {{c}}", &v).is_err(),
            "a placeholder without a value"
        );
        assert!(
            fill("x {{a}}", &v).is_err(),
            "a value without a placeholder"
        );
        assert!(fill("x {{a", &v).is_err(), "an unclosed placeholder");
    }

    #[test]
    fn times_take_a_readable_unit() {
        assert_eq!(time(12.34), "12.3 ns");
        assert_eq!(time(345.6), "346 ns");
        assert_eq!(time(12_345.0), "12.3 µs");
    }

    #[test]
    fn the_template_and_the_generator_agree() {
        let template = include_str!("../../../report/BENCHMARKS.md.in");
        let dir = std::env::temp_dir().join(format!("bench-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("machine.env"),
            "cpu=CPU\ncores=2\nmem=1 GiB\nkernel=K\nrustc=R\ndate=D\nload=L\nyubico=Y\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("peers.md"),
            "| tool | APDUs |\n|---|---|\n| `cardunlock unblock …` | 3 | a | b | c | d | 0.75 |\n\
             | `yubico-piv-tool …` | 5 | a | b | c | d | 1 |\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("firmware.txt"),
            "PIV: flash 6000 bytes\nPIV: peak 2000 bytes\nGIDS: peak 3000 bytes\n",
        )
        .unwrap();
        // No criterion results: the figures that need them are refused by name.
        let c = Criterion {
            dir: dir.join("criterion"),
        };
        let err = values(&c, &dir).unwrap_err().to_string();
        assert!(err.contains("no criterion result for encode/"), "{err}");
        // With every placeholder given, the template fills completely.
        let mut v = BTreeMap::new();
        for name in template.split("{{").skip(1) {
            let name = &name[..name.find("}}").unwrap()];
            let key: &'static str = Box::leak(name.to_string().into_boxed_str());
            v.insert(key, format!("<{name}>"));
        }
        let text = fill(template, &v).unwrap();
        assert!(!text.contains("{{"));
        assert!(text.contains("<targets>") && text.contains("<firmware>"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_server_section_is_kept() {
        let old = "# Benchmarks\nold\n\n## Unlock server: SQLite\nfigures\n";
        assert_eq!(
            kept_server_section(old),
            "\n## Unlock server: SQLite\nfigures"
        );
        assert_eq!(kept_server_section("# Benchmarks\n"), "");
    }
}
