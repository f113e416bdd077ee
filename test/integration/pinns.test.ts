// berth-pinns: namespaces created, pinned, configured; failures leave nothing behind.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors';
import { pinNamespaces, unpin } from '../../src/pod/namespaces';

const nsenter = (kind: string, file: string, ...cmd: string[]) =>
  execFileSync('nsenter', [`--${kind}=${file}`, '--', ...cmd], { encoding: 'utf8' }).trim();

describe('berth-pinns', () => {
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-pinns-'));
  });

  afterEach(async () => {
    for (const kind of ['net', 'ipc', 'uts']) {
      const kdir = path.join(dir, kind);
      if (!fs.existsSync(kdir)) continue;
      for (const f of fs.readdirSync(kdir)) await unpin(path.join(kdir, f));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('pins new net, ipc and uts namespaces with hostname, loopback up, and sysctls inside them', async () => {
    const pins = await pinNamespaces({
      dir,
      id: 'pod1',
      kinds: ['net', 'ipc', 'uts'],
      hostname: 'web-0',
      sysctls: { 'net.ipv4.ip_unprivileged_port_start': '80', 'kernel.shm_rmid_forced': '1' },
    });
    const net = pins.net as string;
    expect(fs.readlinkSync('/proc/self/ns/net')).not.toBe(nsenter('net', net, 'readlink', '/proc/self/ns/net'));
    expect(nsenter('uts', pins.uts as string, 'hostname')).toBe('web-0');
    expect(nsenter('net', net, 'ip', '-o', 'link', 'show', 'lo')).toMatch(/LOOPBACK,UP/);
    expect(nsenter('net', net, 'cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start')).toBe('80');
    expect(nsenter('ipc', pins.ipc as string, 'cat', '/proc/sys/kernel/shm_rmid_forced')).toBe('1');
    expect(fs.readFileSync('/proc/sys/kernel/shm_rmid_forced', 'utf8').trim()).toBe('0');
    await unpin(net);
    expect(fs.existsSync(net)).toBe(false);
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(net);
  });

  it('names a sysctl the kernel refuses, and leaves no pin behind', async () => {
    await expect(pinNamespaces({ dir, id: 'pod2', kinds: ['net', 'uts'], sysctls: { 'net.no.such.key': '1' } })).rejects.toThrow(
      InvalidArgumentError,
    );
    await expect(pinNamespaces({ dir, id: 'pod2', kinds: ['net'], sysctls: { 'net.no.such.key': '1' } })).rejects.toThrow(
      /sysctl net.no.such.key: open \/proc\/sys\/net\/no\/such\/key: No such file or directory/,
    );
    expect(fs.readdirSync(path.join(dir, 'net'))).toEqual([]);
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(dir);
  });

  it('refuses ids that are not plain names', async () => {
    await expect(pinNamespaces({ dir, id: '../escape', kinds: ['net'] })).rejects.toThrow(/usage/);
  });
});
