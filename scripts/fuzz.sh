#!/usr/bin/env bash
# Fuzzing: builds every cargo-fuzz target of fuzz/ (nightly, libFuzzer) and runs each for
# FUZZ_SECONDS (default 20) from its committed corpus (fuzz/corpus/<target>, copied to a scratch
# directory so a run does not change the tree). Fails on any crash, panic, timeout or leak; the
# crashing input is kept in fuzz/artifacts/<target>/ and its path printed.
# FUZZ_TARGETS="apdu tlv" runs only those; FUZZ_JOBS (default 2) targets run at a time.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-20}
jobs=${FUZZ_JOBS:-2}
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz: the nightly toolchain is missing (cargo-fuzz needs it)" >&2
  exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

start=$(date +%s)
echo "== fuzz: building every target"
cargo +nightly fuzz build
targets=${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

run_one() {
  local t=$1 work
  work="$logs/corpus-$t"
  mkdir -p "$work"
  cp -r "fuzz/corpus/$t/." "$work/" 2>/dev/null || true
  if cargo +nightly fuzz run "$t" "$work" -- -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 >"$logs/$t.log" 2>&1; then
    echo "ok $t: $(grep -o 'Done [0-9]* runs in [0-9]* second' "$logs/$t.log" | tail -1)"
  else
    echo "FAIL $t (last lines below; crashing input under fuzz/artifacts/$t/)"
    tail -40 "$logs/$t.log"
    return 1
  fi
}

failed=0
pids=()
for t in $targets; do
  run_one "$t" &
  pids+=($!)
  if [ "${#pids[@]}" -ge "$jobs" ]; then
    wait "${pids[0]}" || failed=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
echo "== fuzz: $(echo $targets | wc -w) targets, ${seconds}s each, $(( $(date +%s) - start ))s in all"
exit $failed
