//! `--transport ccid` where no USB CCID reader can be reached (this machine has no USB bus): a
//! clear message and exit 4, never a PC/SC error, and `readers` on the default transport still
//! lists the PC/SC readers. The whole CCID path through a real USB stack runs in
//! `scripts/qemu-ccid/test.sh` (QEMU's usb-ccid reader in a guest).
#![cfg(feature = "ccid")]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_cardunlock");

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn without_a_usb_reader_every_card_command_says_so_and_touches_nothing() {
    if std::path::Path::new("/sys/bus/usb/devices").exists() {
        eprintln!("this machine has a USB bus: the no-reader case is not checked here");
        return;
    }
    for args in [
        &["--transport", "ccid", "status"][..],
        &[
            "--transport",
            "ccid",
            "unblock",
            "--puk",
            "12345678",
            "--new-pin",
            "802517",
        ],
        &["--transport", "ccid", "readers"],
    ] {
        let (code, text) = run(args);
        assert_eq!(code, Some(4), "{args:?}: {text}");
        assert!(
            text.contains("no USB CCID reader can be reached"),
            "{args:?}: {text}"
        );
        assert!(!text.to_lowercase().contains("pcsc"), "{args:?}: {text}");
    }
    let (code, text) = run(&["--transport", "ccid", "--json", "status"]);
    assert_eq!(code, Some(4), "{text}");
    assert!(text.contains("\"ok\":false,\"exit\":4"), "{text}");
}

#[test]
fn the_transport_is_checked_before_anything_runs() {
    let (code, text) = run(&["--transport", "usb", "status"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("pcsc") && text.contains("ccid"), "{text}");
}
