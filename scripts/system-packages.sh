#!/usr/bin/env bash
# Install the Debian packages the project needs, only those whose command is missing.
# Asking apt for a package that conflicts with what is installed makes it refuse the whole list: Node.js from
# NodeSource ships its own npm and conflicts with Debian's `npm`, so nothing already present is ever requested.
set -euo pipefail

# command -> Debian package that provides it
declare -A NEEDED=(
  [bwrap]=bubblewrap
  [git]=git
  [node]=nodejs
  [npm]=npm
)
# Extra pairs can be passed as arguments: `system-packages.sh chromium=chromium /usr/include/krb5.h=libkrb5-dev`
# (a key starting with / is a file the package provides, for packages without a command).
for pair in "$@"; do NEEDED[${pair%%=*}]=${pair#*=}; done

present() {
  if [[ "$1" == /* ]]; then [ -e "$1" ]; else command -v "$1" >/dev/null 2>&1; fi
}
missing=()
for key in "${!NEEDED[@]}"; do
  present "$key" || missing+=("${NEEDED[$key]}")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi

echo "installing Debian packages: ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "error: ${missing[*]} missing and this is not root; install them with apt-get and run again" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
