#!/usr/bin/env bash
# Installs an offline VS Code extension host for the end-to-end test: code-server 4.100.3 (VS Code 1.100.3, the last
# release that runs on Node 20) from npm, its native modules rebuilt locally, Debian's ripgrep in place of the
# GitHub download, and playwright-core to drive Debian's Chromium. About 3 minutes and 300 MB.
# Usage: e2e/setup-code-server.sh [DIR]   (default: ~/.cache/mimo-e2e); needs root for apt-get.
set -euo pipefail
DIR="${1:-$HOME/.cache/mimo-e2e}"
mkdir -p "$DIR"
cd "$DIR"

if ! command -v chromium >/dev/null || ! command -v rg >/dev/null || [ ! -e /usr/include/krb5.h ]; then
  apt-get install -y --no-install-recommends chromium ripgrep libkrb5-dev
fi
[ -f package.json ] || echo '{"name": "mimo-e2e", "private": true}' > package.json
npm install --no-audit --no-fund --ignore-scripts code-server@4.100.3 playwright-core@1.65.1

VSCODE="$DIR/node_modules/code-server/lib/vscode"
(cd "$VSCODE" && npm install --no-audit --no-fund --omit=dev --ignore-scripts)
mkdir -p "$VSCODE/node_modules/@vscode/ripgrep/bin"
cp /usr/bin/rg "$VSCODE/node_modules/@vscode/ripgrep/bin/rg"
# node-pty's post-install cleanup fails here, but its pty.node gets built, which is all code-server needs.
(cd "$VSCODE" && npm rebuild kerberos node-pty @parcel/watcher @vscode/spdlog @vscode/deviceid native-watchdog || true)
ln -sfn node_modules "$VSCODE/node_modules.asar"
mkdir -p "$VSCODE/bin/remote-cli" "$VSCODE/bin/helpers"
ln -sf ../../../../out/node/entry.js "$VSCODE/bin/remote-cli/code-server" 2>/dev/null || true
[ -e "$VSCODE/bin/helpers/browser.sh" ] || printf '#!/bin/sh\nexit 0\n' > "$VSCODE/bin/helpers/browser.sh"
(cd "$VSCODE/extensions" && npm install --no-audit --no-fund --omit=dev --ignore-scripts)
npm rebuild argon2 || true  # the prebuilt download fails offline; it builds from source
echo "code-server ready in $DIR"
