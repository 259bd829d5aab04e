#!/usr/bin/env bash
# Cross-builds the CLI (`cardunlock`) and the window (`cardunlock-gui`) for Windows
# (x86_64-pc-windows-gnu, Debian's mingw-w64) and runs `cardunlock.exe demo --non-interactive`
# under Wine (Debian's wine64), checking for the success line. Then checks that
# `cardunlock-gui.exe` loads (every DLL it imports resolves) by asking it for its usage.
#
# Wine's winscard.dll is a stub, so PC/SC is compile-checked only here (see gui/src/worker.rs,
# `PcscReaders`, for the WinSCard specifics). Wine 8.0 lacks bcryptprimitives.dll, which Rust's
# std imports (ProcessPrng): bcryptprimitives.c beside this script is built into the prefix.
#
# Time on a 2-core machine: ~7 min cold (cross-build), well under 1 min warm; Wine prefix ~20 s.
# Usage: bash scripts/windows/build-and-run.sh   (root or sudo-less apt when packages are missing)
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
TARGET=x86_64-pc-windows-gnu
WINE64=/usr/lib/wine/wine64          # Debian's launcher, not on PATH

need=()
command -v x86_64-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-x86-64)
[ -x "$WINE64" ] || need+=(wine64)
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! rustup target list --installed | grep -qx "$TARGET"; then
    rustup target add "$TARGET"
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CC_x86_64_pc_windows_gnu=x86_64-w64-mingw32-gcc
echo "== cross-building cardunlock and cardunlock-gui for $TARGET"
cargo build -j2 --target "$TARGET" -p cardunlock -p cardunlock-gui
bin="$CARGO_TARGET_DIR/$TARGET/debug"
built=$(date +%s)

export WINEPREFIX="$CARGO_TARGET_DIR/wine-prefix"
export WINEDEBUG=-all
# No Mono / Gecko installers (and their dialogs): the programs need neither.
export WINEDLLOVERRIDES="mscoree,mshtml="
if [ ! -f "$WINEPREFIX/system.reg" ]; then
    echo "== creating the Wine prefix $WINEPREFIX"
    timeout 300 "$WINE64" wineboot --init >/dev/null 2>&1 || true
    timeout 60 "$WINE64" wineserver -w 2>/dev/null || true
fi
sys32="$WINEPREFIX/drive_c/windows/system32"
[ -d "$sys32" ] || { echo "FAIL: no Wine prefix at $WINEPREFIX"; exit 1; }
x86_64-w64-mingw32-gcc -shared -O2 -Wall -o "$sys32/bcryptprimitives.dll" \
    scripts/windows/bcryptprimitives.c -ladvapi32

echo "== wine64 cardunlock.exe demo --non-interactive"
log="$CARGO_TARGET_DIR/windows-demo.log"
rc=0
timeout 300 "$WINE64" "$bin/cardunlock.exe" demo --non-interactive </dev/null >"$log" 2>&1 || rc=$?
cat "$log"
if [ "$rc" -ne 0 ] || ! grep -q "The smart card has been unlocked successfully." "$log"; then
    echo "FAIL: cardunlock.exe demo under Wine (exit $rc, success line missing)"
    exit 1
fi

echo "== wine64 cardunlock-gui.exe --bogus (loads, prints its usage, exits 2)"
rc=0
timeout 120 "$WINE64" "$bin/cardunlock-gui.exe" --bogus </dev/null >"$log" 2>&1 || rc=$?
cat "$log"
if [ "$rc" -ne 2 ] || ! grep -q "cardunlock-gui --demo" "$log"; then
    echo "FAIL: cardunlock-gui.exe did not load under Wine (exit $rc)"
    exit 1
fi
timeout 60 "$WINE64" wineserver -k 2>/dev/null || true
end=$(date +%s)
echo "windows: OK (cross-build $((built - start)) s, Wine runs $((end - built)) s)"
