#!/usr/bin/env bash
# Builds the release bundle berth-<version>-linux-amd64.tar.gz from a clean checkout of a commit (HEAD by
# default): hack/bundle-tree.sh's berth-<version>/ (the pinned node, the compiled daemon with production
# dependencies only, the addon, the native helpers, the systemd unit, the default config and CNI network,
# crictl.yaml, the install script and a SHA256SUMS manifest), tarred. Built twice from the same commit
# the bundle is the same bytes: a fixed build directory whose path is mapped out of the binaries, sorted
# entries, the commit's time as every mtime, root as every owner, gzip without a name or time.
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

bash hack/bundle-tree.sh "$work" >/dev/null
root=$work/$name

tarball=$out/$name-linux-amd64.tar.gz
(cd "$work" && LC_ALL=C tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -cf - "$name") | gzip -9 -n > "$tarball.tmp"
mv "$tarball.tmp" "$tarball"
echo "$tarball $(stat -c %s "$tarball") bytes, $(du -sb "$root" | cut -f1) bytes installed, commit $commit"
