// netnsConnect: a TCP connection to a port that listens only inside another network namespace.
import { execFileSync, spawn } from 'node:child_process';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { netnsConnect } from '../../src/native';

const ns = `bnc${process.pid % 100000}`;
const nsPath = `/run/netns/${ns}`;

describe('netnsConnect', () => {
  beforeAll(() => {
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  });
  afterAll(() => execFileSync('ip', ['netns', 'del', ns]));

  it('reaches a server inside the namespace that the host cannot reach', async () => {
    const server = spawn('ip', ['netns', 'exec', ns, 'busybox', 'nc', '-l', '-p', '18321', '-e', 'echo', 'inside'], { stdio: 'ignore' });
    try {
      let fd = -1;
      for (let i = 0; i < 100 && fd < 0; i++) {
        try {
          fd = netnsConnect(nsPath, '127.0.0.1', 18321);
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      const socket = new net.Socket({ fd, readable: true, writable: true });
      const text = await new Promise<string>((resolve) => {
        let out = '';
        socket.on('data', (d: Buffer) => (out += d.toString()));
        socket.on('end', () => resolve(out));
      });
      socket.destroy();
      expect(text.trim()).toBe('inside');
      await expect(new Promise((resolve, reject) => net.connect(18321, '127.0.0.1').on('connect', resolve).on('error', reject))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
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
