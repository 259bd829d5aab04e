#!/usr/bin/env bash
# The Windows credential provider (credential-provider/, cardunlock_credprov.dll) under Wine:
#  1. the shipped DLL (default features): exactly the four COM exports (objdump -p), no demo
#     server and no simulated card in its dependency tree or its symbols;
#  2. `regsvr32` registers it (the CLSID with InprocServer32 / ThreadingModel=Apartment and the
#     Credential Providers entry, checked with `reg query`) and `regsvr32 /u` removes both;
#  3. a test build (feature `demo`: the demo server and simulated card in-process, since Wine's
#     WinSCard has no readers) is registered and the `logonui` example plays LogonUI through COM
#     through a whole online unlock to the success line; then it is unregistered;
#  4. the shipped DLL through the same harness: the refusal form with no configuration, and
#     with a pinned certificate file owned by someone else than Administrators / SYSTEM.
# Wine has no LogonUI: the harness is the only caller. Bounded: every Wine step has a timeout.
# Usage: bash scripts/windows/credential-provider.sh (after scripts/windows/build-and-run.sh
# has set up the toolchain and the Wine prefix, or on its own).
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
TARGET=x86_64-pc-windows-gnu
WINE64=/usr/lib/wine/wine64
WINESERVER=/usr/lib/wine/wineserver
CLSID='{D3AE0D13-2973-4D49-9D45-8BD435DB7CB6}'
CLASS_KEY="HKCR\\CLSID\\$CLSID"
PROVIDER_KEY="HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Authentication\\Credential Providers\\$CLSID"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CC_x86_64_pc_windows_gnu=x86_64-w64-mingw32-gcc
out="$CARGO_TARGET_DIR/credprov-wine"
mkdir -p "$out/shipped" "$out/test"
dll="$CARGO_TARGET_DIR/$TARGET/debug/cardunlock_credprov.dll"

echo "== the shipped DLL (default features)"
cargo build -j2 --locked --target "$TARGET" -p cardunlock-credprov
cp "$dll" "$out/shipped/"
exports=$(x86_64-w64-mingw32-objdump -p "$out/shipped/cardunlock_credprov.dll" \
    | sed -n '/\[Ordinal\/Name Pointer\] Table/,/^$/p' | awk '/^[[:space:]]*\[ *[0-9]+\]/{print $NF}' | sort | tr '\n' ' ')
echo "  exports: $exports"
[ "$exports" = "DllCanUnloadNow DllGetClassObject DllRegisterServer DllUnregisterServer " ] \
    || { echo "FAIL: the exports are not exactly the four COM entry points"; exit 1; }
tree=$(cargo tree --locked --target "$TARGET" -p cardunlock-credprov -e normal --prefix none)
if grep -Eq '^cardunlock-(server|sim) ' <<<"$tree"; then
    echo "FAIL: the shipped DLL depends on the demo server or the simulated card"; exit 1
fi
if strings "$out/shipped/cardunlock_credprov.dll" | grep -Eq 'cardunlock_server|cardunlock_sim'; then
    echo "FAIL: the shipped DLL holds demo server or simulated card symbols"; exit 1
fi
echo "  ok: no demo server, no simulated card (dependency tree and symbols)"

. scripts/lib.sh
wine_prefix
[ -f "$sys32/bcryptprimitives.dll" ] || wine_bcrypt

winpath() { echo "Z:${1//\//\\}"; }
wine() { timeout "$1" "$WINE64" "${@:2}"; }

echo "== regsvr32 (shipped DLL)"
wine 120 regsvr32 /s "$(winpath "$out/shipped/cardunlock_credprov.dll")"
wine 60 reg query "$CLASS_KEY\\InprocServer32" >"$out/reg.txt" 2>&1 || { cat "$out/reg.txt"; echo "FAIL: no InprocServer32"; exit 1; }
cat "$out/reg.txt"
grep -q 'ThreadingModel.*Apartment' "$out/reg.txt" || { echo "FAIL: ThreadingModel is not Apartment"; exit 1; }
grep -qi 'cardunlock_credprov.dll' "$out/reg.txt" || { echo "FAIL: InprocServer32 does not name the DLL"; exit 1; }
wine 60 reg query "$PROVIDER_KEY" >"$out/reg.txt" 2>&1 || { cat "$out/reg.txt"; echo "FAIL: no Credential Providers entry"; exit 1; }
echo "  ok: registered"
wine 120 regsvr32 /u /s "$(winpath "$out/shipped/cardunlock_credprov.dll")"
if wine 60 reg query "$CLASS_KEY" >/dev/null 2>&1 || wine 60 reg query "$PROVIDER_KEY" >/dev/null 2>&1; then
    echo "FAIL: regsvr32 /u left keys behind"; exit 1
fi
echo "  ok: unregistered"

echo "== the test build (feature demo) and the LogonUI harness"
cargo build -j2 --locked --target "$TARGET" -p cardunlock-credprov --features demo --lib --example logonui
cp "$dll" "$out/test/"
cp "$CARGO_TARGET_DIR/$TARGET/debug/examples/logonui.exe" "$out/test/"
wine 120 regsvr32 /s "$(winpath "$out/test/cardunlock_credprov.dll")"
rc=0
wine 300 "$out/test/logonui.exe" >"$out/logonui.log" 2>&1 || rc=$?
wine 120 regsvr32 /u /s "$(winpath "$out/test/cardunlock_credprov.dll")" || true
cat "$out/logonui.log"
if [ "$rc" -ne 0 ] || ! grep -q "The smart card has been unlocked successfully." "$out/logonui.log"; then
    echo "FAIL: the LogonUI harness (exit $rc)"; exit 1
fi

# The shipped DLL through the harness: with no configuration it says so; with a certificate file
# anyone but Administrators and SYSTEM owns (a Unix file under Wine: the Unix user's SID) it
# refuses after reading the key's and the file's security descriptors. Nothing to type either way.
refused() {
    wine 120 regsvr32 /s "$(winpath "$out/shipped/cardunlock_credprov.dll")"
    rc=0
    wine 150 "$out/test/logonui.exe" --refused "$1" >"$out/logonui.log" 2>&1 || rc=$?
    wine 120 regsvr32 /u /s "$(winpath "$out/shipped/cardunlock_credprov.dll")" || true
    cat "$out/logonui.log"
    [ "$rc" -eq 0 ] || { echo "FAIL: the shipped DLL did not refuse ($1) (exit $rc)"; exit 1; }
}
echo "== the shipped DLL, no configuration"
wine 60 reg delete 'HKLM\SOFTWARE\cardunlock' /f >/dev/null 2>&1 || true
refused 'HKLM\SOFTWARE\cardunlock cannot be opened'
echo "== the shipped DLL, a certificate file a user owns"
printf -- '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n' >"$out/server.pem"
wine 60 reg add 'HKLM\SOFTWARE\cardunlock' /v ServerUrl /t REG_SZ /d https://127.0.0.1:9 /f >/dev/null
wine 60 reg add 'HKLM\SOFTWARE\cardunlock' /v CertificatePath /t REG_SZ /d "$(winpath "$out/server.pem")" /f >/dev/null
refused 'server.pem: its owner is S-1-5-21-'
wine 60 reg delete 'HKLM\SOFTWARE\cardunlock' /f >/dev/null 2>&1 || true
timeout 60 "$WINESERVER" -k 2>/dev/null || true
echo "credential provider: OK ($(( $(date +%s) - start )) s)"
