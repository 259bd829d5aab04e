#!/usr/bin/env bash
# Real peers through real pcscd (started by scripts/start-pcscd.sh):
#  1. the cardunlock CLI against the independent piv-authenticator card (Nitrokey's PIV on
#     trussed): PUK unblock, wrong PUK, management-key authentication with 3DES and AES-256,
#     and online unlock (enroll, the card's 9E presence proof, security questions, one-time PUK,
#     PUK rotation);
#  2. independent clients (yubico-piv-tool, OpenSC) against cardunlock's simulated PIV card;
#  3. OpenSC (opensc-tool, pkcs15-tool, gids-tool) against cardunlock's simulated GIDS card.
# Prints PASS/FAIL per check and a closing "N passed, N failed" line; exits non-zero on failure.
#
# Every card goes into vpcd reader 1 ("Virtual PCD 00 01"), which the Rust tests use too
# (host-demo/tests/pcsc_cli.rs and tty.rs). They serialise on it with cardunlock_virtual_readers::ReaderLock,
# a machine-wide lock that is "whoever has 127.0.0.1:25964 bound" (25963 + reader index). This
# script takes the same lock with perl (perl-base is Essential on Debian) for its whole run, so it
# waits for a `cargo test` that holds the reader, and vice versa. In .ci/run it also simply runs
# after `cargo test` (scripts/test.sh), never alongside it.
#
# Clients are pointed at reader 1 by its full name or index: a mere substring ("Virtual") makes
# yubico-piv-tool take the first matching reader that has a card, which is reader 0 whenever the
# transport-pcsc tests (or anyone else) have a card there.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
B="${CARGO_TARGET_DIR:-$ROOT/target}/debug/cardunlock"
PEER_TARGET=${PEER_TARGET_DIR:-$ROOT/peers/target}
R="Virtual PCD 00 01"
PORT=35964
passed=0; failed=0; PID=

pass() { passed=$((passed + 1)); echo "PASS  $1"; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/      | /'; }
check() {  # check NAME EXPECTED_EXIT GREP CMD...
  local name=$1 want=$2 pattern=$3; shift 3
  local out; out=$("$@" 2>&1); local rc=$?
  if [ "$rc" = "$want" ] && grep -qE -- "$pattern" <<<"$out"; then pass "$name"; else fail "$name (exit $rc, want $want)" "$out"; fi
}
stop() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; PID=; sleep 0.5; }
trap stop EXIT
wait_card() { for _ in $(seq 100); do "$B" --json readers 2>/dev/null | grep -q "\"name\":\"$R\",\"card\":true" && return 0; sleep 0.1; done; fail "no card in $R"; return 1; }
idx() { opensc-tool -l 2>/dev/null | awk -v r="$R" 'index($0, r) && $1 ~ /^[0-9]+$/ { print $1; exit }'; }
# lock_reader (scripts/lib.sh) holds the lock of reader 1 until this script exits.
. scripts/lib.sh

cargo build -q -p cardunlock --features demo --locked --manifest-path "$ROOT/Cargo.toml" || exit 1
cargo build -q -p cardunlock-server --locked --manifest-path "$ROOT/Cargo.toml" || exit 1
SRV_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/cardunlock-server"
(cd peers/piv-authenticator-vpicc && CARGO_TARGET_DIR="$PEER_TARGET" cargo build -q --locked) || { echo "FAIL  building piv-authenticator-vpicc"; exit 1; }
PEER="$PEER_TARGET/debug/piv-authenticator-vpicc"
lock_reader 1 || { echo "FAIL  could not take the lock of $R (cardunlock_virtual_readers::ReaderLock, port 25964)"; exit 1; }

echo "== cardunlock CLI vs piv-authenticator (independent PIV card)"
"$PEER" --port $PORT >/tmp/piv-authenticator.log 2>&1 & PID=$!
wait_card
check "status sees a PIV card with 3 PIN tries" 0 "PIV card.*PIN tries left 3" "$B" -r "$R" status
I=$(idx)
SEL=00A4040009A00000030800001000
opensc-tool -r "$I" -s $SEL -s 0020008008303030303030FFFF -s 0020008008303030303030FFFF -s 0020008008303030303030FFFF >/dev/null 2>&1
check "three wrong PINs block it" 0 "PIN BLOCKED" "$B" -r "$R" status
check "policy refusal leaves the card untouched (exit 3)" 3 "not touched" "$B" -r "$R" unblock --puk 12345678 --new-pin 111111
check "wrong PUK is refused with tries left (exit 1)" 1 "Wrong PUK. 2 tries left" "$B" -r "$R" unblock --puk 87654321 --new-pin 840259
check "PUK unblock" 0 "unlocked successfully" "$B" -r "$R" unblock --puk 12345678 --new-pin 840259
check "PIN no longer blocked" 0 "PIN tries left 3|PIN verified" "$B" -r "$R" status
check "new PIN verifies (raw VERIFY 840259)" 0 "SW1=0x90, SW2=0x00" opensc-tool -r "$I" -s $SEL -s 0020008008383430323539FFFF
check "3DES management key authentication" 0 "Management key accepted \(3DES" "$B" -r "$R" admin-auth --key 010203040506070801020304050607080102030405060708
check "wrong 3DES management key refused (exit 1)" 1 "wrong admin response" "$B" -r "$R" admin-auth --key 1112131415161718212223242526272831323334353637FF
K=1122334455667788112233445566778811223344556677881122334455667788
"$B" -r "$R" admin-auth --key 010203040506070801020304050607080102030405060708 >/dev/null 2>&1
check "set an AES-256 management key (YubiKey SET MGMT KEY)" 0 "SW1=0x90, SW2=0x00" opensc-tool -r "$I" -s $SEL -s 00FFFFFF230C9B20$K
check "AES-256 management key authentication" 0 "Management key accepted \(AES-256" "$B" -r "$R" admin-auth --algorithm aes256 --key $K
stop

echo "== online unlock of piv-authenticator: enroll, block, security questions, one-time PUK"
"$PEER" --port $PORT >/tmp/piv-authenticator-online.log 2>&1 & PID=$!
wait_card
SRV_DIR=$(mktemp -d /tmp/cardunlock-online.XXXXXX)
printf '%s' 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff > "$SRV_DIR/master.hex"
chmod 600 "$SRV_DIR/master.hex"
"$SRV_BIN" serve --bind 127.0.0.1:0 --db "$SRV_DIR/db.sqlite" --master-secret-file "$SRV_DIR/master.hex" --state-dir "$SRV_DIR" >"$SRV_DIR/serve.log" 2>&1 & SRV_PID=$!
for _ in $(seq 300); do grep -q "listening on" "$SRV_DIR/serve.log" 2>/dev/null && break; sleep 0.1; done
first=$(grep -m1 "listening on" "$SRV_DIR/serve.log")
URL=${first##* }
S=(--server "$URL" --server-cert "$SRV_DIR/server.crt")
check "server started" 0 "https://127.0.0.1:" echo "$URL"
# Before enrollment the server knows nothing of the card, and says only what it says to every
# PIV card that has not proved itself.
check "an unenrolled PIV card hears only that it could not be verified (exit 1)" 1 "could not be verified for online unlock" "$B" -r "$R" unlock "${S[@]}" --answer Rex --new-pin 840259
# An enrollment operator, made as an administrator would (password from standard input); its
# TOTP code computed from the printed otpauth:// secret (RFC 6238, SHA-1, 6 digits, 30 s).
printf '%s\n' "peer enrollment passphrase" > "$SRV_DIR/operator-password"
chmod 600 "$SRV_DIR/operator-password"
"$SRV_BIN" add-operator enroller1 --role enroller --db "$SRV_DIR/db.sqlite" --master-secret-file "$SRV_DIR/master.hex" --password-stdin <"$SRV_DIR/operator-password" >"$SRV_DIR/operator.txt" 2>&1
TOTP_SECRET=$(grep -o 'secret=[A-Z2-7]*' "$SRV_DIR/operator.txt" | head -1 | cut -d= -f2)
check "add-operator prints the operator's TOTP secret" 0 "[A-Z2-7]{16}" echo "$TOTP_SECRET"
TOTP_CODE=$(python3 -c 'import base64,hmac,struct,sys,time
s=sys.argv[1]; k=base64.b32decode(s+"="*(-len(s)%8))
h=hmac.new(k,struct.pack(">Q",int(time.time())//30),"sha1").digest(); o=h[-1]&15
print("%06d"%((struct.unpack(">I",h[o:o+4])[0]&0x7fffffff)%1000000))' "$TOTP_SECRET")
check "enroll through the server personalises piv-authenticator (PUK, management key)" 0 "Enrolled Michael Benson" "$B" -r "$R" enroll --server "$URL" --cert "$SRV_DIR/server.crt" --operator enroller1 --password-file "$SRV_DIR/operator-password" --totp "$TOTP_CODE" --name "Michael Benson" --email Michael.Benson@demo.local --question "First pet?" --answer Rex
check "the factory PUK no longer works" 1 "Wrong PUK" "$B" -r "$R" unblock --puk 12345678 --new-pin 840259
I=$(idx)
block_pin() { opensc-tool -r "$I" -s $SEL -s 0020008008303030303030FFFF -s 0020008008303030303030FFFF -s 0020008008303030303030FFFF -s 0020008008303030303030FFFF >/dev/null 2>&1; }
block_pin
check "PIN blocked" 0 "PIN BLOCKED" "$B" -r "$R" status
check "wrong answer: attempts left, card untouched" 1 "2 attempts left" "$B" -r "$R" unlock "${S[@]}" --answer Fido --new-pin 840259
check "online unlock" 0 "unlocked successfully" "$B" -r "$R" unlock "${S[@]}" --answer " REX " --new-pin 840259
check "new PIN verifies" 0 "SW1=0x90, SW2=0x00" opensc-tool -r "$I" -s $SEL -s 0020008008383430323539FFFF
block_pin
# The card proves its presence: piv-authenticator signs the server's nonce with its own
# Card Authentication key (9E, P-256, generated at its first start; enrollment recovered its
# public key from two signatures and never replaced it), one GENERAL AUTHENTICATE.
check "second online unlock uses the rotated PUK, after the card signed the nonce with 9E" 0 "00 87 11 9E 26 7C 24 82 00 81 20" "$B" -v -r "$R" unlock "${S[@]}" --answer rex --new-pin 735194
check "the server audited the card's verified proofs" 0 "^prove proven [1-9]" python3 -c 'import sqlite3,sys
n=sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM audit WHERE event=? AND outcome=?", ("prove","proven")).fetchone()[0]
print("prove proven", n)' "$SRV_DIR/db.sqlite"
kill "$SRV_PID" 2>/dev/null; wait "$SRV_PID" 2>/dev/null
rm -rf "$SRV_DIR"
stop

echo "== independent clients vs cardunlock's simulated PIV card"
"$B" sim-card --profile piv --port $PORT >/tmp/sim-piv.log 2>&1 & PID=$!
wait_card
check "yubico-piv-tool status" 0 "PIN tries left:[[:space:]]*3" yubico-piv-tool -r "$R" -a status
check "yubico-piv-tool verify-pin" 0 "Successfully verified PIN" yubico-piv-tool -r "$R" -a verify-pin -P 123456
# Three wrong PINs block it, each one counted by the card.
check "yubico-piv-tool wrong PIN 1" 1 "2 tries left" yubico-piv-tool -r "$R" -a verify-pin -P 000000
check "yubico-piv-tool wrong PIN 2" 1 "1 tries left" yubico-piv-tool -r "$R" -a verify-pin -P 000000
check "yubico-piv-tool wrong PIN 3 blocks it" 1 "Pin code blocked" yubico-piv-tool -r "$R" -a verify-pin -P 000000
check "cardunlock sees the PIN blocked by yubico-piv-tool" 0 "PIN BLOCKED" "$B" -r "$R" status
check "yubico-piv-tool unblock-pin" 0 "Successfully unblocked the pin code" yubico-piv-tool -r "$R" -a unblock-pin -P 12345678 -N 654321
check "yubico-piv-tool set-mgm-key" 0 "" yubico-piv-tool -r "$R" -a set-mgm-key --key=010203040506070801020304050607080102030405060708 -n 1112131415161718212223242526272831323334353637FF
check "cardunlock authenticates with the key yubico-piv-tool set" 0 "Management key accepted" "$B" -r "$R" admin-auth --key 1112131415161718212223242526272831323334353637FF
check "yubico-piv-tool with the old key fails" 1 "" yubico-piv-tool -r "$R" -a set-mgm-key --key=010203040506070801020304050607080102030405060708 -n 010203040506070801020304050607080102030405060708
I=$(idx)
for _ in 1 2 3; do yubico-piv-tool -r "$R" -a verify-pin -P 000000 >/dev/null 2>&1; done
check "OpenSC pkcs15-tool --unblock-pin" 0 "" pkcs15-tool --reader "$I" --unblock-pin --auth-id 01 --puk 12345678 --new-pin 246813
check "cardunlock sees the PIN unblocked by OpenSC" 0 "PIN tries left 3" "$B" -r "$R" status
printf '%s' 1112131415161718212223242526272831323334353637FF > /tmp/piv-admin.key
check "OpenSC piv-tool -A M:9B:03 (mutual auth)" 0 "" env PIV_EXT_AUTH_KEY=/tmp/piv-admin.key piv-tool --reader "$I" -A M:9B:03
stop

echo "== OpenSC vs cardunlock's simulated GIDS card"
K3=010203040506070801020304050607080102030405060708
"$B" sim-card --profile gids --blocked --port $PORT >/tmp/sim-gids.log 2>&1 & PID=$!
wait_card
I=$(idx)
check "opensc-tool -n names the GIDS driver" 0 "GIDS Smart Card" opensc-tool -r "$I" -n
check "pkcs15-tool -D binds the GIDS emulation (masterfile, cardid)" 0 "Serial number +: 53494d47494453303030303030303031" pkcs15-tool --reader "$I" -D
check "pkcs15-tool --list-pins sees the PIN blocked" 0 "Tries left +: 0" pkcs15-tool --reader "$I" --list-pins
check "gids-tool reads the masterfile" 0 "Found 5 entries in the masterfile" gids-tool -r "$I"
check "gids-tool -U with a wrong admin key is refused" 1 "PIN code or key incorrect" gids-tool -r "$I" -U --admin-key 0102030405060708010203040506070801020304050607FF --pin 2468
check "gids-tool -U unblocks with the admin key (mutual auth, RESET RETRY COUNTER)" 0 "Unblock PIN done successfully" gids-tool -r "$I" -U --admin-key $K3 --pin 2468
check "cardunlock sees the PIN unblocked by gids-tool" 0 "PIN tries left 3" "$B" -r "$R" status
check "pkcs15-tool verifies the PIN gids-tool set" 0 "" pkcs15-tool --reader "$I" --verify-pin --auth-id 80 --pin 2468
for _ in 1 2 3; do pkcs15-tool --reader "$I" --verify-pin --auth-id 80 --pin 9999 >/dev/null 2>&1; done
check "cardunlock sees the PIN blocked by pkcs15-tool" 0 "PIN BLOCKED" "$B" -r "$R" status
check "cardunlock unlocks it with the admin key" 0 "unlocked successfully" "$B" -r "$R" unlock --admin-key $K3 --new-pin Xk9w2
check "pkcs15-tool verifies the PIN cardunlock set" 0 "" pkcs15-tool --reader "$I" --verify-pin --auth-id 80 --pin Xk9w2
stop

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
