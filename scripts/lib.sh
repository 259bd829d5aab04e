# Helpers the scripts share; sourced (`. scripts/lib.sh`), never run.

# lock_reader N: takes the machine-wide lock of vpcd reader N (cardunlock_virtual_readers::ReaderLock:
# whoever has 127.0.0.1:(25963 + N) bound) and holds it until the calling script exits (the
# coprocess reads its stdin until the script's end of the pipe closes). Waits up to 300 s, as the
# Rust tests do; returns non-zero when the lock was not taken.
lock_reader() {
  local port=$((25963 + $1))
  coproc LOCK { exec perl -MSocket -e '
    socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!\n";
    setsockopt($s, SOL_SOCKET, SO_REUSEADDR, 1);
    my $until = time + 300;
    until (bind($s, sockaddr_in($ARGV[0], INADDR_LOOPBACK))) {
      die "127.0.0.1:$ARGV[0] still held after 300 s\n" if time > $until;
      select(undef, undef, undef, 0.05);
    }
    listen($s, 1) or die "listen: $!\n";
    $| = 1; print "locked\n";
    1 while <STDIN>;
  ' "$port"; }
  local line=
  read -r line <&"${LOCK[0]}"
  [ "$line" = locked ]
}

# need_qemu_arm WHO: installs qemu-system-arm (from bookworm-backports where that is configured)
# unless it is on PATH; WHO names the script in its notice.
need_qemu_arm() {
  command -v qemu-system-arm >/dev/null && return 0
  local sudo="" release=()
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then release=(-t bookworm-backports); fi
  echo "$1: installing qemu-system-arm ${release[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${release[@]}" qemu-system-arm >/dev/null
}

# pg_bindir: prints the PostgreSQL server binaries' folder (postgresql-15's per dpkg, else the
# newest /usr/lib/postgresql/*/bin); fails when there is no pg_ctl.
pg_bindir() {
  local bin="" initdb_path
  if command -v dpkg >/dev/null 2>&1; then
    initdb_path=$(dpkg -L postgresql-15 2>/dev/null | grep '/bin/initdb$' | head -n1 || true)
    [ -n "$initdb_path" ] && bin=$(dirname "$initdb_path")
  fi
  if [ -z "$bin" ]; then
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
  fi
  [ -n "$bin" ] && [ -x "$bin/pg_ctl" ] && echo "$bin"
}

# as_owner CMD...: runs CMD as the postgres user when root (PostgreSQL refuses to run as root).
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# wine_prefix: exports the Wine prefix the Windows scripts share ($CARGO_TARGET_DIR/wine-prefix,
# quiet, without the Mono / Gecko installers and their dialogs: the programs need neither),
# creates it once with $WINE64 and $WINESERVER, and sets sys32 to its system32 folder; exits when
# there is no prefix after that.
wine_prefix() {
  export WINEPREFIX="$CARGO_TARGET_DIR/wine-prefix"
  export WINEDEBUG=-all
  export WINEDLLOVERRIDES="mscoree,mshtml="
  if [ ! -f "$WINEPREFIX/system.reg" ]; then
    echo "== creating the Wine prefix $WINEPREFIX"
    timeout 300 "$WINE64" wineboot --init >/dev/null 2>&1 || true
    timeout 60 "$WINESERVER" -w 2>/dev/null || true
  fi
  sys32="$WINEPREFIX/drive_c/windows/system32"
  [ -d "$sys32" ] || { echo "FAIL: no Wine prefix at $WINEPREFIX"; exit 1; }
}

# wine_bcrypt: builds Wine's missing bcryptprimitives.dll (scripts/windows/bcryptprimitives.c)
# into the prefix's system32 ($sys32, from wine_prefix).
wine_bcrypt() {
  x86_64-w64-mingw32-gcc -shared -O2 -Wall -o "$sys32/bcryptprimitives.dll" \
    scripts/windows/bcryptprimitives.c -ladvapi32
}
