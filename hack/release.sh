#!/usr/bin/env bash
# Builds the release bundle berth-<version>-linux-amd64.tar.gz from a clean checkout of a commit (HEAD by
# default): the pinned node, the compiled daemon with production dependencies only, the addon, the native
# helpers, the systemd unit, the default config and CNI network, crictl.yaml, the install script and a
# SHA256SUMS manifest, all under berth-<version>/. Built twice from the same commit the bundle is the same
# bytes: a fixed build directory whose path is mapped out of the binaries, sorted entries, the commit's
# time as every mtime, root as every owner, gzip without a name or time.
#
#   bash hack/release.sh [--ref REF] OUT_DIR
#
# Needs what hack/install.sh installs (the toolchain, npm with access to the npm registry).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
ref=HEAD
if [ "${1:-}" = "--ref" ]; then ref=${2:?--ref needs a commit}; shift 2; fi
out=${1:?usage: release.sh [--ref REF] OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# One fixed place to build in: the same paths every time, mapped to "." in the binaries' debug info.
work=${BERTH_RELEASE_WORK:-/tmp/berth-release}
rm -rf "$work"
mkdir -p "$work"
commit=$(git -C "$repo" rev-parse --verify "$ref^{commit}")
git clone -q --no-checkout "$repo" "$work/src"
git -C "$work/src" checkout -q "$commit"
epoch=$(git -C "$work/src" log -1 --format=%ct "$commit")

cd "$work/src"
version=$(sed -n 's/^  "version": "\([^"]*\)",$/\1/p' package.json)
name=berth-$version
map="-ffile-prefix-map=$work/src=."
npm ci --no-audit --no-fund --loglevel=error
CFLAGS="-O2 -g $map" CXXFLAGS="-O2 -g $map" npm run -s build >/dev/null

stage=$work/stage
bash hack/node-vm/stage-berth.sh "$stage" >/dev/null
root=$work/$name
mv "$stage/opt/berth" "$root"
# What an operator needs beside the daemon: the default config, crictl's, and a command to install.
node_modules/.bin/node dist/src/main.js config --config /dev/null > "$root/berth.toml"
printf 'runtime-endpoint: unix:///run/berth/berth.sock\nimage-endpoint: unix:///run/berth/berth.sock\ntimeout: 10\n' > "$root/crictl.yaml"
cat > "$root/install" <<'EOF'
#!/bin/sh
# Configures berth where this bundle is (move it to /opt/berth first, say) and starts berthd: the Debian
# packages berth needs at run time if one is missing, then the systemd unit where systemd runs, else
# berthd detached.
set -e
cd "$(dirname "$0")"
exec bash hack/install.sh --prebuilt "$@"
EOF
chmod 755 "$root/install"
(cd "$root" && find . -type f ! -name SHA256SUMS -print0 | LC_ALL=C sort -z | xargs -0 sha256sum > SHA256SUMS)

tarball=$out/$name-linux-amd64.tar.gz
(cd "$work" && LC_ALL=C tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -cf - "$name") | gzip -9 -n > "$tarball.tmp"
mv "$tarball.tmp" "$tarball"
echo "$tarball $(stat -c %s "$tarball") bytes, $(du -sb "$root" | cut -f1) bytes installed, commit $commit"
