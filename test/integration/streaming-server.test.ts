// The streaming server against a backend that does real work on the host: exec spawns the command
// (through `script` from util-linux when a tty is asked for), attach echoes stdin back, port forward
// connects to 127.0.0.1. Clients are test/support/streaming-client.ts.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { pipeline } from 'node:stream/promises';
import { Readable, type Duplex } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RawData } from 'ws';
import { StreamingServer } from '../../src/streaming/server';
import type { StreamIO, StreamingBackend, TerminalSize } from '../../src/streaming/backend';
import { InvalidArgumentError } from '../../src/errors';
import {
  HttpStatusError,
  SpdyPortForwarder,
  decodeWsMessage,
  encodeWsMessage,
  exitCodeOf,
  spdyConnect,
  spdyExec,
  wsConnect,
  wsExec,
} from '../support/streaming-client';

class HostBackend implements StreamingBackend {
  readonly resizes: TerminalSize[] = [];
  readonly aborted: string[] = [];

  exec(containerId: string, cmd: string[], io: StreamIO): Promise<{ exitCode: number }> {
    const [file, ...args] = io.tty ? ['script', '-qfec', cmd.map((a) => `'${a}'`).join(' '), '/dev/null'] : cmd;
    const child = spawn(file, args, { stdio: 'pipe' });
    io.resize?.on('resize', (size: TerminalSize) => this.resizes.push(size));
    io.signal.addEventListener('abort', () => {
      this.aborted.push(containerId);
      child.kill('SIGKILL');
    });
    const copies = [
      io.stdin ? pipeline(io.stdin, child.stdin).catch(() => undefined) : (child.stdin.end(), Promise.resolve()),
      io.stdout ? pipeline(child.stdout, io.stdout, { end: false }).catch(() => undefined) : child.stdout.resume(),
      io.stderr ? pipeline(child.stderr, io.stderr, { end: false }).catch(() => undefined) : child.stderr.resume(),
    ];
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code: number | null) => {
        void Promise.all(copies.slice(1)).then(() => resolve({ exitCode: code ?? 137 }));
      });
    });
  }

  /** A "container" that answers every line it reads in upper case. */
  async attach(_containerId: string, io: StreamIO): Promise<void> {
    if (!io.stdin || !io.stdout) return;
    for await (const chunk of io.stdin) {
      if (!io.stdout.write(String(chunk).toUpperCase())) await new Promise((r) => io.stdout?.once('drain', r));
    }
  }

  portForward(_podId: string, port: number, stream: Duplex, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const target = net.connect(port, '127.0.0.1');
      signal.addEventListener('abort', () => target.destroy());
      target.once('error', reject);
      target.once('connect', () => {
        void Promise.all([pipeline(stream, target), pipeline(target, stream)]).then(() => resolve(), reject);
      });
    });
  }
}

let backend: HostBackend;
let server: StreamingServer;

beforeAll(async () => {
  backend = new HostBackend();
  server = new StreamingServer({ backend, tokenTtlMs: 5_000 });
  await server.listen();
});

afterAll(async () => {
  await server.close();
});

const exec = (cmd: string[], over: Partial<{ stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean }> = {}): string =>
  server.register({ containerId: 'c1', cmd, stdin: false, stdout: true, stderr: true, tty: false, ...over });

describe('exec over SPDY', () => {
  it('carries stdin, stdout and stderr and reports success as a v4 Status', async () => {
    const url = exec(['sh', '-c', 'cat; echo oops >&2'], { stdin: true });
    const r = await spdyExec(url, { stdin: Buffer.from('hello\n'), stdout: true, stderr: true });
    expect(r.protocol).toBe('v4.channel.k8s.io');
    expect(r.stdout.toString()).toBe('hello\n');
    expect(r.stderr.toString()).toBe('oops\n');
    expect(JSON.parse(r.error)).toEqual({ metadata: {}, status: 'Success' });
  });

  it('reports a non-zero exit code as kubelet does', async () => {
    const r = await spdyExec(exec(['sh', '-c', 'exit 3']), { stdout: true, stderr: true });
    expect(JSON.parse(r.error)).toEqual({
      metadata: {},
      status: 'Failure',
      message: 'command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3',
      reason: 'NonZeroExitCode',
      details: { causes: [{ reason: 'ExitCode', message: '3' }] },
    });
    expect(exitCodeOf(r)).toBe(3);
  });

  it('works with a client that does SPDY flow control', async () => {
    const r = await spdyExec(exec(['head', '-c', '1000000', '/dev/zero']), { stdout: true, stderr: true, flowControl: true });
    expect(r.stdout.length).toBe(1_000_000);
    expect(exitCodeOf(r)).toBe(0);
  });

  it('speaks v3 and v2 (text errors) too', async () => {
    const v3 = await spdyExec(exec(['sh', '-c', 'exit 2']), { stdout: true, stderr: true, protocols: ['v3.channel.k8s.io'] });
    expect(v3.protocol).toBe('v3.channel.k8s.io');
    expect(v3.error).toContain('exit code 2');
    const v2 = await spdyExec(exec(['echo', 'hi']), { stdout: true, stderr: true, protocols: ['v2.channel.k8s.io'] });
    expect([v2.stdout.toString(), v2.error]).toEqual(['hi\n', '']);
  });
});

describe('exec over WebSocket', () => {
  it.each(['v5.channel.k8s.io', 'v4.channel.k8s.io'])('%s carries stdin, stdout, stderr and the status', async (protocol) => {
    const url = exec(['sh', '-c', 'head -n1; echo oops >&2; exit 4'], { stdin: true });
    const r = await wsExec(url, { protocol, stdin: Buffer.from('hello ws\n') });
    expect(r.protocol).toBe(protocol);
    expect(r.stdout.toString()).toBe('hello ws\n');
    expect(r.stderr.toString()).toBe('oops\n');
    expect(exitCodeOf(r)).toBe(4);
  });

  it('v4.base64.channel.k8s.io encodes every message', async () => {
    const r = await wsExec(exec(['echo', 'base64 works']), { protocol: 'v4.base64.channel.k8s.io' });
    expect(r.stdout.toString()).toBe('base64 works\n');
    expect(JSON.parse(r.error)).toEqual({ metadata: {}, status: 'Success' });
  });
});
