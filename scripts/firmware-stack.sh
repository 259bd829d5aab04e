#!/usr/bin/env bash
# Peak stack of the PIV and GIDS unblocks on the firmware-like binary (firmware-size/, feature
# `stack`): the binary paints its free stack, runs each unblock to completion against replayed
# card answers, finds the deepest word written, and prints it through ARM semihosting; fails
# when the PIV unblock peaks above 2 KiB or the GIDS one above 3 KiB. It runs
# under QEMU's netduinoplus2 board (STM32F405, Cortex-M4F: the binary's memory.x, flash at
# 0x08000000, 128 KiB RAM at 0x20000000). Prints the flash size (text + data) of the default
# build (PIV unblock only) next to it.
#
# Installs qemu-system-arm when missing (from bookworm-backports when that source is configured:
# the image's other QEMU packages come from there, and the bookworm one conflicts with them).
# Environment: CARGO_TARGET_DIR (the firmware goes to $CARGO_TARGET_DIR/firmware, as in .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
FW_TARGET=${CARGO_TARGET_DIR:-$PWD/target}/firmware
BIN="$FW_TARGET/thumbv7em-none-eabihf/release/cardunlock-firmware-size"

. scripts/lib.sh
need_qemu_arm firmware-stack

build() { (cd firmware-size && CARGO_TARGET_DIR="$FW_TARGET" cargo build -q --release --locked "$@"); }
build
flash=$(size -A "$BIN" | awk '$1 == ".vector_table" || $1 == ".text" || $1 == ".rodata" || $1 == ".data" { s += $2 } END { print s }')
ram=$(size -A "$BIN" | awk '$1 == ".data" || $1 == ".bss" || $1 == ".uninit" { s += $2 } END { print s }')
build --features stack
out=$(timeout 60 qemu-system-arm -M netduinoplus2 -nographic -monitor none -serial none \
  -semihosting-config enable=on,target=native -kernel "$BIN" 2>&1 </dev/null)
echo "firmware: flash $flash bytes, static RAM $ram bytes (PIV unblock build, thumbv7em-none-eabihf, opt-level s, LTO)"
printf '%s\n' "$out" | sed 's/^stack: /firmware: stack: /'
grep -q FAILED <<<"$out" && { echo "firmware-stack: a flow failed" >&2; exit 1; }
[ "$(grep -c '^stack: ' <<<"$out")" = 2 ] || { echo "firmware-stack: no stack figures from QEMU" >&2; exit 1; }
# The budgets, with the driver's buffers sized for short APDUs (firmware-size/src/main.rs):
# PIV at most 2 KiB, GIDS at most 3 KiB of peak stack.
over() { awk -v max="$2" -v flow="$1" 'index($0, flow) && match($0, /peak [0-9]+/) {
  n = substr($0, RSTART + 5, RLENGTH - 5) + 0; if (n > max) { print flow ": " n " > " max; bad = 1 } }
  END { exit !bad }' <<<"$out"; }
if over "PIV PUK unblock" 2048 || over "GIDS admin-key unblock" 3072; then
  echo "firmware-stack: over the stack budget" >&2
  exit 1
fi
