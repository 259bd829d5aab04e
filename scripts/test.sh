#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the system packages, starts pcscd with the
# vpcd virtual readers and a throw-away PostgreSQL cluster, and runs every test of the workspace
# (the real-pcscd tests included), then the USB CCID test in a QEMU guest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/start-pcscd.sh
# The unlock server's tests run on SQLite and on this throw-away PostgreSQL cluster (loopback).
CARDUNLOCK_TEST_POSTGRES="$(bash scripts/start-postgres.sh)"
export CARDUNLOCK_TEST_POSTGRES
cargo test --workspace --locked --no-fail-fast
# USB CCID through a real Linux USB stack: QEMU's emulated usb-ccid reader in a throw-away guest,
# cardunlock --transport ccid status and unblock of a simulated card behind it (about 1-2 min with
# the static build; fails loudly when the guest cannot boot).
bash scripts/qemu-ccid/test.sh
