#!/usr/bin/env bash
# Cross-builds the CLI (`cardunlock`) and the window (`cardunlock-gui`) for Windows
# (x86_64-pc-windows-gnu, Debian's mingw-w64) and runs `cardunlock.exe demo --non-interactive`
# under Wine (Debian's wine64), checking for the success line. Then checks that
# `cardunlock-gui.exe` loads (every DLL it imports resolves) by asking it for its usage, and
# (with Xvfb, xdotool, tesseract) that its window shows the seed's questions under Wine.
#
# Wine's winscard.dll is a stub, so PC/SC is compile-checked only here (see gui/src/worker.rs,
# `PcscReaders`, for the WinSCard specifics). Wine 8.0 lacks bcryptprimitives.dll, which Rust's
# std imports (ProcessPrng): bcryptprimitives.c beside this script is built into the prefix.
#
# Time on a 2-core machine: cross-build ~81 s with the dependencies built (cold: about 20 min
# while other builds shared the 2 cores); Wine prefix and both runs ~35 s.
# Usage: bash scripts/windows/build-and-run.sh   (root or sudo-less apt when packages are missing)
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
TARGET=x86_64-pc-windows-gnu
WINE64=/usr/lib/wine/wine64          # Debian's launcher, not on PATH
WINESERVER=/usr/lib/wine/wineserver

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
cargo build -j2 --target "$TARGET" -p cardunlock -p cardunlock-gui \
    --features cardunlock/demo,cardunlock-gui/demo
bin="$CARGO_TARGET_DIR/$TARGET/debug"
built=$(date +%s)

. scripts/lib.sh
wine_prefix
wine_bcrypt

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

# The window itself under Wine, on a private Xvfb (Wine's opengl32 over Mesa's software GLX):
# it must open and draw the seed's first screen.
if command -v Xvfb >/dev/null && command -v xdotool >/dev/null && command -v tesseract >/dev/null; then
    echo "== wine64 cardunlock-gui.exe --demo under Xvfb"
    d=77
    while [ -e "/tmp/.X11-unix/X$d" ] || [ -e "/tmp/.X$d-lock" ]; do d=$((d + 1)); done
    Xvfb ":$d" -screen 0 1024x768x24 -nolisten tcp >/dev/null 2>&1 &
    xvfb=$!
    sleep 1
    DISPLAY=":$d" LIBGL_ALWAYS_SOFTWARE=1 timeout 180 "$WINE64" "$bin/cardunlock-gui.exe" --demo \
        >"$log" 2>&1 &
    gui=$!
    shot="$CARGO_TARGET_DIR/windows-gui.png"
    ok=0
    # The demo's server and enrollment start behind the window: wait for the questions. The
    # window is looked up again on every try: Wine may replace it while it sets up OpenGL, and
    # xdotool fails (BadWindow) on a window that goes away while it looks.
    for _ in $(seq 150); do
        wid=$(DISPLAY=":$d" xdotool search --onlyvisible --name "Smart card unlock" 2>/dev/null | head -1) || true
        if [ -n "$wid" ] && DISPLAY=":$d" import -window "$wid" "$shot" 2>/dev/null; then
            # The header only: the light answer fields below confuse the OCR.
            convert "$shot" -crop 460x175+0+0 +repage -colorspace Gray -negate -resize 300% \
                "$shot.ocr.png" 2>/dev/null || true
            if tesseract "$shot.ocr.png" - 2>/dev/null | grep -q "security questions"; then
                ok=1
                break
            fi
        fi
        sleep 1
    done
    kill "$gui" 2>/dev/null || true
    timeout 60 "$WINESERVER" -k 2>/dev/null || true
    kill "$xvfb" 2>/dev/null || true
    [ "$ok" -eq 1 ] || { cat "$log"; echo "FAIL: cardunlock-gui.exe did not show the questions under Wine"; exit 1; }
    echo "  $shot"
fi
timeout 60 "$WINESERVER" -k 2>/dev/null || true
end=$(date +%s)
echo "windows: OK (cross-build $((built - start)) s, Wine runs $((end - built)) s)"
