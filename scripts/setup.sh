#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine (idempotent; needs root or sudo):
# PC/SC (pcscd, the vpcd virtual reader driver, libpcsclite-dev), libclang-dev for the
# piv-authenticator peer, the independent clients (OpenSC, yubico-piv-tool), tmux for terminal
# tests, PostgreSQL 15 for the unlock server's second backend, and the thumbv7em target for the
# no_std build; for the unlock window (gui/): Xvfb, xdotool, ImageMagick, Tesseract, Mesa's
# software OpenGL and the X libraries winit loads; for the Windows build: mingw-w64 and Wine;
# for the console's browser tests: Chromium and its WebDriver (chromedriver).
set -euo pipefail

packages=(pcscd vsmartcard-vpcd libpcsclite-dev pcsc-tools libclang-dev clang opensc yubico-piv-tool tmux pkg-config binutils postgresql-15
  xvfb xdotool imagemagick tesseract-ocr libgl1-mesa-dri libxkbcommon-x11-0 libxcursor1 libxrandr2 libxi6 libx11-xcb1 gcc-mingw-w64-x86-64 wine64
  chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
rustup target list --installed | grep -q '^thumbv7em-none-eabihf$' || rustup target add thumbv7em-none-eabihf
echo "setup: done"
