#!/usr/bin/env bash
# make bench: install the peers if missing, then run bench/bench.py, which runs the
# scenarios of issue 5 on 127.0.0.1 and writes BENCHMARKS.md.
#   bench/run.sh [BUILD_DIR]      BENCH_RUNS=N (default 5; fewer only to try the script)  BENCH_ONLY=1256 (a subset)
set -euo pipefail

build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)

# command -> Debian package
declare -A need=(
  [nginx]=nginx-light [curl]=curl [rsync]=rsync [sshd]=openssh-server [scp]=openssh-client
  [ssh-keygen]=openssh-client [nc]=netcat-openbsd [iperf3]=iperf3 [wrk]=wrk [pgrep]=procps
  [python3]=python3 [openssl]=openssl [lscpu]=util-linux
)
missing=()
for cmd in "${!need[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
    missing+=("${need[$cmd]}")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" -eq 0 ]; then
    echo "bench: installing ${missing[*]}" >&2
    # Debian's postinst scripts would start nginx and sshd as system services: the
    # benchmark starts its own throwaway instances, so keep the services from starting.
    policy=/usr/sbin/policy-rc.d
    made_policy=0
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 ||
      { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2; }
    [ "$made_policy" -eq 1 ] && rm -f "$policy"
  else
    echo "bench: missing ${missing[*]}; run as root:" >&2
    echo "  apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

exec python3 "$here/bench.py" "$build"
