#!/usr/bin/env bash
# The floor of a pod start on this machine: what RunPodSandbox + CreateContainer + StartContainer cannot
# avoid, measured without berthd. Each step is the same binary berthd runs, run by hand from bash
# (fork + exec + the program's own work, timed with $EPOCHREALTIME, no extra process for the clock):
#
#   cni-add   the CNI chain of berth's default network (bridge then portmap, portmap given bridge's
#             result as prevResult), per the CNI spec, in a fresh network namespace
#   cni-del   the same chain in reverse (portmap, bridge), with the cached result as prevResult
#   pinns     berth-pinns: new net, ipc and uts namespaces, pinned by bind mounts, hostname, lo up
#   init      berth-init: the pod's PID namespace and its init, pinned
#   mkdir-cg  making the pod cgroup dir in every controller hierarchy, as berthd does (cpuset copied on v1)
#   overlay   mount(2) of the container's overlay rootfs (python ctypes: the syscall alone)
#   create    berth-runtime create of a busybox `sleep` container joining the pinned namespaces
#   start     berth-runtime start of it
#
# Usage: hack/bench/floor.sh [ITERATIONS] [CONFLIST]   (root; defaults 50, /etc/cni/net.d/10-berth.conflist;
# FLOOR_BIN=DIR takes the helpers from DIR instead of native/bin, FLOOR_LAYERS=DIR the image layer)
# Prints p50 / p95 / mean per step (ms) and the sums of the p50s. Everything it makes is removed at the end.
set -euo pipefail

N=${1:-50}
CONFLIST=${2:-/etc/cni/net.d/10-berth.conflist}
CNI_PATH=${CNI_PATH:-/usr/lib/cni:/opt/cni/bin}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${FLOOR_BIN:-$REPO/native/bin}
LAYERS=${FLOOR_LAYERS:-}
WORK=$(mktemp -d /tmp/berth-floor.XXXXXX)
CG=berth-floor-$$
declare -A T

# The busybox image's layers as berthd mounts them: the lowerdir of a rootfs overlay berthd has mounted,
# else every layer in berth's store (the bench image is one layer).
if [[ -z $LAYERS ]]; then
  LAYERS=$(grep -o 'lowerdir=/var/lib/berth/layers/[^,]*' /proc/self/mountinfo | head -1 | cut -d= -f2 || true)
  [[ -n $LAYERS ]] || LAYERS=$(ls -d /var/lib/berth/layers/*/diff | head -1)
fi
[[ -x $LAYERS/bin/sleep || -e $LAYERS/bin/busybox || -L $LAYERS/bin/sleep ]] || { echo "floor: no busybox layer found (FLOOR_LAYERS=dir)" >&2; exit 2; }

now() { echo "${EPOCHREALTIME/./}"; }   # microseconds
rec() { T[$1]+="$2 "; }

cleanup() {
  set +e
  for f in "$WORK"/ns/*/*; do umount "$f" 2>/dev/null; done
  for d in "$WORK"/b*/rootfs; do umount "$d" 2>/dev/null; done
  for r in /sys/fs/cgroup/*/; do rmdir "$r$CG"/*/c "$r$CG"/* "$r$CG" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

NAME=$(jq -r .name "$CONFLIST")
VERSION=$(jq -r .cniVersion "$CONFLIST")
NPLUG=$(jq '.plugins | length' "$CONFLIST")
plugin_conf() { # index prevResult-file -> the plugin's network configuration
  jq -c --arg v "$VERSION" --arg n "$NAME" --slurpfile prev "$2" ".plugins[$1] + {cniVersion: \$v, name: \$n} + (if (\$prev | length) > 0 then {prevResult: \$prev[0]} else {} end)" "$CONFLIST"
}
cni() { # command id netns index prev-file out-file
  local type; type=$(jq -r ".plugins[$4].type" "$CONFLIST")
  plugin_conf "$4" "$5" > "$WORK/conf"
  local bin; bin=$(IFS=:; for d in $CNI_PATH; do [[ -x $d/$type ]] && { echo "$d/$type"; break; }; done)
  local t0 t1
  t0=$(now)
  CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=$3 CNI_IFNAME=eth0 CNI_PATH=$CNI_PATH \
    CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=$2" "$bin" < "$WORK/conf" > "$6"
  t1=$(now)
  echo $((t1 - t0))
}

# A bundle: the busybox layer under an overlay, config.json joining the pinned namespaces.
bundle_config() { # bundle id
  jq -n --arg root "$1/rootfs" --arg id "$2" --arg ns "$WORK/ns" --arg cg "/$CG/$2/c" '{
    ociVersion: "1.0.2",
    process: { terminal: false, user: {uid: 0, gid: 0}, args: ["sleep", "3600"], cwd: "/",
      env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"],
      capabilities: ({} | .bounding = ["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FOWNER","CAP_FSETID","CAP_KILL","CAP_SETGID","CAP_SETUID","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_NET_RAW","CAP_SYS_CHROOT","CAP_MKNOD","CAP_AUDIT_WRITE","CAP_SETFCAP"] | .effective = .bounding | .permitted = .bounding) },
    root: { path: $root, readonly: false },
    hostname: "floor",
    mounts: [
      {destination: "/proc", type: "proc", source: "proc", options: ["nosuid","noexec","nodev"]},
      {destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid","strictatime","mode=755","size=65536k"]},
      {destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620","gid=5"]},
      {destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid","noexec","nodev"]},
      {destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid","noexec","nodev","ro"]},
      {destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid","noexec","nodev","relatime","ro"]}
    ],
    linux: {
      namespaces: [ {type: "mount"}, {type: "network", path: "\($ns)/net/\($id)"}, {type: "ipc", path: "\($ns)/ipc/\($id)"},
                    {type: "uts", path: "\($ns)/uts/\($id)"}, {type: "pid"} ],
      cgroupsPath: $cg,
      resources: { devices: [ {allow: false, access: "rwm"} ] },
      maskedPaths: ["/proc/kcore","/proc/keys","/proc/timer_list","/sys/firmware"],
      readonlyPaths: ["/proc/bus","/proc/fs","/proc/irq","/proc/sys","/proc/sysrq-trigger"]
    }
  }'
}

# mkdir(2) of a cgroup in every controller hierarchy (cpuset's cpus and mems copied from the parent on v1), timed
# inside one process as berthd does it (no mkdir(1) and cat(1) forks).
mkdir_cgroup() { # cgroup -> microseconds
  python3 - "$1" <<'EOF'
import os, sys, time
cg = sys.argv[1]
# berthd's cgroupRoots(): every v1 controller hierarchy (not name=systemd), else the unified one.
v1, v2 = [], []
for line in open("/proc/self/mountinfo"):
    left, _, right = line.partition(" - ")
    f = left.split(" "); r = right.split(" ")
    if len(r) < 3 or f[3] != "/": continue
    if r[0] == "cgroup2": v2.append(f[4])
    elif r[0] == "cgroup" and not any(o.startswith("name=") for o in r[2].split(",")): v1.append(f[4])
roots = sorted(v1) or v2
t0 = time.perf_counter_ns()
for root in roots:
    d = root
    for part in cg.split("/"):
        d = os.path.join(d, part)
        os.makedirs(d, exist_ok=True)
        if os.path.exists(os.path.join(d, "cpuset.cpus")) and not os.path.exists(os.path.join(d, "cgroup.subtree_control")):
            for f in ("cpuset.cpus", "cpuset.mems"):
                if not open(os.path.join(d, f)).read().strip():
                    open(os.path.join(d, f), "w").write(open(os.path.join(os.path.dirname(d), f)).read())
print((time.perf_counter_ns() - t0) // 1000)
EOF
}

# mount(2) of an overlay, timed inside one process (the syscall, not a mount(8) fork and exec).
overlay_mount() { # target lower upper work -> microseconds
  python3 - "$@" <<'EOF'
import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
target, lower, upper, work = sys.argv[1:5]
data = f"lowerdir={lower},upperdir={upper},workdir={work}".encode()
t0 = time.perf_counter_ns()
if libc.mount(b"overlay", target.encode(), b"overlay", 0, data) != 0:
    raise OSError(ctypes.get_errno(), "mount overlay")
print((time.perf_counter_ns() - t0) // 1000)
EOF
}

mkdir -p "$WORK/ns" "$WORK/rt"
echo "floor: $N iterations; CNI $CONFLIST ($NPLUG plugins), layer $LAYERS, work dir $WORK" >&2
for i in $(seq 1 "$N"); do
  id=floor$$x$i
  # Pod: namespaces, then the CNI chain in the pinned network namespace.
  t0=$(now); "$BIN/berth-pinns" --dir "$WORK/ns" --id "$id" --net --ipc --uts --hostname floor; t1=$(now); rec pinns $((t1 - t0))
  mkdir -p "$WORK/ns/pid"
  t0=$(now); "$BIN/berth-init" --pid-file "$WORK/init-$id.pid" --pin "$WORK/ns/pid/$id"; t1=$(now); rec init $((t1 - t0))
  rec mkdir-cg "$(mkdir_cgroup "$CG/$id")"
  : > "$WORK/prev0"; add=0
  for ((p = 0; p < NPLUG; p++)); do
    us=$(cni ADD "$id" "$WORK/ns/net/$id" "$p" "$WORK/prev$p" "$WORK/prev$((p + 1))"); add=$((add + us))
  done
  rec cni-add $add
  # Container: overlay rootfs, bundle, runtime create and start.
  b=$WORK/b$i; mkdir -p "$b/rootfs" "$b/upper" "$b/work"
  bundle_config "$b" "$id" > "$b/config.json"
  rec overlay "$(overlay_mount "$b/rootfs" "$LAYERS" "$b/upper" "$b/work")"
  t0=$(now); "$BIN/berth-runtime" --root "$WORK/rt" create --bundle "$b" --pid-file "$b/pid" "$id" </dev/null >/dev/null 2>"$b/err"; t1=$(now); rec create $((t1 - t0))
  t0=$(now); "$BIN/berth-runtime" --root "$WORK/rt" start "$id"; t1=$(now); rec start $((t1 - t0))
  # Undo it all (untimed but DEL): container, rootfs, CNI, pins, cgroups.
  "$BIN/berth-runtime" --root "$WORK/rt" delete --force "$id" >/dev/null 2>&1 || true
  umount "$b/rootfs"; rm -rf "$b"
  del=0
  for ((p = NPLUG - 1; p >= 0; p--)); do
    us=$(cni DEL "$id" "$WORK/ns/net/$id" "$p" "$WORK/prev$NPLUG" /dev/null); del=$((del + us))
  done
  rec cni-del $del
  kill -9 "$(<"$WORK/init-$id.pid")" 2>/dev/null || true
  for k in net ipc uts pid; do umount "$WORK/ns/$k/$id" 2>/dev/null || true; rm -f "$WORK/ns/$k/$id"; done
  for r in /sys/fs/cgroup/*/; do rmdir "$r$CG/$id/c" "$r$CG/$id" 2>/dev/null || true; done
done

stats() { # microsecond values -> "p50 p95 mean" in ms (nearest rank)
  tr ' ' '\n' | grep . | sort -n | awk '{v[NR]=$1; s+=$1} END {p50=v[int((NR*50+99)/100)]; p95=v[int((NR*95+99)/100)]; printf "%.1f %.1f %.1f\n", p50/1000, p95/1000, s/NR/1000}'
}
printf '%-10s %8s %8s %8s\n' step p50 p95 mean
pod=0; ctr=0
for k in pinns init mkdir-cg cni-add overlay create start cni-del; do
  read -r p50 p95 mean < <(echo "${T[$k]}" | stats)
  printf '%-10s %8s %8s %8s\n' "$k" "$p50" "$p95" "$mean"
  case $k in pinns|init|mkdir-cg|cni-add) pod=$(awk -v a="$pod" -v b="$p50" 'BEGIN{print a+b}');; overlay|create|start) ctr=$(awk -v a="$ctr" -v b="$p50" 'BEGIN{print a+b}');; esac
done
echo "sum of p50s: pod (pinns+init+mkdir-cg+cni-add) $pod ms, container (overlay+create+start) $ctr ms, total $(awk -v a="$pod" -v b="$ctr" 'BEGIN{print a+b}') ms"
