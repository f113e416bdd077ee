// The streaming server against a backend that does real work on the host: exec spawns the command
// (through `script` from util-linux when a tty is asked for), attach echoes stdin back, port forward
// connects to 127.0.0.1. Clients are test/support/streaming-client.ts.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RawData } from 'ws';
import { StreamingServer } from '../../src/streaming/server';
import type { StreamIO, StreamingBackend, TerminalSize } from '../../src/streaming/backend';
import { InvalidArgumentError } from '../../src/errors';
import {
  HttpStatusError,
  allZero,
  SpdyPortForwarder,
  decodeWsMessage,
  encodeWsMessage,
  exitCodeOf,
  spdyConnect,
  spdyExec,
  wsConnect,
  wsExec,
} from '../support/streaming-client';
import { freePort } from '../support/ports';
import { until } from '../support/until';

class HostBackend implements StreamingBackend {
  readonly resizes: TerminalSize[] = [];
  readonly aborted: string[] = [];
  /** The containers of the exec calls so far (each one's abort listener is set by then). */
  readonly started: string[] = [];

  exec(containerId: string, cmd: string[], io: StreamIO): Promise<{ exitCode: number }> {
    this.started.push(containerId);
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

describe('throughput and concurrency', () => {
  // How much memory such a transfer takes (and so whether backpressure holds) is a benchmark's to
  // measure, not a test's to bound: a busy machine moves the figure. These check that it all arrives.
  it('moves 100 MiB of stdout over SPDY', async () => {
    let bytes = 0;
    let nonZero = 0;
    const r = await spdyExec(exec(['head', '-c', String(100 * 1024 * 1024), '/dev/zero']), {
      stdout: true,
      stderr: true,
      onStdout: (c) => {
        bytes += c.length;
        if (!allZero(c)) nonZero++;
      },
    });
    expect(exitCodeOf(r)).toBe(0);
    expect(r.stderr.toString()).toBe('');
    expect(bytes).toBe(100 * 1024 * 1024);
    expect(nonZero).toBe(0);
  });

  it('moves 100 MiB of stdout over WebSocket v5', async () => {
    let bytes = 0;
    let nonZero = 0;
    const r = await wsExec(exec(['head', '-c', String(100 * 1024 * 1024), '/dev/zero']), {
      protocol: 'v5.channel.k8s.io',
      onStdout: (c) => {
        bytes += c.length;
        if (!allZero(c)) nonZero++;
      },
    });
    expect(exitCodeOf(r)).toBe(0);
    expect(bytes).toBe(100 * 1024 * 1024);
    expect(nonZero).toBe(0);
  });

  it('runs 50 exec sessions at once', async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        i % 2
          ? spdyExec(exec(['sh', '-c', `echo session ${i}; exit ${i % 5}`]), { stdout: true, stderr: true })
          : wsExec(exec(['sh', '-c', `echo session ${i}; exit ${i % 5}`]), { protocol: 'v4.channel.k8s.io' }),
      ),
    );
    results.forEach((r, i) => {
      expect(r.stdout.toString()).toBe(`session ${i}\n`);
      expect(exitCodeOf(r)).toBe(i % 5);
    });
  });
});

describe('tty and attach', () => {
  it('delivers resize messages to the backend (SPDY v4 and WebSocket v5)', async () => {
    backend.resizes.length = 0;
    const tty = { tty: true, stderr: false, stdout: true };
    const spdy = await spdyExec(exec(['sh', '-c', 'echo in a tty'], tty), {
      stdout: true,
      tty: true,
      resizes: [{ width: 80, height: 24 }, { width: 132, height: 43 }],
    });
    expect(spdy.stdout.toString()).toContain('in a tty');
    const ws = await wsExec(exec(['sh', '-c', 'sleep 0.2'], tty), { protocol: 'v5.channel.k8s.io', resizes: [{ width: 100, height: 30 }] });
    expect(exitCodeOf(ws)).toBe(0);
    expect(backend.resizes).toEqual(expect.arrayContaining([{ width: 80, height: 24 }, { width: 132, height: 43 }, { width: 100, height: 30 }]));
  });

  it('attaches over SPDY and WebSocket', async () => {
    const attach = (): string => server.register({ containerId: 'c1', stdin: true, stdout: true, stderr: false, tty: false });
    const spdy = await spdyExec(attach(), { stdin: Buffer.from('hello attach\n'), stdout: true });
    expect(spdy.stdout.toString()).toBe('HELLO ATTACH\n');
    expect(JSON.parse(spdy.error)).toEqual({ metadata: {}, status: 'Success' });
    const ws = await wsExec(attach(), { protocol: 'v5.channel.k8s.io', stdin: Buffer.from('over ws\n') });
    expect(ws.stdout.toString()).toBe('OVER WS\n');
  });
});

describe('port forward', () => {
  let echo: net.Server;
  let port: number;

  beforeAll(async () => {
    echo = net.createServer((s) => s.pipe(s));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    port = (echo.address() as net.AddressInfo).port;
  });

  afterAll(() => {
    echo.close();
  });

  const roundTrip = (stream: Duplex, text: string): Promise<string> =>
    new Promise((resolve) => {
      let got = '';
      stream.on('data', (d: Buffer) => {
        got += d.toString();
        if (got.length >= text.length) resolve(got);
      });
      stream.write(text);
    });

  it('forwards two request IDs at once over SPDY', async () => {
    const pf = await SpdyPortForwarder.connect(server.register({ podId: 'p1', ports: [] }));
    const [a, b] = await Promise.all([pf.forward(port), pf.forward(port)]);
    const [ra, rb] = await Promise.all([roundTrip(a.data, 'first connection'), roundTrip(b.data, 'second connection')]);
    expect([ra, rb]).toEqual(['first connection', 'second connection']);
    a.data.end();
    b.data.end();
    expect(await a.error).toBe('');
    await pf.close();
  });

  it('reports a refused target on the error stream', async () => {
    const pf = await SpdyPortForwarder.connect(server.register({ podId: 'p1', ports: [] }));
    const closedPort = await freePort();
    const f = await pf.forward(closedPort);
    const message = JSON.parse(await f.error) as { closeConnection: boolean; message: string };
    expect(message.closeConnection).toBe(true);
    expect(message.message).toMatch(new RegExp(`^error forwarding port ${closedPort} to pod p1, uid : .*ECONNREFUSED`));
    await pf.close();
  });

  it('forwards two ports over WebSocket, each channel announcing its port', async () => {
    const got = new Map<number, Buffer[]>();
    const ws = await wsConnect(server.register({ podId: 'p1', ports: [port, port] }), ['v4.channel.k8s.io'], (data: RawData) => {
      const { channel, payload } = decodeWsMessage(data, false);
      got.set(channel, [...(got.get(channel) ?? []), payload]);
    });
    const text = (ch: number): string => Buffer.concat((got.get(ch) ?? []).slice(1)).toString();
    await until('four streams', () => got.size === 4, 5000);
    for (const ch of [0, 1, 2, 3]) expect(got.get(ch)?.[0].readUInt16LE(0)).toBe(port);
    ws.send(encodeWsMessage(0, Buffer.from('to the first'), false));
    ws.send(encodeWsMessage(2, Buffer.from('to the second'), false));
    await until('both streams\' data', () => text(0) === 'to the first' && text(2) === 'to the second', 5000);
    ws.close();
  });
});

describe('URLs and protocols', () => {
  it('refuses a used, unknown or expired token with 404', async () => {
    const url = exec(['true']);
    await spdyExec(url, { stdout: true, stderr: true });
    await expect(spdyExec(url, { stdout: true, stderr: true })).rejects.toMatchObject({ status: 404 });
    await expect(spdyExec(url.replace(/[^/]+$/, 'nosuchtoken'), { stdout: true })).rejects.toMatchObject({ status: 404 });
    await expect(wsExec(url.replace('/exec/', '/attach/'), { protocol: 'v5.channel.k8s.io' })).rejects.toMatchObject({ status: 404 });

    const short = new StreamingServer({ backend, tokenTtlMs: 100 });
    await short.listen();
    try {
      const expiring = short.register({ containerId: 'c1', cmd: ['true'], stdin: false, stdout: true, stderr: false, tty: false });
      // Kept: the token's time to live running out is the thing tested.
      await new Promise((r) => setTimeout(r, 200));
      await expect(spdyExec(expiring, { stdout: true })).rejects.toMatchObject({ status: 404 });
    } finally {
      await short.close();
    }
  });

  it('refuses an unknown protocol version with 403 and names the ones it accepts', async () => {
    const err = (await spdyConnect(exec(['true']), ['v9.channel.k8s.io']).catch((e: unknown) => e)) as HttpStatusError;
    expect(err).toBeInstanceOf(HttpStatusError);
    expect(err.status).toBe(403);
    expect(err.headers['x-accepted-stream-protocol-versions']).toContain('v4.channel.k8s.io');
    await expect(wsConnect(exec(['true']), ['v9.channel.k8s.io'])).rejects.toMatchObject({ status: 403 });
    await expect(spdyConnect(server.register({ podId: 'p1', ports: [] }), ['v4.channel.k8s.io'])).rejects.toMatchObject({ status: 403 });
  });

  it('refuses requests no protocol can serve', () => {
    expect(() => exec(['true'], { stdin: false, stdout: false, stderr: false })).toThrow(InvalidArgumentError);
    expect(() => exec(['true'], { tty: true, stderr: true })).toThrow(/tty and stderr/);
    expect(() => server.register({ containerId: 'c1', tty: true, stdin: true, stdout: true, stderr: true })).toThrow(InvalidArgumentError);
  });
});

describe('close()', () => {
  it('ends open sessions and aborts their backends', async () => {
    const own = new StreamingServer({ backend });
    await own.listen();
    const reg = (): string => own.register({ containerId: 'closing', cmd: ['sleep', '60'], stdin: false, stdout: true, stderr: false, tty: false });
    const spdy = spdyExec(reg(), { stdout: true });
    const ws = wsExec(reg(), { protocol: 'v5.channel.k8s.io' });
    await until('two sessions', () => own.sessionCount === 2, 5000);
    await until('both execs to start', () => backend.started.filter((id) => id === 'closing').length === 2, 5000);
    const started = Date.now();
    await own.close();
    // Only a hang guard: the sessions' commands run 60 s, so well under that means close() ended them.
    expect(Date.now() - started).toBeLessThan(30_000);
    await Promise.all([spdy, ws]);
    expect(own.sessionCount).toBe(0);
    expect(backend.aborted.filter((id) => id === 'closing').length).toBe(2);
    expect(() => reg()).toThrow(/not running/);
  });
});

