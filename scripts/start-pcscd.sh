#!/usr/bin/env bash
# Starts pcscd (with the vpcd virtual readers "Virtual PCD 00 00" / "00 01") in the background
# if it is not running, and waits until it accepts PC/SC connections. Idempotent: a pcscd that
# already answers is left alone. Logs (every APDU, with -a) go to $PCSCD_LOG (/tmp/pcscd.log).
set -euo pipefail

LOG=${PCSCD_LOG:-/tmp/pcscd.log}
SOCKET=/run/pcscd/pcscd.comm
WAIT_S=${PCSCD_WAIT_S:-10}

if ! command -v pcscd >/dev/null 2>&1; then
  echo "start-pcscd: pcscd is not installed (apt-get install pcscd vsmartcard-vpcd pcsc-tools; see scripts/setup.sh)" >&2
  exit 1
fi
if ! command -v pcsc_scan >/dev/null 2>&1; then
  echo "start-pcscd: pcsc_scan is missing (apt-get install pcsc-tools)" >&2
  exit 1
fi

# pcsc_scan -r lists the readers and exits 0 once the service answers.
answers() { timeout 5 pcsc_scan -r >/dev/null 2>&1; }

if [ -S "$SOCKET" ] && answers; then
  echo "start-pcscd: pcscd already running ($(pcscd --version 2>/dev/null | head -1))"
  exit 0
fi

start() {
  # A socket left behind by a pcscd that died would make clients wait on nothing.
  rm -f "$SOCKET"
  mkdir -p "$(dirname "$SOCKET")"
  echo "start-pcscd: starting pcscd -f -a (log: $LOG)"
  setsid pcscd -f -a >>"$LOG" 2>&1 </dev/null &
}

for _ in $(seq $((WAIT_S * 10))); do
  if [ -S "$SOCKET" ] && answers; then
    echo "start-pcscd: pcscd is up; readers:"
    timeout 5 pcsc_scan -r 2>/dev/null | sed 's/^/  /' || true
    exit 0
  fi
  # None running (or one that was shutting down has now gone): start one. Checked on every
  # round, not once, so a pcscd that is stopping when this script begins is replaced instead
  # of waited for.
  if ! pgrep -x pcscd >/dev/null 2>&1; then
    start
  fi
  sleep 0.1
done
echo "start-pcscd: pcscd did not answer within ${WAIT_S}s; last log lines:" >&2
tail -n 20 "$LOG" >&2 || true
exit 1
