#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the system packages, starts pcscd with the
# vpcd virtual readers and a throw-away PostgreSQL cluster, and runs every test of the workspace
# (the real-pcscd tests included), then the USB CCID test in a QEMU guest, the unlock window
# under Xvfb, and the Windows build under Wine.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/start-pcscd.sh
# The unlock server's tests run on SQLite and on this throw-away PostgreSQL cluster (loopback).
CARDUNLOCK_TEST_POSTGRES="$(bash scripts/start-postgres.sh)"
export CARDUNLOCK_TEST_POSTGRES
# The demos, `cardunlock sim-card` and the window's demo mode are behind the `demo` feature (the
# workstation programs link no server by default): the tests that use them need it.
# host-demo/tests/server_binary.rs runs the server program next to the CLI.
cargo build --locked -p cardunlock-server
cargo test --workspace --locked --no-fail-fast \
  --features cardunlock/demo,cardunlock-gui/demo,cardunlock-client/demo,cardunlock-credprov/demo
# USB CCID through a real Linux USB stack: QEMU's emulated usb-ccid reader in a throw-away guest,
# cardunlock --transport ccid status and unblock of a simulated card behind it (about 1-2 min with
# the static build; fails loudly when the guest cannot boot).
bash scripts/qemu-ccid/test.sh
# The unlock window for real: under Xvfb (software OpenGL), driven by keystrokes through the demo
# unlock, a screenshot per step, each checked non-empty and different from the one before, texts
# read back with OCR (about 1-2 min with the binary built).
bash scripts/gui/xvfb-test.sh
# Windows: the CLI and the window cross-built for x86_64-pc-windows-gnu (mingw-w64), then
# `cardunlock.exe demo --non-interactive` under Wine must print the success line, and the window
# must load and draw the questions (Wine's WinSCard is a stub: PC/SC is compile-checked only).
bash scripts/windows/build-and-run.sh
# The Windows credential provider: the shipped DLL's four exports and dependency tree, regsvr32
# register / unregister under Wine, and a harness playing LogonUI through COM through a whole
# online unlock (a test build with the demo server and card in-process; about 3-5 min).
bash scripts/windows/credential-provider.sh
