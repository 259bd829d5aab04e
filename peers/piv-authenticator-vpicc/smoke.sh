#!/usr/bin/env bash
# Smoke test of the piv-authenticator-vpicc peer through real pcscd + vpcd:
# builds the peer, starts it (and pcscd if none is running), drives it with
# OpenSC (opensc-tool, piv-tool) and yubico-piv-tool, prints PASS/FAIL per check
# and stops what it started.
#
# Needs: pcscd, vsmartcard-vpcd, opensc, yubico-piv-tool (Debian packages).
# Env: PORT=35963 (reader "Virtual PCD 00 00") or 35964 ("Virtual PCD 00 01"),
#      CARGO_TARGET_DIR (default /work/target-peer), SKIP_BUILD=1 to reuse a build.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-peer}
PORT=${PORT:-35963}
case "$PORT" in
  35963) READER="Virtual PCD 00 00" ;;
  35964) READER="Virtual PCD 00 01" ;;
  *) echo "PORT must be 35963 or 35964" >&2; exit 2 ;;
esac
BIN="$CARGO_TARGET_DIR/debug/piv-authenticator-vpicc"
WORK=$(mktemp -d /tmp/piv-peer-smoke.XXXXXX)

DEFAULT_KEY=010203040506070801020304050607080102030405060708
NEW_KEY=1122334455667788112233445566778811223344556677AA
SELECT=00A4040009A00000030800001000
VERIFY_EMPTY=0020008000
VERIFY_123456=0020008008313233343536FFFF
VERIFY_000000=0020008008303030303030FFFF
VERIFY_654321=0020008008363534333231FFFF
RRC_PUK_TO_654321=002C0080103132333435363738363534333231FFFF

passed=0
failed=0
PEER_PID=
PCSCD_PID=

pass() { passed=$((passed + 1)); echo "PASS  $1"; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/      | /'; }

cleanup() {
  [ -n "$PEER_PID" ] && kill -TERM "$PEER_PID" 2>/dev/null && wait "$PEER_PID" 2>/dev/null
  [ -n "$PCSCD_PID" ] && kill -TERM "$PCSCD_PID" 2>/dev/null && wait "$PCSCD_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

reader_index() {  # opensc-tool's number for $READER
  opensc-tool -l 2>/dev/null | awk -v r="$READER" 'index($0, r) && $1 ~ /^[0-9]+$/ { print $1; exit }'
}

card_present() {
  opensc-tool -l 2>/dev/null | grep -F "$READER" | grep -q Yes
}

start_peer() {  # start_peer LOGNAME ARGS...
  local log="$WORK/$1.log"; shift
  "$BIN" --port "$PORT" "$@" >"$log" 2>&1 &
  PEER_PID=$!
  for _ in $(seq 50); do card_present && return 0; sleep 0.1; done
  fail "peer $* did not show up as a card in \"$READER\"" "$(cat "$log")"
  return 1
}

stop_peer() {  # SIGTERM must end the peer with status 0
  local rc
  kill -TERM "$PEER_PID"; wait "$PEER_PID"; rc=$?; PEER_PID=
  for _ in $(seq 30); do card_present || break; sleep 0.1; done
  [ "$rc" = 0 ] && pass "peer exits 0 on SIGTERM" || fail "peer exit status $rc on SIGTERM"
}

# check NAME WANT_RC REGEX CMD... : run CMD, compare exit status ("0", "nonzero")
# and require REGEX (extended grep) in its stdout+stderr.
check() {
  local name=$1 want=$2 re=$3; shift 3
  local out rc ok=1
  out=$("$@" 2>&1); rc=$?
  case "$want" in
    0) [ "$rc" = 0 ] || ok=0 ;;
    nonzero) [ "$rc" != 0 ] || ok=0 ;;
  esac
  printf '%s\n' "$out" | grep -Eq -- "$re" || ok=0
  if [ $ok = 1 ]; then pass "$name"; else fail "$name (exit $rc, wanted $want and /$re/)" "$out"; fi
}

# sws APDU... : send APDUs in one PC/SC session with opensc-tool, print the SWs
sws() {
  local args=()
  for a in "$@"; do args+=(-s "$a"); done
  opensc-tool -r "$IDX" "${args[@]}" 2>&1 |
    sed -n 's/.*SW1=0x\(..\), SW2=0x\(..\).*/\1\2/p' | tr 'a-f' 'A-F' | tr '\n' ' ' | sed 's/ $//'
}

check_sws() {  # check_sws NAME "EXPECTED SWS" APDU...
  local name=$1 want=$2; shift 2
  local got; got=$(sws "$@")
  [ "$got" = "$want" ] && pass "$name: $got" || fail "$name" "wanted: $want
got:    $got"
}

y() { yubico-piv-tool -v 1 -r "$READER" "$@"; }

# --- build -----------------------------------------------------------------
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  start=$(date +%s)
  if cargo build --manifest-path "$HERE/Cargo.toml" >"$WORK/build.log" 2>&1; then
    pass "cargo build ($(( $(date +%s) - start )) s)"
  else
    fail "cargo build" "$(tail -30 "$WORK/build.log")"; exit 1
  fi
fi
[ -x "$BIN" ] || { echo "no binary at $BIN" >&2; exit 1; }

# --- pcscd -------------------------------------------------------------------
if ! opensc-tool -l 2>/dev/null | grep -qF "$READER"; then  # no pcscd with vpcd yet
  pcscd -f -a >"$WORK/pcscd.log" 2>&1 &
  PCSCD_PID=$!
  for _ in $(seq 50); do opensc-tool -l 2>/dev/null | grep -qF "$READER" && break; sleep 0.1; done
  echo "info  started pcscd (pid $PCSCD_PID)"
fi
printf 'info  %s\n' "$(dpkg-query -W -f '${Package} ${Version}, ' pcscd vsmartcard-vpcd opensc yubico-piv-tool 2>/dev/null)"

KEYFILE="$WORK/default.key"
echo "$DEFAULT_KEY" | sed 's/../&:/g; s/:$//' >"$KEYFILE"
BADKEYFILE="$WORK/bad.key"
echo "11${DEFAULT_KEY:2}" | sed 's/../&:/g; s/:$//' >"$BADKEYFILE"

# --- 1. the applet as it is (factory-fresh RAM card) -------------------------
echo "== piv-authenticator as published (no compatibility shims)"
start_peer faithful || exit 1
IDX=$(reader_index)
check "opensc-tool -l lists \"$READER\" with a card" 0 "^$IDX +Yes +$READER" opensc-tool -l
check "opensc-tool -a shows the ATR" 0 "3b:95:13:81:01:80:73:ff:01:00:0b" opensc-tool -r "$IDX" -a
check "opensc-tool -n: OpenSC's PIV driver claims it" 0 "Personal Identity Verification Card" opensc-tool -r "$IDX" -n
check "piv-tool -A M:9B:03 (default 3DES mgmt key)" 0 "" env PIV_EXT_AUTH_KEY="$KEYFILE" piv-tool -r "$IDX" -A M:9B:03
check "piv-tool -A M:9B:03 with a wrong key fails" nonzero "admin_mode failed" env PIV_EXT_AUTH_KEY="$BADKEYFILE" piv-tool -r "$IDX" -A M:9B:03
check_sws "block PIN: VERIFY? / 3 wrong / VERIFY? / correct while blocked" "9000 63C3 63C2 63C1 6983 63C0 6983" \
  $SELECT $VERIFY_EMPTY $VERIFY_000000 $VERIFY_000000 $VERIFY_000000 $VERIFY_EMPTY $VERIFY_123456
check_sws "RESET RETRY COUNTER with PUK 12345678 -> PIN 654321, left unverified" "9000 9000 63C3 9000 9000" \
  $SELECT $RRC_PUK_TO_654321 $VERIFY_EMPTY $VERIFY_654321 $VERIFY_EMPTY
opensc-tool -r "$IDX" --reset >/dev/null 2>&1
check_sws "quirk: PIN status survives a card reset (applet's deselect is a no-op)" "9000 9000" $SELECT $VERIFY_EMPTY
check_sws "quirk: SELECT with the 5-byte AID -> 6A82" "6A82" 00A4040005A000000308
check "quirk: yubico-piv-tool status fails (5-byte SELECT)" nonzero "Failed selecting application: 6a82" y -a status
stop_peer

# --- 2. with --yubico-compat: yubico-piv-tool end to end ---------------------
echo "== with --yubico-compat (5-byte SELECT widened, Le-absent answered with data)"
start_peer compat --yubico-compat || exit 1
IDX=$(reader_index)
check "yubico-piv-tool status" 0 "PIN tries left:[[:space:]]+3" y -a status
check "yubico-piv-tool verify-pin 123456" 0 "Successfully verified PIN" y -a verify-pin -P 123456
check "verify-pin 000000 (1/3)" nonzero "2 tries left" y -a verify-pin -P 000000
check "verify-pin 000000 (2/3)" nonzero "1 tries left" y -a verify-pin -P 000000
check "verify-pin 000000 (3/3) blocks" nonzero "blocked" y -a verify-pin -P 000000
check "verify-pin 123456 while blocked fails" nonzero "blocked" y -a verify-pin -P 123456
check "unblock-pin -P 12345678 -N 654321" 0 "Successfully unblocked the pin code" y -a unblock-pin -P 12345678 -N 654321
check "verify-pin with the new PIN 654321" 0 "Successfully verified PIN" y -a verify-pin -P 654321
check "set-mgm-key default -> new 3DES key" 0 "Successfully set new management key" y -a set-mgm-key --key=$DEFAULT_KEY -n $NEW_KEY
check "set-mgm-key with the old key now fails" nonzero "Failed authentication with the application" y -a set-mgm-key --key=$DEFAULT_KEY -n $NEW_KEY
check "set-mgm-key new -> default" 0 "Successfully set new management key" y -a set-mgm-key --key=$NEW_KEY -n $DEFAULT_KEY
check "piv-tool -A M:9B:03 after restoring the default key" 0 "" env PIV_EXT_AUTH_KEY="$KEYFILE" piv-tool -r "$IDX" -A M:9B:03
stop_peer

# --- 3. --state-dir keeps counters across restarts; --reset-clears-auth ------
echo "== --state-dir and --reset-clears-auth"
STATE="$WORK/state"
start_peer state1 --state-dir "$STATE" || exit 1
IDX=$(reader_index)
check_sws "block the PIN" "9000 63C2 63C1 6983" $SELECT $VERIFY_000000 $VERIFY_000000 $VERIFY_000000
stop_peer
start_peer state2 --state-dir "$STATE" --reset-clears-auth || exit 1
IDX=$(reader_index)
check_sws "PIN still blocked after a restart" "9000 63C0" $SELECT $VERIFY_EMPTY
check_sws "unblock and verify" "9000 9000 9000 9000" $SELECT $RRC_PUK_TO_654321 $VERIFY_654321 $VERIFY_EMPTY
opensc-tool -r "$IDX" --reset >/dev/null 2>&1
check_sws "--reset-clears-auth: PIN unverified after a card reset" "9000 63C3" $SELECT $VERIFY_EMPTY
stop_peer

echo "smoke: $passed passed, $failed failed"
[ "$failed" = 0 ]
