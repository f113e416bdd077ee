#!/usr/bin/env bash
# Runs critest (cri-tools' CRI validation suite, v1.26; `critest` must be on PATH: this script never
# builds it) against a private berthd, offline. It builds berth if needed, starts a registry on a free
# loopback port, pushes the stand-in images of hack/images/critest/ there, writes a berth.toml whose
# registry.k8s.io and gcr.io mirrors point at it, starts berthd in a temp dir, runs critest with the
# given arguments, prints the summary, and stops and removes everything it started (by PID).
#
#   bash hack/critest.sh -ginkgo.skip 'Streaming|Windows'
#   bash hack/critest.sh -ginkgo.focus 'Image Manager'
#
# Environment: BERTH_HANDLER (runtime handler, default berth; runc works too), BERTH_CRITEST_KEEP=1 (keep the temp dir:
# berthd.log, critest.log, berth.toml), BERTH_NO_BUILD=1 (use dist/ as it is), TMPDIR.
# Run as root. critest's specs need host ports 12000-12003 free.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$PWD
handler=${BERTH_HANDLER:-berth}

log() { echo "critest.sh: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then log "run as root (berthd manages namespaces, mounts and cgroups)"; exit 1; fi
if ! command -v critest >/dev/null; then log "critest is not on PATH (cri-tools v1.26)"; exit 1; fi

# Build when dist/ is missing or older than a TypeScript source.
if [ "${BERTH_NO_BUILD:-0}" != 1 ]; then
  if [ ! -e dist/src/main.js ] || [ ! -e dist/hack/critest-images.js ] \
    || [ -n "$(find src hack test/support proto -newer dist/src/main.js \( -name '*.ts' -o -name '*.proto' \) -print -quit 2>/dev/null)" ]; then
    log "building berth (npm run build)"
    npm run build --silent >&2
  fi
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/berth-critest.XXXXXX")
registry_pid=
berthd_pid=
sock=$tmp/run/berth.sock

cleanup() {
  local rc=$?
  set +e
  if [ -n "$berthd_pid" ] && kill -0 "$berthd_pid" 2>/dev/null; then
    # berthd never stops containers when it stops: remove whatever critest left behind first.
    if command -v crictl >/dev/null; then
      crictl --runtime-endpoint "unix://$sock" --image-endpoint "unix://$sock" --timeout 30s rmp --all --force >/dev/null 2>&1
    fi
    kill -TERM "$berthd_pid"
    for _ in $(seq 150); do kill -0 "$berthd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$berthd_pid" 2>/dev/null && kill -KILL "$berthd_pid"
    wait "$berthd_pid" 2>/dev/null
  fi
  if [ -n "$registry_pid" ] && kill -0 "$registry_pid" 2>/dev/null; then
    kill -TERM "$registry_pid"   # hack/critest-images.js: stops its registry and removes its data
    wait "$registry_pid" 2>/dev/null
  fi
  # Anything still mounted under the temp dir (leftover container rootfs, pinned namespaces): unmount
  # it, deepest first, before the directory is removed, so that rm never reaches into a mount.
  awk -v p="$tmp/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  if [ "${BERTH_CRITEST_KEEP:-0}" = 1 ]; then
    log "kept $tmp (berthd.log, critest.log, berth.toml)"
  else
    rm -rf --one-file-system "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A registry on a free loopback port, with the images pushed (hack/critest-images.ts keeps it running
# until SIGTERM).
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
registry=127.0.0.1:$port
log "pushing the critest images to a registry at $registry"
node_modules/.bin/node dist/hack/critest-images.js --registry "$registry" --start >"$tmp/registry.log" 2>&1 &
registry_pid=$!
until grep -q '^registry running at' "$tmp/registry.log" 2>/dev/null; do
  if ! kill -0 "$registry_pid" 2>/dev/null; then
    wait "$registry_pid" 2>/dev/null || true
    registry_pid=
    log "pushing the images failed:"; cat "$tmp/registry.log" >&2; exit 1
  fi
  sleep 0.2
done

mkdir -p "$tmp/cni" "$tmp/run"
cp cni/10-berth.conflist "$tmp/cni/"
cat >"$tmp/berth.toml" <<EOF
# Written by hack/critest.sh: critest's images come from the local registry at $registry.
[runtime]
default_handler = "$handler"

[image.registries."registry.k8s.io"]
mirrors = ["http://$registry"]

[image.registries."gcr.io"]
mirrors = ["http://$registry"]
EOF

log "starting berthd (handler $handler) in $tmp"
setsid "$repo/node_modules/.bin/node" --max-semi-space-size=1 "$repo/dist/src/main.js" serve --config "$tmp/berth.toml" --listen "$sock" \
  --root "$tmp/root" --state "$tmp/state" --cni-conf-dir "$tmp/cni" --log-format json \
  >"$tmp/berthd.log" 2>&1 </dev/null &
berthd_pid=$!
for _ in $(seq 200); do
  [ -S "$sock" ] && grep -q '"berthd ready"' "$tmp/berthd.log" && break
  if ! kill -0 "$berthd_pid" 2>/dev/null; then log "berthd exited:"; tail -n 20 "$tmp/berthd.log" >&2; exit 1; fi
  sleep 0.1
done
[ -S "$sock" ] || { log "berthd did not become ready:"; tail -n 20 "$tmp/berthd.log" >&2; exit 1; }

log "running critest $*"
set +e
critest --runtime-endpoint "unix://$sock" --image-endpoint "unix://$sock" "$@" 2>&1 | tee "$tmp/critest.log"
status=${PIPESTATUS[0]}
set -e
plain() { sed 's/\x1b\[[0-9;]*m//g' "$tmp/critest.log"; }
summary=$(plain | grep -E '^(SUCCESS|FAIL)! -- [0-9]+ Passed' | tail -n 1 || true)
ran=$(plain | grep -E '^Ran [0-9]+ of [0-9]+ Specs' | tail -n 1 || true)
echo
echo "critest: ${ran:-no specs ran}${summary:+ -- $summary}"
plain | grep -E '^\s*\[FAIL\] ' | sed 's/^ */critest: /' | sort -u || true
exit "$status"
