import { describe, expect, it } from 'vitest';
import { CgroupfsDriver, SystemdDriver, validateCgroupPath } from '../../src/cgroups/driver';
import { neededControllers } from '../../src/cgroups/layout';
import { expandSlice, sliceOfParent } from '../../src/cgroups/slice';
import type { SystemdManager } from '../../src/cgroups/systemd-bus';
import { InvalidArgumentError } from '../../src/errors';

const POD = 'a'.repeat(64);
const CTR = 'b'.repeat(64);

describe('systemd slice names', () => {
  it('expands a slice to its cgroup path as systemd does', () => {
    expect(expandSlice('kubepods-burstable-pod123.slice')).toBe('/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod123.slice');
    expect(expandSlice('berth.slice')).toBe('/berth.slice');
    expect(expandSlice('-.slice')).toBe('/');
  });

  it('refuses what is not a slice name', () => {
    for (const bad of ['kubepods', 'a--b.slice', '-a.slice', 'a-.slice', '.slice', 'a/b.slice', 'x y.slice']) {
      expect(() => expandSlice(bad), bad).toThrow(InvalidArgumentError);
    }
  });

  it("takes the slice from the kubelet's cgroup_parent in either form", () => {
    expect(sliceOfParent('kubepods-besteffort-pod1.slice')).toBe('kubepods-besteffort-pod1.slice');
    expect(sliceOfParent('/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice')).toBe('kubepods-besteffort-pod1.slice');
    expect(() => sliceOfParent('/kubepods/besteffort/pod1')).toThrow(InvalidArgumentError);
  });
});

describe('cgroup drivers', () => {
  it('cgroupfs: the kubelet parent or /berth/<pod>, the init in a leaf of its own, containers below the pod', () => {
    const d = new CgroupfsDriver();
    expect(d.pod(POD, '')).toEqual({ path: `/berth/${POD}`, owned: true });
    expect(d.pod(POD, '/kubepods/burstable/pod1/')).toEqual({ path: '/kubepods/burstable/pod1', owned: false });
    expect(d.container(POD, '/kubepods/pod1', CTR)).toEqual({ cgroupsPath: `/kubepods/pod1/${CTR}`, path: `/kubepods/pod1/${CTR}` });
    expect(d.runtimeArgs).toEqual([]);
    expect(() => d.validateParent('kubepods/x')).toThrow(InvalidArgumentError);
    expect(() => d.validateParent('/kubepods/../x')).toThrow(InvalidArgumentError);
    expect(() => validateCgroupPath('/a//b')).toThrow(/cgroup_parent .* clean/);
  });

  it('systemd: slices and berth-<id>.scope units, runc\'s "slice:prefix:name" form for the runtime', () => {
    const d = new SystemdDriver({} as SystemdManager);
    expect(d.runtimeArgs).toEqual(['--systemd-cgroup']);
    expect(d.pod(POD, '')).toEqual({ path: `/berth.slice/berth-pod${POD}.slice`, owned: true });
    expect(d.pod(POD, 'kubepods-pod1.slice')).toEqual({ path: '/kubepods.slice/kubepods-pod1.slice', owned: false });
    expect(d.container(POD, 'kubepods-pod1.slice', CTR)).toEqual({
      cgroupsPath: `kubepods-pod1.slice:berth:${CTR}`,
      path: `/kubepods.slice/kubepods-pod1.slice/berth-${CTR}.scope`,
    });
    expect(() => d.validateParent('/kubepods/pod1')).toThrow(InvalidArgumentError);
  });

  it('needs cpu, memory and pids always, and more only when asked for', () => {
    expect(neededControllers({}).sort()).toEqual(['cpu', 'memory', 'pids']);
    expect(neededControllers({ cpusetCpus: '0', hugepages: [{}], unified: { 'io.weight': '100', 'cgroup.freeze': '0', 'memory.high': '1' } }).sort()).toEqual(
      ['cpu', 'cpuset', 'hugetlb', 'io', 'memory', 'pids'],
    );
  });
});
