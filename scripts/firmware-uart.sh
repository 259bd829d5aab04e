#!/usr/bin/env bash
# The firmware that really runs: firmware-uart/ (Cortex-M4F, QEMU netduinoplus2) unblocks a PIV
# card over its USART with ISO 7816-3 T=1. QEMU's USART has no smart-card mode, so its
# `-serial` carries the T=1 bytes over TCP to `uart-card` (tests/src/bin/uart-card.rs): the
# simulated PIV card (PIN blocked) behind a card-side T=1, which loses, garbles and delays
# bytes by a seeded schedule. The firmware must recover through T=1 error handling; it reports
# its outcome and peak stack through ARM semihosting, and `uart-card` checks that the card ended
# unblocked with the new PIN, no PUK try spent, RESET RETRY COUNTER run once. Prints the flash
# (text + data) of the image next to them. Bounded: QEMU gets 60 s (a run takes a few).
#
# Environment: CARGO_TARGET_DIR (host build; the firmware goes to $CARGO_TARGET_DIR/firmware, as
# in .ci/run, unless FIRMWARE_TARGET_DIR says where), FIRMWARE_UART_SEED (the fault schedule;
# the default one hits every kind of fault: lost, garbled, delayed, both ways),
# FIRMWARE_UART_RATE (chance that a block is hit, default 0.3), FIRMWARE_UART_TRACE=1 (print
# every block both ways with its fault; the blocks carry the simulated card's test PUK and PIN).
set -euo pipefail
cd "$(dirname "$0")/.."
HOST_TARGET=${CARGO_TARGET_DIR:-$PWD/target}
FW_TARGET=${FIRMWARE_TARGET_DIR:-$HOST_TARGET/firmware}
BIN="$FW_TARGET/thumbv7em-none-eabihf/release/cardunlock-firmware-uart"
SEED=${FIRMWARE_UART_SEED:-24}
RATE=${FIRMWARE_UART_RATE:-0.3}
require=(--require-every-fault)
[ -z "${FIRMWARE_UART_SEED:-}" ] || require=()
[ -z "${FIRMWARE_UART_TRACE:-}" ] || require+=(--trace)

. scripts/lib.sh
need_qemu_arm firmware-uart

(cd firmware-uart && CARGO_TARGET_DIR="$FW_TARGET" cargo build -q --release --locked)
cargo build -q --locked -p cardunlock-tests --bin uart-card
flash=$(size -A "$BIN" | awk '$1 == ".vector_table" || $1 == ".text" || $1 == ".rodata" || $1 == ".data" { s += $2 } END { print s }')
ram=$(size -A "$BIN" | awk '$1 == ".data" || $1 == ".bss" || $1 == ".uninit" { s += $2 } END { print s }')

work=$(mktemp -d)
card_pid=""
cleanup() { [ -z "$card_pid" ] || kill "$card_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
"$HOST_TARGET/debug/uart-card" --seed "$SEED" --rate "$RATE" "${require[@]}" >"$work/card.out" 2>&1 &
card_pid=$!
addr=""
for _ in $(seq 100); do
  addr=$(sed -n 's/^uart-card: listening on //p' "$work/card.out")
  [ -n "$addr" ] && break
  kill -0 "$card_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$work/card.out" >&2; echo "firmware-uart: uart-card did not start" >&2; exit 1; }

qemu_rc=0
timeout 60 qemu-system-arm -M netduinoplus2 -nographic -monitor none -serial "tcp:$addr" \
  -semihosting-config enable=on,target=native -kernel "$BIN" >"$work/fw.out" 2>&1 </dev/null || qemu_rc=$?
card_rc=0
wait "$card_pid" || card_rc=$?
card_pid=""

echo "firmware-uart: flash $flash bytes, static RAM $ram bytes (PIV unblock over USART T=1, thumbv7em-none-eabihf, opt-level s, LTO)"
cat "$work/fw.out"
grep -v '^uart-card: listening' "$work/card.out" || true
[ "$qemu_rc" = 124 ] && { echo "firmware-uart: QEMU ran over its 60 s" >&2; exit 1; }
[ "$qemu_rc" = 0 ] || { echo "firmware-uart: the firmware failed (QEMU exit $qemu_rc)" >&2; exit 1; }
grep -q '^firmware-uart: stack: peak' "$work/fw.out" || { echo "firmware-uart: no stack figure from QEMU" >&2; exit 1; }
[ "$card_rc" = 0 ] || { echo "firmware-uart: the card side did not see the card unblocked" >&2; exit 1; }
