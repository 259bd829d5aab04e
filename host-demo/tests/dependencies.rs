//! The workstation programs link no server and no simulated card: with default features,
//! `cargo tree -e normal` of `cardunlock` and `cardunlock-gui` names neither
//! `cardunlock-server` nor `cardunlock-sim` (nor the vpcd glue); only the `demo` feature pulls
//! them in.

use std::process::Command;

/// The crates a login-screen program must not carry.
const DEMO_ONLY: [&str; 3] = [
    "cardunlock-server",
    "cardunlock-sim",
    "cardunlock-virtual-readers",
];

/// The package names in `cargo tree -e normal -p PACKAGE` (one per line, no duplicates marker).
fn tree(package: &str, features: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree", "-e", "normal", "--prefix", "none", "--format", "{p}",
        ])
        .args(["-p", package])
        .args(features)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn demo_only_in(names: &[String]) -> Vec<&'static str> {
    DEMO_ONLY
        .into_iter()
        .filter(|c| names.iter().any(|n| n == c))
        .collect()
}

#[test]
fn the_cli_and_the_window_link_no_server_and_no_simulated_card() {
    for package in ["cardunlock", "cardunlock-gui"] {
        let names = tree(package, &[]);
        assert!(
            names.iter().any(|n| n == "cardunlock-client"),
            "{package}: the tree was not read ({names:?})"
        );
        assert_eq!(
            demo_only_in(&names),
            Vec::<&str>::new(),
            "{package} with default features"
        );
        // The check means something: the demo feature does pull them in.
        let with_demo = tree(package, &["--features", "demo"]);
        assert!(
            demo_only_in(&with_demo).contains(&"cardunlock-server")
                && demo_only_in(&with_demo).contains(&"cardunlock-sim"),
            "{package} --features demo: {with_demo:?}"
        );
    }
}
