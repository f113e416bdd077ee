#!/usr/bin/env bash
# Fuzzes the C parsers of hostile input with libFuzzer (ASan and UBSan): builds the targets
# (`make -C native fuzz`), then runs each one over its committed corpus and fuzzes it for a bounded time.
# A crash, a leak, a sanitizer report or a timeout fails the run; the input that caused it is kept in
# native/build/fuzz/artifacts/ (after the fix, add it to the target's corpus as a regression case).
#
#   hack/fuzz.sh [SECONDS_PER_TARGET (default 60)] [TARGET...]
#   targets: fuzz_unpack fuzz_http fuzz_spec fuzz_control
set -euo pipefail
cd "$(dirname "$0")/../native"

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_unpack fuzz_http fuzz_spec fuzz_control)

corpus_of() {
  case $1 in
    fuzz_unpack) echo unpack/fuzz/corpus-unpack ;;
    fuzz_http) echo unpack/fuzz/corpus-http ;;
    fuzz_spec) echo runtime/fuzz/corpus ;;
    fuzz_control) echo monitor/fuzz/corpus ;;
    *) echo "unknown fuzz target $1" >&2; exit 2 ;;
  esac
}

make -s fuzz
mkdir -p build/fuzz/artifacts
failed=0
for t in "${targets[@]}"; do
  corpus=$(corpus_of "$t")
  work=$(mktemp -d "/tmp/berth-$t.XXXXXX")
  export BERTH_FUZZ_DIR=$work/scratch
  mkdir "$BERTH_FUZZ_DIR"
  # New inputs go to the scratch dir; the committed corpus is only read.
  mkdir "$work/found"
  if build/fuzz/"$t" -max_total_time="$seconds" -max_len=60000 -timeout=10 -rss_limit_mb=1024 \
      -artifact_prefix="build/fuzz/artifacts/$t-" -print_final_stats=1 "$work/found" "$corpus" > "build/fuzz/$t.log" 2>&1; then
    echo "$t: $(grep -a -m1 -o 'stat::number_of_executed_units: *[0-9]*' "build/fuzz/$t.log" | grep -o '[0-9]*$') inputs in ${seconds}s, nothing found"
  else
    failed=1
    echo "$t: FAILED (log: native/build/fuzz/$t.log)"
    grep -a -E 'ERROR|runtime error|SUMMARY|Test unit written' "build/fuzz/$t.log" | head -20
  fi
  rm -rf "$work"
done
exit $failed
