#!/usr/bin/env bash
# The real unlock window under Xvfb (software OpenGL), driven with keystrokes through the demo
# unlock: a screenshot per step in target/gui-screens/, each checked to be non-empty and
# different from the one before; the success line read back with OCR (tesseract).
# Then the offline path's first screens (--demo-no-questions).
#
# Needs xvfb, xdotool, imagemagick, libgl1-mesa-dri, tesseract-ocr (scripts/setup.sh).
# Time: ~40 s with the binary built (the build itself is part of the workspace build).
# Usage: bash scripts/gui/xvfb-test.sh [--copy-docs]   (--copy-docs: refresh docs/screenshots/)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
shots="$CARGO_TARGET_DIR/gui-screens"
rm -rf "$shots"; mkdir -p "$shots"
cargo build -j2 -q -p cardunlock-gui --features demo
bin="$CARGO_TARGET_DIR/debug/cardunlock-gui"

for tool in Xvfb xdotool import compare tesseract; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool missing (bash scripts/setup.sh)"; exit 1; }
done

# A free display number.
d=97
while [ -e "/tmp/.X11-unix/X$d" ] || [ -e "/tmp/.X$d-lock" ]; do d=$((d + 1)); done
Xvfb ":$d" -screen 0 1024x768x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
app=""
cleanup() {
    [ -n "$app" ] && kill "$app" 2>/dev/null || true
    kill "$xvfb" 2>/dev/null || true
}
trap cleanup EXIT
export DISPLAY=":$d" LIBGL_ALWAYS_SOFTWARE=1
for _ in $(seq 50); do xdotool getdisplaygeometry >/dev/null 2>&1 && break; sleep 0.1; done

wid=""
prev=""
n=0
fail() { echo "FAIL: $*"; exit 1; }

launch() {
    "$bin" "$@" >"$shots/app.log" 2>&1 &
    app=$!
    wid=$(timeout 60 xdotool search --sync --onlyvisible --name "^Smart card unlock$" | head -1) \
        || fail "no window appeared (log: $(cat "$shots/app.log"))"
    # No window manager: give the window the keyboard focus ourselves (once it is mapped).
    for _ in $(seq 50); do
        xdotool windowfocus --sync "$wid" 2>/dev/null && return 0
        sleep 0.2
    done
    fail "cannot focus the window"
}

# Screenshot of the window: non-empty, more than a blank fill, different from the previous one.
shot() {
    n=$((n + 1))
    local f
    f="$shots/$(printf %02d "$n")-$1.png"
    import -window "$wid" "$f"
    [ -s "$f" ] || fail "$f is empty"
    local colours
    colours=$(identify -format %k "$f")
    [ "$colours" -gt 2 ] || fail "$f is blank ($colours colours)"
    if [ -n "$prev" ]; then
        local diff
        diff=$(compare -metric AE "$prev" "$f" null: 2>&1 || true)
        [ "${diff%% *}" != "0" ] || fail "$f is the same as $prev"
    fi
    echo "  $f ($colours colours)"
    prev="$f"
}

# Text on the window, by OCR (egui's dark theme: greyscale, negate, scale up).
ocr() {
    import -window "$wid" "$shots/ocr.png"
    convert "$shots/ocr.png" -colorspace Gray -negate -resize 300% "$shots/ocr-big.png"
    tesseract "$shots/ocr-big.png" - 2>/dev/null | tr '\n' ' '
}

wait_text() {
    local text="$1" seen=""
    for _ in $(seq "${2:-60}"); do
        seen=$(ocr)
        case "$seen" in *"$text"*) return 0 ;; esac
        sleep 0.5
    done
    fail "\"$text\" never appeared; OCR read: $seen"
}

keys() { xdotool type --delay 40 "$1"; sleep 0.3; }
key() { xdotool key "$@"; sleep 0.4; }

echo "== cardunlock-gui --demo under Xvfb :$d"
launch --demo
wait_text "security questions"
shot questions
keys Rex; key Tab; keys Springfield
shot answers-typed
key Return
wait_text "Enter new PIN"
ocr | grep -q "Michael Benson" || fail "the user's name is not on the PIN screen"
shot new-pin
keys 123456
sleep 0.3
shot pin-violations
wait_text "too common"
key ctrl+a; keys 840259; key Tab; keys 840259
shot pin-ok
key Return
wait_text "unlocked successfully"
shot unlocked
key Return
rc=0
timeout 10 tail --pid="$app" -f /dev/null || rc=$?
wait "$app" || rc=$?
app=""
[ "$rc" -eq 0 ] || fail "the window did not close with exit 0 after OK (exit $rc)"

echo "== cardunlock-gui --demo-no-questions"
launch --demo-no-questions
wait_text "No security questions"
shot no-questions
key Return
wait_text "Enter new PIN"
keys Xk9w2; key Tab; keys Xk9w2; key Return
wait_text "help desk"
shot offline-challenge
kill "$app"; wait "$app" 2>/dev/null || true; app=""

if [ "${1:-}" = "--copy-docs" ]; then
    mkdir -p docs/screenshots
    for f in "$shots"/[0-9]*.png; do cp "$f" "docs/screenshots/$(basename "$f" | cut -c4-)"; done
    echo "copied to docs/screenshots/"
fi
echo "gui-xvfb: OK ($n screenshots in $shots)"
