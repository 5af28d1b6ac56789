#!/usr/bin/env bash
# mandoc's linter, at its strictest level (style), must report nothing on any page, and
# `man -l` must render each one.
#
# One kind of message depends on the machine, not on the pages: "referenced manual not
# found" for a page this machine has not installed (openat2(2) without manpages-dev), and
# mandoc's complaints about an outdated system mandoc.db. Our own pages' references to
# each other are checked for real, through a private manpath that holds them; references
# to system pages are reported as unverifiable only when the page is absent here.
set -euo pipefail
[ $# -gt 0 ] || { echo "lint-man: no pages" >&2; exit 1; }

ours=$(mktemp -d)
trap 'rm -rf "$ours"' EXIT
names=()
# Every page of the project goes on the private manpath, whichever are being linted.
for page in "$@" "$(dirname "$0")"/../man/*.[0-9]; do
  section=${page##*.}
  mkdir -p "$ours/man$section"
  cp -f "$page" "$ours/man$section/"
  base=${page##*/}
  names+=("${base%.*}")
done
makewhatis "$ours" >/dev/null 2>&1 || true
system=$(manpath 2>/dev/null || echo /usr/share/man)

out=$(MANPATH="$ours:$system" mandoc -Tlint -W style "$@" 2>&1 || true)
problems=()
unverified=()
while IFS= read -r line; do
  [ -n "$line" ] || continue
  case "$line" in
    *"outdated mandoc.db"*) continue ;;
    *"referenced manual not found: Xr "*)
      ref=${line##*Xr }; ref=${ref%% (*}; name=${ref%% *}
      mine=0
      for n in "${names[@]}"; do [ "$n" = "$name" ] && mine=1; done
      if [ $mine -eq 0 ]; then unverified+=("$ref"); continue; fi ;;
  esac
  problems+=("$line")
done <<<"$out"

if [ ${#problems[@]} -gt 0 ]; then
  printf '%s\n' "${problems[@]}" >&2
  echo "lint-man: mandoc -Tlint -W style reported the lines above" >&2
  exit 1
fi
for page in "$@"; do
  MANWIDTH=80 man -l "$page" >/dev/null 2>&1 </dev/null ||
    { echo "lint-man: man -l $page failed" >&2; exit 1; }
done
note=""
if [ ${#unverified[@]} -gt 0 ]; then
  note=" (system pages not installed here, so not checked: $(printf '%s\n' "${unverified[@]}" | sort -u | tr '\n' ',' | sed 's/,$//; s/,/, /g'))"
fi
echo "lint-man: ${#} pages clean at style level$note"
