#!/usr/bin/env bash
# A second throw-away PostgreSQL cluster on loopback that speaks TLS only (`hostssl` in
# pg_hba.conf, `ssl=on`), for the test of the server's `--db-ca-file` (certificate and host name
# verified, like libpq's sslmode=verify-full). Idempotent; prints the cluster's URL on stdout
# (host `localhost`, the name its certificate is issued for, not 127.0.0.1):
#
#   bash scripts/start-postgres-tls.sh        # postgres://postgres@localhost:PORT/postgres
#
# Files in the data directory (default /tmp/cardunlock-pg-tls, CARDUNLOCK_PG_TLS_DIR):
#   ca.crt        the CA that issued the server certificate (DNS name `localhost` only)
#   other-ca.crt  an unrelated CA (a server certificate it did not issue must be refused)
# Subcommands: start (default), stop. Needs openssl and Debian's postgresql-15 (setup.sh).
set -euo pipefail

dir=${CARDUNLOCK_PG_TLS_DIR:-/tmp/cardunlock-pg-tls}
cmd=${1:-start}
log() { echo "start-postgres-tls: $*" >&2; }

. "$(dirname "$0")/lib.sh"
bin=$(pg_bindir) || {
  log "PostgreSQL server binaries not found (Debian package postgresql-15): run scripts/setup.sh"
  exit 1
}
running_port() {
  as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1 || return 1
  sed -n 4p "$dir/data/postmaster.pid"
}
url_of() { echo "postgres://postgres@localhost:$1/postgres"; }

certs() {
  [ -f "$dir/ca.crt" ] && return 0
  local t=$dir/tmp
  mkdir -p "$t"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=cardunlock test CA" -keyout "$t/ca.key" -out "$t/ca.crt" 2>/dev/null
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=unrelated CA" -keyout "$t/other.key" -out "$dir/other-ca.crt" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout "$t/server.key" -out "$t/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$t/ext"
  openssl x509 -req -in "$t/server.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial \
    -days 3650 -extfile "$t/ext" -out "$t/server.crt" 2>/dev/null
  mv "$t/server.crt" "$t/server.key" "$dir/"
  mv "$t/ca.crt" "$dir/ca.crt"
  rm -rf "$t"
}

init() {
  [ -f "$dir/data/PG_VERSION" ] && return 0
  log "creating a throw-away TLS cluster in $dir"
  mkdir -p "$dir/data" "$dir/sock"
  certs
  [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$dir"
  chmod 700 "$dir/data"
  chmod 600 "$dir/server.key"
  as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 >/dev/null
  # TLS only: a connection without it is refused.
  printf 'local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n' \
    >"$dir/data/pg_hba.conf"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir/data/pg_hba.conf"
  return 0
}

start() {
  local port
  if port=$(running_port); then url_of "$port"; return 0; fi
  init
  for port in $(seq 54350 54370); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-p $port -k $dir/sock -c listen_addresses=127.0.0.1 -c ssl=on \
            -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key" start >/dev/null; then
      log "TLS PostgreSQL on localhost:$port (CA $dir/ca.crt)"
      url_of "$port"
      return 0
    fi
    log "could not start on port $port (see $dir/server.log), trying the next"
  done
  log "no free port"
  exit 1
}

case "$cmd" in
  start) start ;;
  stop) as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true ;;
  *) log "usage: $0 [start|stop]"; exit 2 ;;
esac
