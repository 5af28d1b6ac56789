#!/usr/bin/env bash
# make demo: the whole job end to end on this machine, leaving nothing behind.
#   1. a ~200 MiB file in a temporary served root
#   2. reactord on 127.0.0.1 (an ephemeral port), creating its secret on first start
#   3. reactorc downloading it over TLS 1.3 (keyed by the shared secret) with the
#      progress bar, verified by SHA-256; the client says what protected the connection
#   4. the download uploaded back under another name (reactord -w), verified by the server
#   5. the server stopped with SIGTERM, everything removed
# XDG_CONFIG_HOME points into the temporary directory, so the zero-configuration path
# (the server creates the secret, the client finds it) runs without touching ~/.config.
set -euo pipefail
build=${1:-build}
reactord=$build/reactord
reactorc=$build/reactorc
size_mib=${DEMO_SIZE_MIB:-200}

work=$(mktemp -d "${TMPDIR:-/tmp}/reactor-demo.XXXXXX")
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

mkdir -p "$work/root" "$work/downloads" "$work/config"
export XDG_CONFIG_HOME=$work/config

echo "demo: making a ${size_mib} MiB file in $work/root"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom >"$work/root/big.bin"

echo "demo: starting reactord"
"$reactord" -w -r "$work/root" -l 127.0.0.1:0 2>"$work/server.log" &
server_pid=$!
port=
for _ in $(seq 1 100); do  # up to 10 s
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/server.log" | head -n 1)
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "demo: reactord did not start:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
sed 's/^/  server| /' "$work/server.log"

echo "demo: reactorc -v -s 127.0.0.1:$port get big.bin"
start=$(date +%s.%N)
"$reactorc" -v -s "127.0.0.1:$port" get big.bin "$work/downloads/big.bin" 2>&1 | tee "$work/client.log"
end=$(date +%s.%N)
grep -q 'authenticated; TLSv1.3' "$work/client.log" || { echo "demo: the download was not encrypted" >&2; exit 1; }

src=$(sha256sum "$work/root/big.bin" | cut -d' ' -f1)
dst=$(sha256sum "$work/downloads/big.bin" | cut -d' ' -f1)
echo "demo: served     sha256 $src"
echo "demo: downloaded sha256 $dst"
[ "$src" = "$dst" ] || { echo "demo: MISMATCH" >&2; exit 1; }
awk -v s="$start" -v e="$end" -v m="$size_mib" \
  'BEGIN { printf "demo: %d MiB in %.2f s over TLS, including connect and authentication\n", m, e - s }'

echo "demo: reactorc -s 127.0.0.1:$port put big.bin back.bin"
"$reactorc" -s "127.0.0.1:$port" put "$work/downloads/big.bin" back.bin
back=$(sha256sum "$work/root/back.bin" | cut -d' ' -f1)
echo "demo: uploaded   sha256 $back"
[ "$src" = "$back" ] || { echo "demo: upload MISMATCH" >&2; exit 1; }

kill -TERM "$server_pid"
wait "$server_pid"
status=$?
server_pid=
echo "demo: reactord stopped (exit $status); its log:"
sed 's/^/  server| /' "$work/server.log" | tail -n 6
echo "demo: OK"
