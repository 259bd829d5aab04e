#!/usr/bin/env bash
# Runs a static Linux program inside a throw-away QEMU guest that has QEMU's emulated USB CCID
# reader (usb-ccid) with a card behind it (ccid-card-passthru), and exits with the program's exit
# status. Method: docs/qemu-ccid.md. Needs scripts/qemu-ccid/setup.sh first.
#
#   scripts/qemu-ccid/run.sh [--card COMMAND | --no-card] [--add FILE]... BINARY [ARGS...]
#
# --add puts another static program into the guest's /bin (to run several in one boot, give
# /bin/busybox sh -c '...' as BINARY).
# BINARY must be statically linked (RUSTFLAGS="-C target-feature=+crt-static" cargo build
# --release --target x86_64-unknown-linux-gnu). It runs as /bin/<its name> in the guest, after
# usbcore and uhci-hcd are loaded and the reader has enumerated.
#
# The card: COMMAND runs on the host once QEMU listens on the VSCard socket, with the socket's path
# in $QEMU_CCID_SOCKET; by default a blocked simulated PIV card:
#   "$CARDUNLOCK" sim-card --blocked --vscard "$QEMU_CCID_SOCKET"
# where $CARDUNLOCK is a host build of cardunlock (default: cardunlock from $CARGO_TARGET_DIR or
# target/, release then debug, then $PATH).
#
# Environment: QEMU_CCID_CACHE (kernel and modules, default target/qemu-ccid), QEMU_CCID_TIMEOUT
# (seconds for the whole guest run, default 180), QEMU_CCID_LOG (keep the console log there).
#
# Exit status: the program's own, read from the guest console. 125 when the guest did not boot,
# 124 when it booted but the program did not finish in time; both say so loudly. Never 0 unless
# the program itself exited 0 inside the guest.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${QEMU_CCID_CACHE:-$ROOT/target/qemu-ccid}
TIMEOUT=${QEMU_CCID_TIMEOUT:-180}

die() {
  echo "qemu-ccid: FAILED: $1" >&2
  exit "${2:-125}"
}

card_cmd=default
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --card) card_cmd=$2; shift 2 ;;
    --add) extra+=("$2"); shift 2 ;;
    --no-card) card_cmd=""; shift ;;
    --) shift; break ;;
    -*) die "unknown option $1 (usage: run.sh [--card COMMAND | --no-card] [--add FILE]... BINARY [ARGS...])" 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || die "usage: run.sh [--card COMMAND | --no-card] [--add FILE]... BINARY [ARGS...]" 2
BINARY=$1
shift
for f in "$BINARY" "${extra[@]}"; do
  [ -x "$f" ] || die "$f is not an executable file" 2
  if file -L "$f" 2>/dev/null | grep -q "dynamically linked"; then
    die "$f is dynamically linked; build it with RUSTFLAGS=\"-C target-feature=+crt-static\" --target x86_64-unknown-linux-gnu" 2
  fi
done

command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is not installed: run scripts/qemu-ccid/setup.sh"
[ -s "$CACHE/vmlinuz" ] || die "no guest kernel in $CACHE: run scripts/qemu-ccid/setup.sh"
for m in usb-common usbcore uhci-hcd; do
  [ -s "$CACHE/modules/$m.ko" ] || die "module $m missing in $CACHE/modules: run scripts/qemu-ccid/setup.sh"
done
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] || die "busybox is not installed: run scripts/qemu-ccid/setup.sh"
file -L "$BUSYBOX" 2>/dev/null | grep -q "dynamically linked" &&
  die "$BUSYBOX is not static: install busybox-static (scripts/qemu-ccid/setup.sh)"

if [ "$card_cmd" = default ]; then
  if [ -z "${CARDUNLOCK:-}" ]; then
    for c in "${CARGO_TARGET_DIR:-$ROOT/target}/release/cardunlock" "${CARGO_TARGET_DIR:-$ROOT/target}/debug/cardunlock"; do
      [ -x "$c" ] && { CARDUNLOCK=$c; break; }
    done
    CARDUNLOCK=${CARDUNLOCK:-$(command -v cardunlock || true)}
  fi
  [ -n "${CARDUNLOCK:-}" ] || die "no host cardunlock for the card bridge: build it (cargo build -p cardunlock) or set CARDUNLOCK" 2
  card_cmd="\"$CARDUNLOCK\" sim-card --blocked --vscard \"\$QEMU_CCID_SOCKET\""
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/qemu-ccid.XXXXXX")
qemu_pid=""
card_pid=""
cleanup() {
  [ -n "$card_pid" ] && kill "$card_pid" 2>/dev/null || true
  [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- the initramfs
NAME=$(basename "$BINARY")
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"/{bin,proc,sys,dev,lib/modules,tmp}
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
# Without debug info the initramfs is smaller and boots faster.
for f in "${extra[@]}" "$BINARY"; do
  dest=$ROOTFS/bin/$(basename "$f")
  [ "$f" -ef "$BUSYBOX" ] && continue
  strip --strip-debug -o "$dest" "$f" 2>/dev/null || cp "$f" "$dest"
done
cp "$CACHE"/modules/{usb-common,usbcore,uhci-hcd}.ko "$ROOTFS/lib/modules/"
args=""
for a in "$@"; do
  args+=" '${a//\'/\'\\\'\'}'"
done
{
  cat <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "qemu-ccid: guest booted"
for m in usb-common usbcore uhci-hcd; do
  insmod /lib/modules/$m.ko || echo "qemu-ccid: insmod $m failed"
done
# Wait for the reader (08e6:4433) to enumerate, at most about 10 s.
i=0
while [ $i -lt 50 ]; do
  grep -qs 4433 /sys/bus/usb/devices/*/idProduct && break
  sleep 0.2
  i=$((i + 1))
done
grep -qs 4433 /sys/bus/usb/devices/*/idProduct || echo "qemu-ccid: no usb-ccid device enumerated"
EOF
  printf 'echo %s\n' "'qemu-ccid: running ${NAME}'"
  printf '/bin/%s%s\n' "$NAME" "$args"
  cat <<'EOF'
echo "qemu-ccid: exit status $?"
poweroff -f
EOF
} >"$ROOTFS/init"
chmod +x "$ROOTFS/init"
(cd "$ROOTFS" && find . | cpio -o -H newc --quiet | gzip -1) >"$WORK/initrd.gz"

# --- the guest, then the card
SOCKET=$WORK/vscard.sock
LOG=${QEMU_CCID_LOG:-$WORK/console.log}
: >"$LOG"
start=$(date +%s.%N)
timeout --kill-after=5 "$TIMEOUT" qemu-system-x86_64 -accel tcg -machine pc -m 256 -nographic -nic none \
  -no-reboot -kernel "$CACHE/vmlinuz" -initrd "$WORK/initrd.gz" \
  -append "console=ttyS0 rdinit=/init panic=-1 quiet loglevel=3" \
  -usb -device usb-ccid,id=ccid0 \
  -chardev "socket,id=vsc,path=$SOCKET,server=on,wait=off" \
  -device ccid-card-passthru,chardev=vsc \
  </dev/null >"$LOG" 2>&1 &
qemu_pid=$!

if [ -n "$card_cmd" ]; then
  for _ in $(seq 100); do
    [ -S "$SOCKET" ] && break
    kill -0 "$qemu_pid" 2>/dev/null || break
    sleep 0.05
  done
  [ -S "$SOCKET" ] || { cat "$LOG" >&2; die "QEMU did not open the VSCard socket $SOCKET"; }
  QEMU_CCID_SOCKET=$SOCKET bash -c "$card_cmd" >"$WORK/card.log" 2>&1 &
  card_pid=$!
fi

qemu_status=0
wait "$qemu_pid" || qemu_status=$?
qemu_pid=""
end=$(date +%s.%N)
# The console without the terminal control sequences QEMU's firmware prints.
sed -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' -e 's/\r$//' "$LOG"
if [ -n "$card_pid" ]; then
  kill "$card_pid" 2>/dev/null || true
  wait "$card_pid" 2>/dev/null || true
  card_pid=""
  sed 's/^/card: /' "$WORK/card.log" >&2
fi
awk -v a="$start" -v b="$end" 'BEGIN { printf "qemu-ccid: guest run took %.1f s\n", b - a }' >&2

if ! grep -q "qemu-ccid: guest booted" "$LOG"; then
  die "the guest did not boot (QEMU status $qemu_status); console above"
fi
status=$(sed -n 's/.*qemu-ccid: exit status \([0-9]*\).*/\1/p' "$LOG" | tail -n1)
if [ -z "$status" ]; then
  [ "$qemu_status" = 124 ] && die "the guest booted but $NAME did not finish within ${TIMEOUT}s" 124
  die "the guest booted but $NAME reported no exit status (QEMU status $qemu_status)" 124
fi
exit "$status"
