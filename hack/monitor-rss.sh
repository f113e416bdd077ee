#!/usr/bin/env bash
# Measures berth-monitor's memory: starts N monitors (default 100), each watching a `sleep 1000` as
# its container, reads each monitor's VmRSS from /proc/<pid>/status, prints the smallest, mean,
# largest and total, then ends the sleeps (so the monitors exit) and removes what it made.
#
#   bash hack/monitor-rss.sh [N] [--sockets]
#
# --sockets gives each monitor a stdin pipe, an attach socket and a control socket, as berthd does
# for an interactive container. Needs native/bin/berth-monitor (npm run build:native).
set -euo pipefail
cd "$(dirname "$0")/.."

n=100
sockets=0
for arg in "$@"; do
  case "$arg" in
    --sockets) sockets=1 ;;
    *[!0-9]* | '') echo "usage: $0 [N] [--sockets]" >&2; exit 2 ;;
    *) n=$arg ;;
  esac
done
monitor=native/bin/berth-monitor
[ -x "$monitor" ] || { echo "monitor-rss.sh: build $monitor first (npm run build:native)" >&2; exit 1; }

dir=$(mktemp -d /tmp/berth-monitor-rss.XXXXXX)
monitors=()
cleanup() {
  # The sleeps are the monitors' containers: ending them ends the monitors.
  for ((i = 1; i <= n; i++)); do
    if [ -s "$dir/$i/pid" ]; then kill "$(cat "$dir/$i/pid")" 2>/dev/null || true; fi
  done
  for pid in "${monitors[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

for ((i = 1; i <= n; i++)); do
  mkdir "$dir/$i"
  extra=()
  if [ "$sockets" = 1 ]; then extra=(--stdin --attach-socket "$dir/$i/attach" --control-socket "$dir/$i/control"); fi
  "$monitor" --log "$dir/$i/log" --exit-file "$dir/$i/exit" --pid-file "$dir/$i/pid" "${extra[@]}" -- sleep 1000 \
    </dev/null >/dev/null 2>"$dir/$i/stderr" &
  monitors+=("$!")
done
for ((i = 1; i <= n; i++)); do
  for ((t = 0; t < 500; t++)); do [ -s "$dir/$i/pid" ] && break; sleep 0.01; done
  [ -s "$dir/$i/pid" ] || { echo "monitor-rss.sh: monitor $i did not start: $(cat "$dir/$i/stderr")" >&2; exit 1; }
done
sleep 0.5

for pid in "${monitors[@]}"; do
  awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"
done | sort -n | awk -v n="$n" -v bin="$monitor" '
  { kb[NR] = $1; sum += $1 }
  END {
    if (NR != n) { print "monitor-rss.sh: only " NR " of " n " monitors are running" > "/dev/stderr"; exit 1 }
    printf "%d monitors (%s), VmRSS per monitor: min %d kB, mean %.0f kB, max %d kB; total %.1f MiB\n",
      n, bin, kb[1], sum / NR, kb[NR], sum / 1024
  }'
