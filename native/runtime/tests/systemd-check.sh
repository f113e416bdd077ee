#!/bin/sh
# Checks an OCI runtime's --systemd-cgroup driver against a reference runtime (runc) on a cgroup v2 host
# with systemd as PID 1 (the node VM). Each runtime in turn creates, starts, updates, kills (--all) and
# deletes the same container from BUNDLE; what systemd and the cgroup show is recorded and compared,
# and after delete neither the unit nor its cgroup may be left.
#
#   sh systemd-check.sh RUNTIME BUNDLE [REFERENCE]      (REFERENCE defaults to runc)
#
# BUNDLE/config.json must have linux.cgroupsPath in the "slice:prefix:name" form (e.g.
# "kubepods-burstable-podx.slice:berth:<id>"), process.args that keep running (sleep), and
# resources to compare (memory limit, pids limit, cpu shares/quota/period). Needs systemctl; POSIX sh
# and grep/sed only (no jq). Exits 0 when everything matched, 1 with the differences otherwise.
set -u

runtime=${1:?usage: systemd-check.sh RUNTIME BUNDLE [REFERENCE]}
bundle=${2:?usage: systemd-check.sh RUNTIME BUNDLE [REFERENCE]}
reference=${3:-runc}
work=$(mktemp -d /tmp/systemd-check.XXXXXX)
id=systemd-check-$$
failed=0

fail() { echo "systemd-check: $*" >&2; failed=1; }

cgpath_spec=$(sed -n 's/.*"cgroupsPath" *: *"\([^"]*\)".*/\1/p' "$bundle/config.json" | head -n1)
case $cgpath_spec in
  *:*:*) ;;
  *) echo "systemd-check: $bundle/config.json needs linux.cgroupsPath as slice:prefix:name (got \"$cgpath_spec\")" >&2; exit 2 ;;
esac
name=${cgpath_spec##*:}
prefix=${cgpath_spec#*:}; prefix=${prefix%%:*}
case $name in *.slice) unit=$name ;; *) unit=$prefix-$name.scope ;; esac

# The systemd properties and cgroup files compared between the runtimes (Description and CollectMode
# legitimately differ).
props=ActiveState,Slice,ControlGroup,Delegate,MemoryAccounting,CPUAccounting,TasksAccounting,MemoryMax,TasksMax,CPUWeight,CPUQuotaPerSecUSec
files="cgroup.type memory.max memory.swap.max pids.max cpu.max cpu.weight"

# run LABEL RT: drives one runtime through the life cycle, writing what it saw to $work/LABEL.
run() {
  label=$1 rt=$2 out=$work/$1 root=$work/$1.root
  : > "$out"
  if ! "$rt" --root "$root" --systemd-cgroup create --bundle "$bundle" "$id" > "$work/$label.create" 2>&1; then
    fail "$label: create failed: $(cat "$work/$label.create")"
    return
  fi
  pid=$("$rt" --root "$root" --systemd-cgroup state "$id" | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | head -n1)
  cg=$(sed -n 's/^0:://p' "/proc/$pid/cgroup")
  dir=/sys/fs/cgroup$cg
  echo "cgroup=$cg" >> "$out"
  [ "${cg##*/}" = "$unit" ] || fail "$label: the init ($pid) is in $cg, not in the unit $unit"
  systemctl show -p "$props" "$unit" | sort >> "$out"
  systemctl is-active -q "$unit" || fail "$label: $unit is not active: $(systemctl status "$unit" 2>&1 | head -n 5)"
  for f in $files; do echo "$f=$(cat "$dir/$f" 2>&1)" >> "$out"; done
  "$rt" --root "$root" --systemd-cgroup start "$id" || fail "$label: start failed"
  printf '{"memory":{"limit":134217728},"pids":{"limit":64}}' > "$work/update.json"
  if "$rt" --root "$root" --systemd-cgroup update --resources "$work/update.json" "$id"; then
    echo "updated memory.max=$(cat "$dir/memory.max") pids.max=$(cat "$dir/pids.max")" >> "$out"
    systemctl show -p MemoryMax,TasksMax "$unit" | sed 's/^/updated /' | sort >> "$out"
  else
    fail "$label: update failed"
  fi
  "$rt" --root "$root" --systemd-cgroup kill --all "$id" KILL || fail "$label: kill --all failed"
  i=0
  while [ $i -lt 100 ] && ! "$rt" --root "$root" --systemd-cgroup state "$id" 2>/dev/null | grep -q '"stopped"'; do
    sleep 0.1; i=$((i + 1))
  done
  "$rt" --root "$root" --systemd-cgroup state "$id" | grep -q '"stopped"' || fail "$label: not stopped after kill --all KILL"
  "$rt" --root "$root" --systemd-cgroup delete --force "$id" || fail "$label: delete failed"
  # A scope may take a moment to be collected once empty.
  i=0
  while [ $i -lt 50 ] && { [ -d "$dir" ] || [ "$(systemctl show -p LoadState --value "$unit")" != not-found ]; }; do
    sleep 0.1; i=$((i + 1))
  done
  [ -d "$dir" ] && fail "$label: $dir is left after delete"
  state=$(systemctl show -p LoadState,ActiveState "$unit" | tr '\n' ' ')
  case $state in *LoadState=not-found*) ;; *) fail "$label: $unit is left after delete: $state" ;; esac
}

run runtime "$runtime"
run reference "$reference"
if ! diff -u "$work/reference" "$work/runtime" > "$work/diff"; then
  fail "$runtime and $reference differ (- $reference, + $runtime):"
  cat "$work/diff" >&2
fi
if [ $failed -eq 0 ]; then
  echo "systemd-check: $runtime matches $reference for $unit:"
  sed 's/^/  /' "$work/runtime"
fi
rm -rf "$work"
exit $failed
