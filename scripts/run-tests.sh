#!/usr/bin/env bash
# Runs every Criterion test binary of one build directory once per poller backend.
#
#   scripts/run-tests.sh BUILD_DIR BACKEND...   run, append counts to BUILD/../.check-tally
#   scripts/run-tests.sh --summary              print the totals of this `make check`, reset them
#   scripts/run-tests.sh --reset                forget the counts of an earlier, interrupted run
#
# Each binary gets REACTOR_BACKEND (the event loop's backend) and REACTOR_BUILD_DIR (where
# the integration tests find reactord and reactorc). Criterion runs each test in its own
# process with its own timeout, so one hung or crashing test cannot take the run down.
set -uo pipefail
tally=build/.check-tally

if [ "${1:-}" = --reset ]; then
  rm -f "$tally"
  exit 0
fi

if [ "${1:-}" = --summary ]; then
  [ -f "$tally" ] || { echo "check: no test ran" >&2; exit 1; }
  read -r passed failed skipped < <(awk '{p+=$1; f+=$2; s+=$3} END {print p+0, f+0, s+0}' "$tally")
  rm -f "$tally"
  echo "check: $passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
  exit
fi

build=$1; shift
mkdir -p build
status=0
for backend in "$@"; do
  for bin in "$build"/tests/test_*; do
    [ -x "$bin" ] || continue
    name=${bin##*/}
    log=$(mktemp)
    REACTOR_BACKEND=$backend REACTOR_BUILD_DIR=$build \
      "$bin" --verbose --jobs="${REACTOR_TEST_JOBS:-2}" >"$log" 2>&1
    rc=$?
    synthesis=$(grep -a 'Synthesis:' "$log" | tail -n 1)
    tested=$(sed -n 's/.*Tested: \([0-9]*\).*/\1/p' <<<"$synthesis")
    passing=$(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' <<<"$synthesis")
    tested=${tested:-0}; passing=${passing:-0}
    failed=$((tested - passing))
    # Criterion leaves skipped tests out of its synthesis; say them out loud.
    skipped=$(grep -a -c '^\[SKIP\]' "$log")
    if [ $rc -ne 0 ] || [ -z "$synthesis" ]; then
      [ $failed -gt 0 ] || failed=1
      status=1
      echo "FAIL  $build $backend $name (exit $rc)"
      # Criterion's verdict lines first: a sanitizer's leak report after a failed or
      # timed-out test can run to hundreds of lines and push them out of the tail.
      grep -a -E '^\[(FAIL|----)\] .*(Assertion|Timed out|Crash|FAIL)|^\[FAIL\]|timed out|Timed out' "$log" | head -n 20
      grep -a -A4 'Assertion Failed' "$log" | grep -a -v '^\[----\] *$' | head -n 40
      echo "      ... the last lines of its output:"
      grep -a -v '^\[----\] *$' "$log" | tail -n 40
    else
      echo "ok    $build $backend $name: $passing/$tested"
    fi
    grep -a '^\[SKIP\]' "$log" | sed "s|^|      $build $backend |"
    echo "$passing $failed $skipped" >>"$tally"
    rm -f "$log"
  done
done
exit $status
