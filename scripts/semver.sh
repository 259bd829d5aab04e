#!/usr/bin/env bash
# The published crates' API against the release tag: cargo-semver-checks compares the rustdoc
# JSON of each crate at the tag with the working tree's and fails on a breaking change the
# version number does not allow (0.1.x -> 0.1.y must not break; 0.2.0 may).
#
#   bash scripts/semver.sh            # against v0.1.0
#   SEMVER_BASELINE=v0.2.0 bash scripts/semver.sh
#
# Without the tag (a fresh clone before the first release) there is nothing to compare: the
# script says so and succeeds. Without the tool it installs it (`cargo install --locked`: about
# 8 CPU-minutes of build, 11 minutes with one job); outside CI, when that fails, it prints a
# notice and succeeds. In CI (`CI=true` or `CI=1`) a tool that cannot be had is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

baseline=${SEMVER_BASELINE:-v0.1.0}
tool_version=${SEMVER_CHECKS_VERSION:-0.51.0}

skip() {
  if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then
    echo "semver: $1 (in CI this is a failure)" >&2
    exit 1
  fi
  echo "semver: skipped: $1"
  exit 0
}

if ! git rev-parse -q --verify "refs/tags/$baseline" >/dev/null; then
  # Before the first release there is no baseline; CI passes too (nothing can have broken).
  echo "semver: skipped: no tag $baseline in this repository yet (nothing released to compare with)"
  exit 0
fi

if ! cargo semver-checks --version >/dev/null 2>&1; then
  echo "semver: installing cargo-semver-checks $tool_version (cargo install --locked)"
  cargo install cargo-semver-checks --locked --version "$tool_version" ||
    skip "cargo-semver-checks is not installed and could not be installed"
fi

# One feature set per crate, the one docs.rs documents (`defmt` and `log` exclude each other,
# so "all features" does not build for the core and the CCID transport).
failed=()
check() {
  local crate=$1
  shift
  echo "semver: $crate against $baseline"
  cargo semver-checks check-release -p "$crate" --baseline-rev "$baseline" "$@" || failed+=("$crate")
}
check cardunlock-core --default-features --features std --features log
check cardunlock-protocol --all-features
check cardunlock-ccid --default-features --features nusb --features log
if [ ${#failed[@]} -gt 0 ]; then
  echo "semver: breaking against $baseline without a version that allows it: ${failed[*]}" >&2
  exit 1
fi
echo "semver: no breaking change against $baseline that the versions do not allow"
