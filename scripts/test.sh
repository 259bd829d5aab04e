#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the system packages, starts pcscd with the
# vpcd virtual readers, and runs every test of the workspace (the real-pcscd tests included).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/start-pcscd.sh
cargo test --workspace --locked --no-fail-fast
