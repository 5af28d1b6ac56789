#!/usr/bin/env bash
# Runs the libFuzzer targets built in DIR (make fuzz, make fuzz-smoke, make check).
#
#   fuzz.sh run DIR SECONDS   each target for SECONDS, growing DIR/corpus/NAME from the
#                             seeds in tests/fuzz/corpus/NAME; crashes land in DIR/crashes
#   fuzz.sh smoke DIR         each target over its seeds and then a few seconds more, for
#                             make check: a regression in a parser fails the build quickly
set -uo pipefail

mode=${1:?usage: fuzz.sh run|smoke DIR [SECONDS]}
dir=${2:?usage: fuzz.sh run|smoke DIR [SECONDS]}
here=$(cd "$(dirname "$0")/.." && pwd)
seconds=${3:-60}
[ "$mode" = smoke ] && seconds=${FUZZ_SMOKE_SECONDS:-5}

shopt -s nullglob
targets=("$dir"/fuzz_*)
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no targets in $dir (make fuzz builds them)" >&2
  exit 1
fi
mkdir -p "$dir/crashes"
failed=()
for bin in "${targets[@]}"; do
  [ -x "$bin" ] || continue
  name=${bin##*/fuzz_}
  seeds="$here/tests/fuzz/corpus/$name"
  work="$dir/corpus/$name"
  mkdir -p "$work"
  log="$dir/$name.log"
  # -timeout: one input taking this long is a hang, reported as a failure.
  # -rss_limit_mb: a leak or an unbounded allocation is one too.
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$dir/crashes/$name-" "$work" "$seeds" >"$log" 2>&1
  status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [ $status -eq 0 ]; then
    echo "ok    fuzz $name: ${execs:-?} runs in ${seconds} s, ${cov:-cov: ?}, corpus $(ls "$work" | wc -l) inputs"
  else
    echo "FAIL  fuzz $name (exit $status): see $log; the input is in $dir/crashes/"
    grep -E 'ERROR|SUMMARY|==[0-9]+==' "$log" | head -5 | sed 's/^/      /'
    failed+=("$name")
  fi
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzz: failed: ${failed[*]}" >&2; exit 1; }
