#!/usr/bin/env bash
# No reachable panic in a linked firmware image, checked on its symbols and calls.
#
# Usage: scripts/firmware-panics.sh IMAGE.elf [IMAGE.elf ...]
#
# A Rust panic path in a release image is a call to one of core's panic entry points
# (`panic_bounds_check`, `slice_index_fail`, `unwrap_failed`, `expect_failed`,
# `panic_const_*_overflow`, `panic_const_div_by_zero`, ...) or a direct call of `panic_fmt`
# (`panic!`, `unreachable!`, `assert!`). For each image this fails when
#   - a panic entry other than the async guard is linked (listed with `nm`), or
#   - `panic_fmt` or the panic handler is called from anything but that guard.
# The one allowed entry, `panic_const_async_fn_resumed`, is the compiler's guard against
# polling an `async fn` that has already completed: every async state machine carries it and
# it cannot be removed while the flows are async; its call sites are counted and printed.
#
# The image must be built with a panic handler that uses its `PanicInfo` (firmware-size/
# does): with `panic-halt`, all `panic_const_*` entries compile to the same bytes and LLVM
# folds them into one symbol of any of their names, hiding a real panic behind the guard's.
#
# Needs llvm-nm + llvm-objdump (the llvm package, or rustup's llvm-tools) or
# arm-none-eabi-nm + arm-none-eabi-objdump.
set -euo pipefail

tool() {
  local name
  for name in "llvm-$1" "arm-none-eabi-$1" "$(ls /usr/bin/llvm-"$1"-* 2>/dev/null | head -n1)" \
    "$(ls ~/.rustup/toolchains/*/lib/rustlib/*/bin/llvm-"$1" 2>/dev/null | head -n1)"; do
    if [ -n "$name" ] && command -v "$name" >/dev/null; then echo "$name"; return; fi
  done
  echo "firmware-panics: no llvm-$1 or arm-none-eabi-$1 (apt-get install llvm)" >&2
  exit 2
}
NM=$(tool nm)
OBJDUMP=$(tool objdump)

[ "$#" -gt 0 ] || { echo "usage: $0 IMAGE.elf..." >&2; exit 2; }

# Symbols that are a panic path (demangled names).
PANIC_RE='core::panicking::|core::slice::index::|slice_error_fail|str_index_overflow_fail|unwrap_failed|expect_failed|core::cell::panic_already|rust_begin_unwind|panic_in_cleanup|assert_failed|core::option::expect|core::result::unwrap'
# The panic machinery itself and the one allowed entry.
SINK_RE='core::panicking::panic_fmt$|rust_begin_unwind$'
GUARD_RE='core::panicking::panic_const::panic_const_async_fn_resumed$'

status=0
for elf in "$@"; do
  [ -f "$elf" ] || { echo "firmware-panics: $elf: no such image" >&2; exit 2; }
  # "ADDR name" of every function, address-sorted, addresses as 8 hex digits.
  funcs=$("$NM" -n -C --defined-only "$elf" | awk '$2 ~ /^[tTwW]$/ && $3 !~ /^\$/ {
    a = substr("00000000" $1, length($1) + 1); $1 = ""; $2 = ""; sub(/^  /, ""); print a, $0 }')
  panics=$(grep -E "$PANIC_RE" <<<"$funcs" || true)
  bad=$(grep -Ev "$SINK_RE|$GUARD_RE" <<<"$panics" | grep -v '^$' || true)
  # Every branch (call, tail call, conditional) to a panic symbol, with its target.
  targets=$(awk '{ a = $1; sub(/^0+/, "", a); print a }' <<<"$panics" | paste -sd'|')
  calls=""
  if [ -n "$targets" ]; then
    calls=$("$OBJDUMP" -d --no-show-raw-insn "$elf" | awk -v re="^0x(${targets})$" '
      $2 ~ /^(b|bl|blx|cbz|cbnz)$|^b[a-z]*(\.w|\.n)?$/ {
        for (i = 3; i <= NF; i++) if ($i ~ re) {
          a = $1; sub(/:$/, "", a); t = $i; sub(/^0x/, "", t)
          print substr("00000000" a, length(a) + 1), "C", substr("00000000" t, length(t) + 1); break } }')
  fi
  # Enclosing function of each call: merge the sorted lists.
  edges=$( { sed 's/^\([0-9a-f]*\) /\1 F /' <<<"$funcs"; printf '%s\n' "$calls"; } | grep -v '^$' |
    sort -s -k1,1 | awk '$2 == "F" { f = substr($0, 12); fa = $1; next }
      $2 == "C" { print fa, $3, f }')
  name_of() { awk -v a="$1" '$1 == a { $1 = ""; sub(/^ /, ""); print; exit }' <<<"$funcs"; }
  guard=$(grep -E "$GUARD_RE" <<<"$panics" | awk '{ print $1 }' | head -n1 || true)
  sinks=$(grep -E "$SINK_RE" <<<"$panics" | awk '{ print $1 }' | paste -sd' ' || true)
  # Callers of panic_fmt / the handler other than a panic entry (the guard, or one reported).
  allowed=" $(awk '{ print $1 }' <<<"$panics" | paste -sd' ') "
  stray=""
  for s in $sinks; do
    while read -r from _ fname; do
      [ -z "$from" ] && continue
      case "$allowed" in *" $from "*) ;; *) stray+="    ${fname} calls $(name_of "$s")"$'\n' ;; esac
    done < <(awk -v t="$s" '$2 == t' <<<"$edges")
  done
  sites=0
  [ -n "$guard" ] && sites=$(awk -v t="$guard" '$2 == t' <<<"$edges" | grep -c . || true)
  if [ -n "$bad" ] || [ -n "$stray" ]; then
    status=1
    echo "firmware-panics: $elf: panic paths linked:"
    while read -r addr name; do
      [ -z "$addr" ] && continue
      echo "  $name, called from:"
      awk -v t="$addr" '$2 == t { $1 = ""; $2 = ""; sub(/^  /, ""); print "    " $0 }' <<<"$edges" | sort -u
    done <<<"$bad"
    [ -n "$stray" ] && printf '  direct panics:\n%s' "$stray"
  else
    echo "firmware-panics: $elf: no panic path but the async-fn guard ($sites call sites)"
  fi
done
exit "$status"
