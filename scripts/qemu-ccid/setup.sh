#!/usr/bin/env bash
# Installs what the QEMU usb-ccid test needs (idempotent; needs root or sudo) and prepares a guest
# kernel in a cache folder (default: target/qemu-ccid, or $QEMU_CCID_CACHE):
# - qemu-system-x86 from bookworm-backports (the image's qemu-utils already come from there; the
#   bookworm-main package would replace them),
# - busybox-static (the guest's userland), cpio,
# - the Debian kernel package, extracted with dpkg -x: vmlinuz and the usb-common, usbcore and
#   uhci-hcd modules (uncompressed),
# - the x86_64-unknown-linux-gnu target for the static guest binary.
# Method and reasons: docs/qemu-ccid.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE=${QEMU_CCID_CACHE:-$PWD/target/qemu-ccid}
mkdir -p "$CACHE"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

updated=0
apt_update() {
  if [ "$updated" = 0 ]; then
    $SUDO apt-get update -qq
    updated=1
  fi
}

# bookworm-backports, from the same mirror and key as the machine's Debian entry.
if ! installed qemu-system-x86 || ! command -v qemu-system-x86_64 >/dev/null; then
  if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    src=$(grep -rls "deb.debian.org/debian$\|/debian$" /etc/apt/sources.list.d/ 2>/dev/null | head -n1 || true)
    uri=$(grep -hs "^URIs:.*debian$" /etc/apt/sources.list.d/*.sources | grep -v security | head -n1 | awk '{print $2}')
    key=$(grep -hs "^Signed-By:" /etc/apt/sources.list.d/*.sources | head -n1 | awk '{print $2}')
    uri=${uri:-http://deb.debian.org/debian}
    key=${key:-/usr/share/keyrings/debian-archive-keyring.gpg}
    echo "setup-qemu: adding bookworm-backports ($uri)${src:+ next to $src}"
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' "$uri" "$key" |
      $SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
  fi
  apt_update
  echo "setup-qemu: installing qemu-system-x86 from bookworm-backports"
  $SUDO apt-get install -y -qq -t bookworm-backports --no-install-recommends qemu-system-x86 >/dev/null
fi

missing=()
for p in busybox-static cpio gzip xz-utils; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt_update
  echo "setup-qemu: installing ${missing[*]}"
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The guest kernel and the three USB modules.
if [ ! -s "$CACHE/vmlinuz" ] || [ ! -s "$CACHE/modules/uhci-hcd.ko" ]; then
  apt_update
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [ -n "$pkg" ] || { echo "setup-qemu: cannot find the kernel package behind linux-image-amd64" >&2; exit 1; }
  echo "setup-qemu: extracting $pkg"
  rm -rf "$CACHE/kernel" "$CACHE/modules" "$CACHE"/*.deb
  (cd "$CACHE" && apt-get download -qq -o APT::Sandbox::User=root "$pkg")
  dpkg -x "$CACHE"/"$pkg"_*.deb "$CACHE/kernel"
  cp "$(ls "$CACHE"/kernel/boot/vmlinuz-* | head -n1)" "$CACHE/vmlinuz"
  mkdir -p "$CACHE/modules"
  for m in usb-common usbcore uhci-hcd; do
    f=$(find "$CACHE/kernel/lib/modules" -name "$m.ko*" | head -n1)
    [ -n "$f" ] || { echo "setup-qemu: module $m not in $pkg" >&2; exit 1; }
    case "$f" in
      *.xz) xz -dc "$f" >"$CACHE/modules/$m.ko" ;;
      *.zst) zstd -qdc "$f" >"$CACHE/modules/$m.ko" ;;
      *.gz) gzip -dc "$f" >"$CACHE/modules/$m.ko" ;;
      *) cp "$f" "$CACHE/modules/$m.ko" ;;
    esac
  done
  rm -rf "$CACHE/kernel" "$CACHE"/*.deb
fi

rustup target list --installed | grep -q '^x86_64-unknown-linux-gnu$' || rustup target add x86_64-unknown-linux-gnu
echo "setup-qemu: done ($(qemu-system-x86_64 --version | head -n1); kernel in $CACHE)"
