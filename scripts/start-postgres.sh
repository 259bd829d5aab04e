#!/usr/bin/env bash
# A throw-away PostgreSQL cluster on loopback for the unlock server's tests and benchmarks
# (Debian's postgresql-15, installed by scripts/setup.sh). Idempotent: creates the cluster on
# first use, starts it if it is not running, and prints its URL on stdout (nothing else):
#
#   export CARDUNLOCK_TEST_POSTGRES="$(bash scripts/start-postgres.sh)"
#
# Subcommands: start (default), restart, stop, url. Settings (environment):
#   CARDUNLOCK_PG_DIR   data directory (default /tmp/cardunlock-pg); its socket is in DIR/sock
#   CARDUNLOCK_PG_PORT  port to try first (default 54329; the next free one is used if taken)
# As root the cluster is owned by and runs as the `postgres` user (initdb -A trust: no
# password, loopback only; never use such a cluster for real data).
set -euo pipefail

dir=${CARDUNLOCK_PG_DIR:-/tmp/cardunlock-pg}
first_port=${CARDUNLOCK_PG_PORT:-54329}
cmd=${1:-start}
log() { echo "start-postgres: $*" >&2; }

. "$(dirname "$0")/lib.sh"
bin=$(pg_bindir) || {
  log "PostgreSQL server binaries not found (Debian package postgresql-15): run scripts/setup.sh"
  exit 1
}

running_port() {
  as_owner "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1 || return 1
  sed -n 4p "$dir/postmaster.pid"
}

url_of() { echo "postgres://postgres@127.0.0.1:$1/postgres"; }

ready() {
  for _ in $(seq 1 50); do
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$1" -U postgres && return 0
    sleep 0.1
  done
  return 1
}

init() {
  [ -f "$dir/PG_VERSION" ] && return 0
  log "creating a throw-away cluster in $dir"
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
  chmod 700 "$dir"
  as_owner "$bin/initdb" -D "$dir" -A trust -U postgres --no-sync -E UTF8 >/dev/null
}

start() {
  local port
  if port=$(running_port); then
    ready "$port" || { log "cluster in $dir runs on port $port but does not answer"; exit 1; }
    url_of "$port"
    return 0
  fi
  init
  mkdir -p "$dir/sock"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir/sock"
  for port in $(seq "$first_port" $((first_port + 20))); do
    # Taken by someone else? Then the bind would fail: try the next port.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      log "port $port is taken, trying the next"
      continue
    fi
    if as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 30 \
        -o "-p $port -k $dir/sock -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null; then
      if ready "$port" && [ "$(running_port)" = "$port" ]; then
        log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data $dir)"
        url_of "$port"
        return 0
      fi
      as_owner "$bin/pg_ctl" -D "$dir" -m immediate stop >/dev/null 2>&1 || true
    fi
    log "could not start on port $port (see $dir/server.log), trying the next"
  done
  log "no free port in $first_port..$((first_port + 20))"
  exit 1
}

case "$cmd" in
  start) start ;;
  url) port=$(running_port) || { log "not running"; exit 1; }; url_of "$port" ;;
  stop) as_owner "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || true ;;
  restart)
    port=$(running_port) || { log "not running"; exit 1; }
    as_owner "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
    CARDUNLOCK_PG_PORT=$port first_port=$port start
    ;;
  *) log "usage: $0 [start|restart|stop|url]"; exit 2 ;;
esac
