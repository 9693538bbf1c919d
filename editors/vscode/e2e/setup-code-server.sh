#!/usr/bin/env bash
# Installs an offline VS Code extension host for the end-to-end test: code-server 4.100.3 (VS Code 1.100.3, the last
# release that runs on Node 20) from npm, its native modules rebuilt locally, Debian's ripgrep in place of the
# GitHub download, and playwright-core to drive Debian's Chromium. About 3 minutes and 300 MB the first time; a
# finished install (its stamp file names these versions) is kept, so running it again costs nothing.
# Usage: e2e/setup-code-server.sh [DIR]   (default: .cache/editors/code-server in the repository, as `make setup`)
# Needs the Debian packages chromium, ripgrep, libkrb5-dev, g++ and make (`make setup` installs the missing ones).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../../.." && pwd)"
DIR="${1:-$REPO/.cache/editors/code-server}"
VERSIONS="code-server@4.100.3 playwright-core@1.65.1"
STAMP="$DIR/.installed"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$VERSIONS" ]; then
  exit 0
fi
for needed in chromium rg g++ make; do
  command -v "$needed" >/dev/null || { echo "error: $needed is missing: run make setup (or apt-get install it)" >&2; exit 1; }
done
[ -e /usr/include/krb5.h ] || { echo "error: libkrb5-dev is missing: run make setup" >&2; exit 1; }
DIR="$(mkdir -p "$DIR" && cd "$DIR" && pwd)"
STAMP="$DIR/.installed"
cd "$DIR"
rm -f "$STAMP"

[ -f package.json ] || echo '{"name": "mimo-e2e", "private": true}' > package.json
# shellcheck disable=SC2086
npm install --no-audit --no-fund --loglevel=error --ignore-scripts $VERSIONS

VSCODE="$DIR/node_modules/code-server/lib/vscode"
(cd "$VSCODE" && npm install --no-audit --no-fund --loglevel=error --omit=dev --ignore-scripts)
mkdir -p "$VSCODE/node_modules/@vscode/ripgrep/bin"
cp "$(command -v rg)" "$VSCODE/node_modules/@vscode/ripgrep/bin/rg"
# node-pty's post-install cleanup fails here, but its pty.node gets built, which is all code-server needs.
(cd "$VSCODE" && npm rebuild --loglevel=error kerberos node-pty @parcel/watcher @vscode/spdlog @vscode/deviceid \
  native-watchdog >/dev/null || true)
ln -sfn node_modules "$VSCODE/node_modules.asar"
mkdir -p "$VSCODE/bin/remote-cli" "$VSCODE/bin/helpers"
ln -sf ../../../../out/node/entry.js "$VSCODE/bin/remote-cli/code-server" 2>/dev/null || true
[ -e "$VSCODE/bin/helpers/browser.sh" ] || printf '#!/bin/sh\nexit 0\n' > "$VSCODE/bin/helpers/browser.sh"
(cd "$VSCODE/extensions" && npm install --no-audit --no-fund --loglevel=error --omit=dev --ignore-scripts)
npm rebuild --loglevel=error argon2 >/dev/null || true  # the prebuilt download fails offline; it builds from source
[ -x node_modules/.bin/code-server ] || { echo "error: code-server did not install in $DIR" >&2; exit 1; }
echo "$VERSIONS" > "$STAMP"
echo "code-server ready in $DIR" >&2
