#!/usr/bin/env bash
# Builds berth_<version>_amd64.deb from a release bundle (hack/release.sh), with dpkg-deb:
#   /usr/lib/berth        the pinned node, the daemon, its production dependencies, the addon
#   /usr/libexec/berth    the native helpers (berthd finds them through BERTH_HELPERS_DIR)
#   /usr/bin/berthd       the command
#   /lib/systemd/system/berth.service
#   /etc/berth/berth.toml, /etc/cni/net.d/10-berth.conflist   conffiles: an operator's edits survive upgrades
# Depends names what berth needs at run time, nothing it needs only to build. The preinst refuses to
# install a berth older than the state on the node (hack/deb/preinst).
#
#   bash hack/deb.sh [--fast] BUNDLE OUT_DIR
#
# BUNDLE is the release tarball or its tree (hack/bundle-tree.sh's berth-<version>/). --fast compresses
# with gzip -1 rather than xz (a package built to be installed right away, as hack/install.sh does).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
compress=(-Zxz)
if [ "${1:-}" = "--fast" ]; then compress=(-Zgzip -z1); shift; fi
bundle=${1:?usage: deb.sh [--fast] BUNDLE OUT_DIR}
out=${2:?usage: deb.sh [--fast] BUNDLE OUT_DIR}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -d "$bundle" ]; then
  cp -a "$bundle" "$work/"
else
  tar -xzf "$bundle" -C "$work"
fi
src=$(echo "$work"/berth-*)
version=${src##*/berth-}
# The newest state format this berth reads: the preinst refuses a node whose state is newer.
state_format=$("$src/node/bin/node" -p 'require(process.argv[1]).STATE_FORMAT' "$src/dist/src/state/state-format.js")
epoch=$(stat -c %Y "$src/package.json")
pkg=$work/pkg

install -d "$pkg/usr/lib/berth" "$pkg/usr/libexec/berth" "$pkg/usr/bin" "$pkg/lib/systemd/system" \
  "$pkg/etc/berth" "$pkg/etc/cni/net.d" "$pkg/usr/share/doc/berth" "$pkg/DEBIAN"
install -d "$pkg/usr/lib/berth/dist" "$pkg/usr/lib/berth/native/build/Release"
# The daemon only: dist/hack holds the developers' tools (benchmarks, crash driver).
cp -a "$src/node" "$src/node_modules" "$src/proto" "$src/package.json" "$pkg/usr/lib/berth/"
cp -a "$src/dist/src" "$src/dist/build-info.json" "$pkg/usr/lib/berth/dist/"
# /usr/bin/berthd runs the entry point with the shipped node: its #! line serves a source checkout only.
sed -i '1{/^#!/d}' "$pkg/usr/lib/berth/dist/src/main.js"
install -m 644 "$src/native/build/Release/berth_native.node" "$pkg/usr/lib/berth/native/build/Release/"
cp -a "$src"/native/bin/berth-* "$pkg/usr/libexec/berth/"
# Debian ships stripped binaries (the bundle keeps its symbols for debugging).
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$pkg"/usr/libexec/berth/berth-* \
  "$pkg/usr/lib/berth/native/build/Release/berth_native.node" "$pkg/usr/lib/berth/node/bin/node"
# What npm packages carry beside their code: their tests, benchmarks, docs pages and VCS files, and
# executable bits on files that are not programs.
nm=$pkg/usr/lib/berth/node_modules
find "$nm" \( -name .gitattributes -o -name .npmignore -o -name '.eslintrc*' -o -name index.html \) -type f -delete
# The packages' own command-line tools (#! scripts: yaml's, pino's, proto-loader's...): berth runs none.
grep -rlI --include='*.js' --include='*.mjs' --include='*.cjs' -m1 '^#!' "$nm" | while read -r f; do
  head -c 2 "$f" | grep -q '^#!' && rm -f "$f"
done
find "$nm" -depth -type d \( -name test -o -name tests -o -name benchmarks \) -exec rm -rf {} +
# Source maps, and openpgp's builds for browsers (berthd requires dist/node/openpgp.min.cjs).
find "$nm" -name '*.map' -type f -delete
rm -rf "$nm/openpgp/dist/lightweight" "$nm"/openpgp/dist/openpgp.*
find "$nm" -type f -perm /111 | while read -r f; do
  magic=$(head -c 4 "$f" | od -An -tx1 | tr -d ' \n')
  case "$magic" in 7f454c46 | 2321*) ;; *) chmod a-x "$f" ;; esac
done
install -m 644 "$src/berth.toml" "$pkg/etc/berth/berth.toml"
install -m 644 "$src/cni/10-berth.conflist" "$pkg/etc/cni/net.d/10-berth.conflist"
cat > "$pkg/usr/bin/berthd" <<'EOF'
#!/bin/sh
# berthd on the Node berth ships, with its helpers where the package puts them.
BERTH_HELPERS_DIR=/usr/libexec/berth
export BERTH_HELPERS_DIR
exec /usr/lib/berth/node/bin/node --max-semi-space-size=1 /usr/lib/berth/dist/src/main.js "$@"
EOF
chmod 755 "$pkg/usr/bin/berthd"
sed -e 's|@NODE@ --max-semi-space-size=1 @PREFIX@/dist/src/main.js|/usr/bin/berthd|' -e 's|@PREFIX@|/usr/lib/berth|g' -e 's|@NODE@|/usr/lib/berth/node/bin/node|g' \
  "$src/hack/systemd/berth.service" > "$pkg/lib/systemd/system/berth.service"
chmod 644 "$pkg/lib/systemd/system/berth.service"
install -m 644 "$repo/hack/deb/copyright" "$pkg/usr/share/doc/berth/copyright"
printf 'berth (%s) unstable; urgency=medium\n\n  * Built by hack/deb.sh from the release bundle.\n\n -- berth developers <maintainers@berth-runtime.org>  %s\n' \
  "$version" "$(date -u -R -d "@$epoch")" | gzip -9 -n > "$pkg/usr/share/doc/berth/changelog.gz"
install -d "$pkg/usr/share/man/man8"
gzip -9 -n < "$repo/hack/deb/berthd.8" > "$pkg/usr/share/man/man8/berthd.8.gz"
install -d "$pkg/usr/share/lintian/overrides"
install -m 644 "$repo/hack/deb/lintian-overrides" "$pkg/usr/share/lintian/overrides/berth"
for script in preinst postinst prerm postrm; do install -m 755 "$repo/hack/deb/$script" "$pkg/DEBIAN/$script"; done
sed -i -e "s/@STATE_FORMAT@/$state_format/" -e "s/@VERSION@/$version/" "$pkg/DEBIAN/preinst"
# crictl's endpoints: the postinst writes /etc/crictl.yaml from it where there is none (not a conffile:
# the file is crictl's, and an operator's own stays untouched).
install -D -m 644 "$src/crictl.yaml" "$pkg/usr/share/berth/crictl.yaml"
printf '/etc/berth/berth.toml\n/etc/cni/net.d/10-berth.conflist\n' > "$pkg/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size/" "$repo/hack/deb/control" > "$pkg/DEBIAN/control"
find "$pkg" -exec touch -h -d "@$epoch" {} +
deb=$out/berth_${version}_amd64.deb
SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group "${compress[@]}" --build "$pkg" "$deb" >/dev/null
echo "$deb $(stat -c %s "$deb") bytes"
