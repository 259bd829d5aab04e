#!/usr/bin/env bash
# Whole-process PIV PUK unblock, cardunlock against yubico-piv-tool, on the same independent card
# in the same run: Nitrokey's piv-authenticator (peers/piv-authenticator-vpicc, with its
# --yubico-compat shims, which yubico-piv-tool 2.2 needs) behind real pcscd and vpcd reader 1.
#
#   cardunlock      -r "Virtual PCD 00 01" unblock --puk 12345678 --new-pin 802517
#   yubico-piv-tool -r "Virtual PCD 00 01" -a unblock-pin -P 12345678 -N 802517
#
# Runs them alternately (RUNS pairs, default 41, after 2 warm-up pairs), timing each whole
# process (fork, exec, PC/SC context, connect, APDUs, exit) with bash's EPOCHREALTIME. Counts
# each run's APDUs from the card's own log (the peer's -v prints one "> " line per command it
# receives). Prints a Markdown table: APDUs, median / min / max wall time, and the median of
# the per-pair ratios cardunlock / yubico-piv-tool. The card stays unblocked between runs:
# RESET RETRY COUNTER does the same work on it either way, and every run of both tools must
# succeed (the script stops on the first failure).
#
# Needs: pcscd with vsmartcard-vpcd (scripts/start-pcscd.sh is run first), yubico-piv-tool,
# libclang-dev (the peer's build). Takes the machine-wide lock of reader 1 as peers/ci.sh does.
# Environment: RUNS, CARDUNLOCK (a built binary; default: cargo build --release),
# PEER_TARGET_DIR (as peers/ci.sh; default peers/target).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUNS=${RUNS:-41}
R="Virtual PCD 00 01"
PORT=35964
PEER_TARGET=${PEER_TARGET_DIR:-$ROOT/peers/target}
PEER_LOG=$(mktemp /tmp/bench-peers-card.XXXXXX)
PID=

command -v yubico-piv-tool >/dev/null || { echo "bench-peers: yubico-piv-tool is not installed (apt-get install yubico-piv-tool)" >&2; exit 1; }
bash scripts/start-pcscd.sh >/dev/null

if [ -z "${CARDUNLOCK:-}" ]; then
  cargo build -q --release -p cardunlock --locked >&2
  CARDUNLOCK="${CARGO_TARGET_DIR:-$ROOT/target}/release/cardunlock"
fi
(cd peers/piv-authenticator-vpicc && CARGO_TARGET_DIR="$PEER_TARGET" cargo build -q --locked) >&2
PEER="$PEER_TARGET/debug/piv-authenticator-vpicc"

stop() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; PID=; fi; if [ -n "${KEEP_CARD_LOG:-}" ]; then cp "$PEER_LOG" "$KEEP_CARD_LOG"; fi; rm -f "$PEER_LOG"; }
trap stop EXIT

# The machine-wide lock of reader 1 (cardunlock_virtual_readers::ReaderLock: whoever has 127.0.0.1:25964
# bound), held until this script exits; see peers/ci.sh.
. scripts/lib.sh
lock_reader 1 || { echo "bench-peers: could not lock $R" >&2; exit 1; }

"$PEER" --port $PORT --yubico-compat -v >"$PEER_LOG" 2>&1 & PID=$!
for _ in $(seq 100); do
  "$CARDUNLOCK" --json readers 2>/dev/null | grep -q "\"name\":\"$R\",\"card\":true" && break
  sleep 0.1
done

apdus_so_far() { grep -cE '(^|: )> ' "$PEER_LOG" || true; }
# Microseconds the card spent on the answers logged after line $1 of its log.
card_us() { tail -n +"$(($1 + 1))" "$PEER_LOG" | sed -nE 's/.*< .* \(([0-9]+) us\)$/\1/p' | awk '{ s += $1 } END { print s + 0 }'; }

ours=(); theirs=(); ours_card=(); theirs_card=(); ours_apdus=; theirs_apdus=
# One timed run of "$@": sets T (microseconds) and N (APDUs the card received).
timed() {
  local before after t0 t1 out lines
  before=$(apdus_so_far)
  lines=$(wc -l <"$PEER_LOG")
  t0=$EPOCHREALTIME
  if ! out=$("$@" 2>&1); then echo "bench-peers: failed: $*"$'\n'"$out" >&2; exit 1; fi
  t1=$EPOCHREALTIME
  after=$(apdus_so_far)
  T=$(( (${t1/./} - ${t0/./}) ))
  N=$((after - before))
  C=$(card_us "$lines")
}
run_pair() {
  timed "$CARDUNLOCK" -r "$R" unblock --puk 12345678 --new-pin 802517
  ours+=("$T"); ours_apdus=$N; ours_card+=("$C")
  timed yubico-piv-tool -r "$R" -a unblock-pin -P 12345678 -N 802517
  theirs+=("$T"); theirs_apdus=$N; theirs_card+=("$C")
}

run_pair; run_pair           # warm-up: page cache, pcscd's reader state
ours=(); theirs=(); ours_card=(); theirs_card=()
for _ in $(seq "$RUNS"); do run_pair; done

median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
minmax() { printf '%s\n' "$@" | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.1f–%.1f", lo / 1000, hi / 1000 }'; }
ratios=()
for i in "${!ours[@]}"; do ratios+=("$(awk -v a="${ours[$i]}" -v b="${theirs[$i]}" 'BEGIN { printf "%.3f", a / b }')"); done
mo=$(median "${ours[@]}"); mt=$(median "${theirs[@]}"); mr=$(median "${ratios[@]}")

co=$(median "${ours_card[@]}"); ct=$(median "${theirs_card[@]}")
ms() { awk -v x="$1" 'BEGIN { printf "%.1f", x / 1000 }'; }
echo "| tool | APDUs per unblock | median wall time | min–max | card's own time (median) | wall time minus card time | median ratio |"
echo "|---|---|---|---|---|---|---|"
printf '| `cardunlock unblock --puk … --new-pin …` | %s | %s ms | %s ms | %s ms | %s ms | %.2f |\n' "$ours_apdus" "$(ms "$mo")" "$(minmax "${ours[@]}")" "$(ms "$co")" "$(ms $((${mo%.*} - ${co%.*})))" "$mr"
printf '| `yubico-piv-tool -a unblock-pin -P … -N …` | %s | %s ms | %s ms | %s ms | %s ms | 1 |\n' "$theirs_apdus" "$(ms "$mt")" "$(minmax "${theirs[@]}")" "$(ms "$ct")" "$(ms $((${mt%.*} - ${ct%.*})))"
echo
echo "$RUNS alternating pairs after 2 warm-up pairs; ratio = median over pairs of cardunlock / yubico-piv-tool."
echo "cardunlock's APDUs as the card logged them (last run):"
awk '/(^|: )> /' "$PEER_LOG" | tail -n $((ours_apdus + theirs_apdus)) | head -n "$ours_apdus" | sed -E 's/^.*> //; s/^(00 2C 00 80 10|002C008010).*/\1 <PUK and new PIN>/' | sed 's/^/    /'
