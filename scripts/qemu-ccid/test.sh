#!/usr/bin/env bash
# The nusb backend end to end through a real Linux USB stack: QEMU's emulated usb-ccid reader in a
# throw-away guest, a blocked simulated PIV card behind it (cardunlock sim-card --vscard on the
# host). In one guest boot:
#   1. ccid_probe (cardunlock-ccid's example): lists the reader, ATR, PIV SELECT, ABORT;
#   2. cardunlock --transport ccid status          -> PIN BLOCKED
#   +  a second program holding the reader -> "in use by another program", exit 4;
#   +  a wrong PUK -> exit 1, "2 tries left", exactly one PUK try gone;
#   3. cardunlock --transport ccid unblock --puk 12345678 --new-pin 802517 -> unlocked
#   4. cardunlock --transport ccid status          -> PIN tries left 3
# then, in a second boot, status / unblock / status of a card answering whole APDUs (data plus SW
# to a case 4 command, as SPICE smart-card passthrough does) instead of as a T=0 card.
# and checks each step's output. Fails loudly when the guest cannot boot (run.sh exits 125/124).
#
#   bash scripts/qemu-ccid/test.sh            # set-up (needs root or sudo), builds, runs
#   QEMU_CCID_SKIP_SETUP=1 bash scripts/qemu-ccid/test.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
GUEST_TARGET=x86_64-unknown-linux-gnu

fail() {
  echo "qemu-ccid test: FAILED: $*" >&2
  exit 1
}

[ "${QEMU_CCID_SKIP_SETUP:-0}" = 1 ] || bash scripts/qemu-ccid/setup.sh

echo "== qemu-ccid: building the host card bridge and the static guest programs"
cargo build --locked -p cardunlock --no-default-features --features demo
# crt-static with an explicit --target: the guest programs are static, build scripts and proc
# macros stay dynamic. No libpcsclite: the CCID path must not need PC/SC.
RUSTFLAGS="-C target-feature=+crt-static" cargo build --locked --release --target "$GUEST_TARGET" \
  -p cardunlock-ccid --features nusb --example ccid_probe
RUSTFLAGS="-C target-feature=+crt-static" cargo build --locked --release --target "$GUEST_TARGET" \
  -p cardunlock --no-default-features --features ccid
PROBE=$TARGET_DIR/$GUEST_TARGET/release/examples/ccid_probe
CLI=$TARGET_DIR/$GUEST_TARGET/release/cardunlock
export CARDUNLOCK=${CARDUNLOCK:-$TARGET_DIR/debug/cardunlock}

echo "== qemu-ccid: guest run"
LOG=$(mktemp)
# take_console STATUS WHAT [MORE]: the guest's console (CR stripped) into $console; a run that
# timed out or could not start QEMU (STATUS 124, 125) fails with "WHAT (status STATUS)MORE".
take_console() {
  console=$(sed 's/\r$//' "$LOG")
  case $1 in
    124 | 125) fail "$2 (status $1)${3:-}" ;;
  esac
}
trap 'rm -f "$LOG"' EXIT
set +e
# Each step prints a marker; the first failing step ends the script with its status.
QEMU_CCID_LOG=$LOG bash scripts/qemu-ccid/run.sh --add "$PROBE" --add "$CLI" /bin/busybox sh -c '
  set -e
  echo "== step probe"; ccid_probe
  echo "== step status"; cardunlock --transport ccid status
  echo "== step busy"
  CCID_PROBE_HOLD_MS=4000 ccid_probe >/dev/null & holder=$!
  sleep 2
  if cardunlock --transport ccid status; then echo "busy: status ran on a held reader"; else echo "busy: exit $?"; fi
  wait $holder
  echo "== step wrong-puk"
  if cardunlock --transport ccid unblock --puk 87654321 --new-pin 802517; then echo "wrong-puk: accepted"; else echo "wrong-puk: exit $?"; fi
  cardunlock --transport ccid status
  echo "== step unblock"; cardunlock --transport ccid unblock --puk 12345678 --new-pin 802517
  echo "== step status-after"; cardunlock --transport ccid status
  echo "== steps done"'
status=$?
set -e
take_console "$status" "the QEMU guest did not run the test" ": see the messages above"

# The output of one step: the lines between its marker and the next.
step() { printf '%s\n' "$console" | sed -n "/^== step $1\$/,/^== step/p"; }
check() {
  local name=$1 pattern=$2
  if step "$name" | grep -qE "$pattern"; then
    echo "qemu-ccid test: $name: ok ($(step "$name" | grep -E "$pattern" | head -n1))"
  else
    fail "step $name: expected /$pattern/ in its output"
  fi
}
check probe "ccid_probe: OK"
check probe "PIN status -> SW 6983 \(PIN blocked\)"
check status "PIV card.*PIN BLOCKED"
check busy "in use by another program \(is pcscd using it\?"
check busy "^busy: exit 4$"
check wrong-puk "Wrong PUK\. 2 tries left\."
check wrong-puk "^wrong-puk: exit 1$"
check wrong-puk "PIN BLOCKED, PUK tries left 2"
check unblock "unlocked successfully"
check status-after "PIV card.*PIN tries left 3"
printf '%s\n' "$console" | grep -q "^== steps done" || fail "the guest script stopped early (status $status)"
[ "$status" = 0 ] || fail "the guest script exited $status"

# Second boot: the card answers whole APDUs, as SPICE smart-card passthrough (and any APDU-level
# card behind ccid-card-passthru) does: a case 4 command (SELECT) comes back as data plus 90 00
# instead of 61 XX. The session must take that (t0::Replies::ApduLevel).
echo "== qemu-ccid: guest run, card answering at APDU level (as SPICE passthrough)"
: >"$LOG"
set +e
QEMU_CCID_LOG=$LOG bash scripts/qemu-ccid/run.sh \
  --card "\"$CARDUNLOCK\" sim-card --blocked --apdu-level --vscard \"\$QEMU_CCID_SOCKET\"" \
  --add "$CLI" /bin/busybox sh -c '
  set -e
  echo "== step apdu-status"; cardunlock --transport ccid status
  echo "== step apdu-unblock"; cardunlock --transport ccid unblock --puk 12345678 --new-pin 802517
  echo "== step apdu-status-after"; cardunlock --transport ccid status
  echo "== steps done"'
status=$?
set -e
take_console "$status" "the QEMU guest did not run the APDU-level test"
check apdu-status "PIV card.*PIN BLOCKED"
check apdu-unblock "unlocked successfully"
check apdu-status-after "PIV card.*PIN tries left 3"
printf '%s\n' "$console" | grep -q "^== steps done" || fail "the APDU-level guest script stopped early (status $status)"
[ "$status" = 0 ] || fail "the APDU-level guest script exited $status"
echo "qemu-ccid test: all steps passed"
