//! The window's command line: a wrong one is refused before any window opens, with the message
//! and the usage on standard error and exit code 2.

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cardunlock-gui"))
        .args(args)
        .output()
        .expect("the window's binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Proves each usage error keeps its message and exit code 2 (the typed errors print as the
/// text did), and `--help` prints the usage alone.
#[test]
fn usage_errors_name_the_problem_and_exit_2() {
    for (args, message) in [
        (
            &["--transport", "usb"][..],
            "cardunlock-gui: --transport usb: choose pcsc or ccid\n",
        ),
        (&["--server"], "cardunlock-gui: --server needs a value\n"),
        (
            &["--server", "https://x"],
            "cardunlock-gui: --server needs --cert PEM (the server's certificate)\n",
        ),
        (&["--bogus"], "cardunlock-gui: unknown argument: --bogus\n"),
        (
            &[],
            "cardunlock-gui: choose --demo, --demo-no-questions or --server URL --cert PEM\n",
        ),
    ] {
        let (code, stderr) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with(message), "{args:?}: {stderr}");
        assert!(stderr.contains("usage:"), "{args:?}: {stderr}");
    }
    let (code, stderr) = run(&["--server", "https://x", "--cert", "/nonexistent/server.pem"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with("cardunlock-gui: ") && stderr.contains("/nonexistent/server.pem"),
        "{stderr}"
    );
    let (code, stderr) = run(&["--help"]);
    assert_eq!(code, Some(2));
    assert!(stderr.starts_with("usage:"), "{stderr}");
}
