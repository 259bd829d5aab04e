#!/usr/bin/env bash
# Regenerates BENCHMARKS.md from one run of every benchmark, on this machine:
#  - the criterion benches of cardunlock-benches (apdu_codec, crypto, flows, ccid), read back
#    from target/criterion/*/new/estimates.json (medians);
#  - scripts/bench-peers.sh: the whole-process PIV unblock against yubico-piv-tool on the
#    piv-authenticator card through pcscd (needs pcscd + vpcd, yubico-piv-tool, libclang-dev);
#  - scripts/firmware-stack.sh: the firmware-like binary's flash size and peak stack (QEMU);
# and writes the machine it ran on (CPU, cores, memory, load, kernel, rustc) at the top.
# The "Unlock server" section (written by the server's own benchmark) is kept as it is.
# Takes ~5 minutes plus build time. Environment: RUNS (bench-peers pairs, default 15),
# CARGO_TARGET_DIR, PEER_TARGET_DIR (as peers/ci.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$(mktemp -d /tmp/bench-all.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "bench-all: building" >&2
cargo bench -q -p cardunlock-benches --locked --no-run >&2
cargo build -q --release -p cardunlock --locked >&2
load_before=$(load)
for b in apdu_codec crypto flows ccid; do
  echo "bench-all: cargo bench --bench $b" >&2
  cargo bench -q -p cardunlock-benches --locked --bench "$b" >/dev/null
done
echo "bench-all: scripts/bench-peers.sh" >&2
CARDUNLOCK="$TARGET/release/cardunlock" bash scripts/bench-peers.sh >"$WORK/peers.md"
echo "bench-all: scripts/firmware-stack.sh" >&2
bash scripts/firmware-stack.sh >"$WORK/firmware.txt"
load_after=$(load)

{
  echo "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  echo "cores=$(nproc)"
  echo "mem=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "kernel=$(uname -sr)"
  echo "rustc=$(rustc --version)"
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "load=$load_before at the start, $load_after at the end (1, 5, 15 min)"
  echo "yubico=$(yubico-piv-tool --version 2>/dev/null | head -1)"
} >"$WORK/machine.env"

cargo run -q -p cardunlock-benches --locked --bin bench-report -- \
  --criterion "$TARGET/criterion" --work "$WORK" --out BENCHMARKS.md
