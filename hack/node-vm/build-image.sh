#!/usr/bin/env bash
# Builds the node VM's Debian 12 root (systemd as PID 1 on pure cgroup v2, sshd, the packages berth
# needs at run time) and caches it outside the repository:
#
#   /var/cache/berth/node-vm/<key>/{rootfs.img,vmlinuz,initrd.img,id_ed25519,id_ed25519.pub}
#
# <key> is the sha256 of the package list and of this script, so a change to either builds a new root.
# Prints the cache directory on stdout (last line); progress goes to stderr.
#
#   bash hack/node-vm/build-image.sh            build if missing, print the cache dir
#   bash hack/node-vm/build-image.sh --print    print the cache dir without building
#
# debootstrap pulls only from the apt mirror this machine is configured with. Concurrent builds are
# serialised by a lock; a build goes into a temp dir renamed into place, so a killed build leaves no
# half cache.
set -euo pipefail

CACHE_ROOT=${BERTH_NODE_VM_CACHE:-/var/cache/berth/node-vm}
SUITE=bookworm
IMAGE_SIZE=4G

PACKAGES=(
  systemd systemd-sysv dbus udev libpam-systemd
  linux-image-cloud-amd64 initramfs-tools kmod
  openssh-server
  runc crun containernetworking-plugins iptables nftables iproute2 iputils-ping
  procps util-linux mount e2fsprogs ca-certificates apparmor
  libstdc++6 libgcc-s1 libseccomp2 libcap2 libjansson4 zlib1g libzstd1 libssl3 libsystemd0
)

log() { echo "build-image: $*" >&2; }

script_path=$(readlink -f "$0")
key=$( { printf '%s\n' "$SUITE" "${PACKAGES[@]}"; cat "$script_path"; } | sha256sum | cut -c1-16)
out="$CACHE_ROOT/$key"

if [ "${1:-}" = "--print" ]; then echo "$out"; exit 0; fi
if [ -s "$out/rootfs.img" ]; then touch "$out"; echo "$out"; exit 0; fi

if [ "$(id -u)" -ne 0 ]; then log "run as root (debootstrap)"; exit 1; fi
for tool in debootstrap mkfs.ext4 ssh-keygen; do
  command -v "$tool" >/dev/null || { log "$tool is missing: bash hack/install.sh installs it"; exit 1; }
done

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.lock"
flock 9
if [ -s "$out/rootfs.img" ]; then echo "$out"; exit 0; fi   # another build finished while we waited

# The machine's own Debian mirror: the first deb822 URIs of a bookworm entry, else a one-line entry.
mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    awk -v suite="$SUITE" '
      function flush() { if (uri != "" && suites ~ ("(^| )" suite "( |$)")) { print uri; done = 1 } uri = ""; suites = "" }
      done { next }
      /^[[:space:]]*$/ { flush(); next }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { $1 = ""; suites = $0 }
      END { if (!done) flush() }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -e "$f" ] || continue
    # "deb [options] URI SUITE COMPONENTS..."
    sed -e 's/\[[^]]*\]//' "$f" | awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2 }'
  done
}
MIRROR=$(mirror 2>/dev/null | head -n1 || true)
[ -n "$MIRROR" ] || { log "no $SUITE entry in /etc/apt/sources.list*"; exit 1; }

started=$(date +%s)
tmp=$(mktemp -d "$CACHE_ROOT/.build-XXXXXX")
cleanup() {
  # debootstrap may leave /proc and /sys mounted in the root if it was interrupted.
  for m in proc sys dev/pts dev; do umount -l "$tmp/root/$m" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
root=$tmp/root

log "debootstrap $SUITE from $MIRROR into $tmp (key $key)"
list=$(IFS=,; echo "${PACKAGES[*]}")
debootstrap --variant=minbase --include="$list" "$SUITE" "$root" "$MIRROR" > "$tmp/debootstrap.log" 2>&1 || {
  tail -n 30 "$tmp/debootstrap.log" >&2; tail -n 30 "$root/debootstrap/debootstrap.log" >&2 2>/dev/null || true; exit 1; }
log "debootstrap done in $(( $(date +%s) - started ))s"

# --- configuration ---------------------------------------------------------------------------------
echo 'berth-node' > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 berth-node\n::1 localhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' > "$root/etc/fstab"
# A fixed machine id: a first boot would otherwise run systemd's first-boot logic on every overlay.
tr -d '-' < /proc/sys/kernel/random/uuid > "$root/etc/machine-id"
# The guest has no DNS (restrict=on); images come from the host registry by address.
printf 'nameserver 10.0.2.3\n' > "$root/etc/resolv.conf"

# Network: qemu's user net, static (no DHCP wait): guest 10.0.2.15, host side 10.0.2.2.
mkdir -p "$root/etc/systemd/network"
cat > "$root/etc/systemd/network/10-qemu.network" <<'NET'
[Match]
Name=en* eth*

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
DNS=10.0.2.3
LinkLocalAddressing=no
IPv6AcceptRA=no
NET
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sf /lib/systemd/system/systemd-networkd.service "$root/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
mkdir -p "$root/etc/systemd/system/network-online.target.wants"
ln -sf /lib/systemd/system/systemd-networkd-wait-online.service "$root/etc/systemd/system/network-online.target.wants/systemd-networkd-wait-online.service"

# Nothing interactive or periodic on a test node.
for unit in systemd-firstboot.service apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service \
            e2scrub_all.timer e2scrub_reap.service fstrim.timer man-db.timer dpkg-db-backup.timer; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
# Kernel logs on the serial console only when they matter.
mkdir -p "$root/etc/sysctl.d" && echo 'kernel.printk = 4 4 1 7' > "$root/etc/sysctl.d/10-console.conf"

# The harness's second disk (/dev/vdb, see test/support/node-vm.ts): when it
# appears, mount it read-only on /mnt/stage and run its setup.sh, in parallel with the rest of the boot.
cat > "$root/etc/systemd/system/node-vm-stage.service" <<'UNIT'
[Unit]
Description=node VM: run setup.sh from the staged disk /dev/vdb
BindsTo=dev-vdb.device
After=dev-vdb.device local-fs.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'mkdir -p /mnt/stage && mount -o ro /dev/vdb /mnt/stage && exec /bin/sh /mnt/stage/setup.sh'
StandardOutput=journal+console
TimeoutStartSec=600

[Install]
WantedBy=dev-vdb.device
UNIT
mkdir -p "$root/etc/systemd/system/dev-vdb.device.wants"
ln -sf ../node-vm-stage.service "$root/etc/systemd/system/dev-vdb.device.wants/node-vm-stage.service"

# root: ssh with the cache's key only.
ssh-keygen -q -t ed25519 -N '' -C berth-node-vm -f "$tmp/id_ed25519"
install -d -m 0700 "$root/root/.ssh"
install -m 0600 "$tmp/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
mkdir -p "$root/etc/ssh/sshd_config.d"
printf 'PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n' > "$root/etc/ssh/sshd_config.d/berth.conf"
[ -e "$root/etc/ssh/ssh_host_ed25519_key" ] || chroot "$root" ssh-keygen -A

rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"* "$root/debootstrap"

# --- artefacts ---------------------------------------------------------------------------------------
kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -n1)
initrd=$(ls "$root"/boot/initrd.img-* | sort -V | tail -n1)
cp "$kernel" "$tmp/vmlinuz"
cp "$initrd" "$tmp/initrd.img"
log "kernel $(basename "$kernel"), root $(du -sh "$root" | cut -f1)"
mkfs.ext4 -q -F -L berth-root -d "$root" "$tmp/rootfs.img" "$IMAGE_SIZE" >&2
echo "$key" > "$tmp/key"
for m in proc sys dev/pts dev; do umount -l "$root/$m" 2>/dev/null || true; done
rm -rf "$root" "$tmp/debootstrap.log"

mv -T "$tmp" "$out"
trap - EXIT
# Roots of other keys (older versions of this script) unused for a week.
find "$CACHE_ROOT" -mindepth 1 -maxdepth 1 -type d -name '[0-9a-f]*' ! -name "$key" -mtime +7 -exec rm -rf {} + 2>/dev/null || true
log "built $out in $(( $(date +%s) - started ))s"
echo "$out"
