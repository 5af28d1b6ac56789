#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the man-page lint need (and,
# with the argument "fuzz", the fuzzers).
# As root it runs apt-get itself; otherwise it prints the exact command and fails,
# so that `make` stops with a clear instruction instead of a compiler error.
set -euo pipefail

# python3: tests/test_tutorial.cc runs the socket tutorial's own scripts (tests/tutorial/).
# zsh: tests/test_completion.cc checks the zsh completion with it (and skips without it).
packages=(g++ make pkg-config libssl-dev libcjson-dev libcriterion-dev mandoc man-db python3 zsh)
# `deps.sh fuzz`: also clang and its libFuzzer runtime, for make fuzz and make check.
if [ "${1:-}" = fuzz ]; then
  packages+=(clang libclang-rt-14-dev)
fi

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "reactor: missing Debian packages: ${missing[*]}" >&2
  echo "reactor: install them with:  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "reactor: installing missing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# The package lists on a fresh image may be empty or stale: update once, then install.
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
