// netnsConnect: a TCP connection to a port that listens only inside another network namespace.
import { execFileSync, spawn } from 'node:child_process';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { netnsConnect } from '../../src/native';
import { freePort } from '../support/ports';
import { until } from '../support/until';

const ns = `bnc${process.pid % 100000}`;
const nsPath = `/run/netns/${ns}`;

describe('netnsConnect', () => {
  beforeAll(() => {
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  });
  afterAll(() => execFileSync('ip', ['netns', 'del', ns]));

  it('reaches a server inside the namespace that the host cannot reach', async () => {
    // Free on the host (the kernel's pick): the host's connect below must be refused.
    const port = await freePort();
    const server = spawn('ip', ['netns', 'exec', ns, 'busybox', 'nc', '-l', '-p', String(port), '-e', 'echo', 'inside'], { stdio: 'ignore' });
    try {
      // Until nc listens (a connect before is refused).
      const fd = await until('the server in the namespace to listen', () => netnsConnect(nsPath, '127.0.0.1', port));
      const socket = new net.Socket({ fd, readable: true, writable: true });
      const text = await new Promise<string>((resolve) => {
        let out = '';
        socket.on('data', (d: Buffer) => (out += d.toString()));
        socket.on('end', () => resolve(out));
      });
      socket.destroy();
      expect(text.trim()).toBe('inside');
      await expect(new Promise((resolve, reject) => net.connect(port, '127.0.0.1').on('connect', resolve).on('error', reject))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      server.kill();
    }
  });

  it('reports a refused port and a missing namespace like Node does', () => {
    expect(() => netnsConnect(nsPath, '127.0.0.1', 9)).toThrow(expect.objectContaining({ code: 'ECONNREFUSED', syscall: 'connect' }));
    expect(() => netnsConnect('/run/netns/no-such-ns', '127.0.0.1', 9)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => netnsConnect(nsPath, 'localhost', 9)).toThrow(/IP literal/);
  });
});
