#!/usr/bin/env bash
# mandoc's linter must report nothing on any page; `man -l` must render each one.
set -euo pipefail
[ $# -gt 0 ] || { echo "lint-man: no pages" >&2; exit 1; }
out=$(mandoc -Tlint -W warning "$@" 2>&1 || true)
if [ -n "$out" ]; then
  printf '%s\n' "$out" >&2
  echo "lint-man: mandoc -Tlint reported the lines above" >&2
  exit 1
fi
for page in "$@"; do
  MANWIDTH=80 man -l "$page" >/dev/null 2>&1 </dev/null ||
    { echo "lint-man: man -l $page failed" >&2; exit 1; }
done
echo "lint-man: ${#} pages clean"
