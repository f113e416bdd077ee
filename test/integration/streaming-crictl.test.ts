// Interoperability with a real client-go: crictl (Go, spdystream) runs exec, attach and port-forward
// against berth's streaming server, through a fake CRI endpoint whose Exec/Attach/PortForward answer
// with the server's URLs. This is the check that berth's SPDY framing, header compression and stream
// handling are what Go's implementation expects, not merely what berth's own test client expects.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Duplex } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCri } from '../../src/proto/load';
import { rewriteAuthority } from '../../src/server/h2/authority-rewriter';
import { StreamingServer } from '../../src/streaming/server';
import type { StreamIO, StreamingBackend } from '../../src/streaming/backend';
import { freePort } from '../support/ports';
import { until } from '../support/until';

const CRICTL = ['/usr/local/bin/crictl', '/usr/bin/crictl'].find((p) => fs.existsSync(p));

class HostBackend implements StreamingBackend {
  exec(_id: string, cmd: string[], io: StreamIO): Promise<{ exitCode: number }> {
    const child = spawn(cmd[0], cmd.slice(1), { stdio: 'pipe' });
    if (io.stdin) void pipeline(io.stdin, child.stdin).catch(() => undefined);
    else child.stdin.end();
    const out = io.stdout ? pipeline(child.stdout, io.stdout, { end: false }).catch(() => undefined) : child.stdout.resume();
    const err = io.stderr ? pipeline(child.stderr, io.stderr, { end: false }).catch(() => undefined) : child.stderr.resume();
    io.signal.addEventListener('abort', () => child.kill('SIGKILL'));
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code: number | null) => void Promise.all([out, err]).then(() => resolve({ exitCode: code ?? 137 })));
    });
  }

  async attach(_id: string, io: StreamIO): Promise<void> {
    io.stdout?.write('attached\n');
    if (io.stdin && io.stdout) for await (const chunk of io.stdin) io.stdout.write(String(chunk).toUpperCase());
  }

  portForward(_pod: string, port: number, stream: Duplex, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const target = net.connect(port, '127.0.0.1');
      signal.addEventListener('abort', () => target.destroy());
      target.once('error', reject);
      target.once('connect', () => void Promise.all([pipeline(stream, target), pipeline(target, stream)]).then(() => resolve(), reject));
    });
  }
}

let dir: string;
let streaming: StreamingServer;
let grpcServer: grpc.Server;
let listener: net.Server;
let endpoint: string;

beforeAll(async () => {
  if (!CRICTL) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-crictl-'));
  streaming = new StreamingServer({ backend: new HostBackend() });
  await streaming.listen();
  const { runtime } = loadCri();
  grpcServer = new grpc.Server();
  const answer = <T>(fn: (req: T) => object) => (call: grpc.ServerUnaryCall<T, object>, cb: grpc.sendUnaryData<object>) => {
    try {
      cb(null, fn(call.request));
    } catch (err) {
      cb({ code: grpc.status.INVALID_ARGUMENT, details: String(err) });
    }
  };
  type Req = { container_id: string; cmd: string[]; tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean; pod_sandbox_id: string; port: number[] };
  grpcServer.addService(runtime.v1.RuntimeService.service, {
    Version: answer(() => ({ version: '0.1.0', runtime_name: 'fake', runtime_version: '0', runtime_api_version: 'v1' })),
    Exec: answer((r: Req) => ({ url: streaming.register({ containerId: r.container_id, cmd: r.cmd, tty: r.tty, stdin: r.stdin, stdout: r.stdout, stderr: r.stderr }) })),
    Attach: answer((r: Req) => ({ url: streaming.register({ containerId: r.container_id, tty: r.tty, stdin: r.stdin, stdout: r.stdout, stderr: r.stderr }) })),
    PortForward: answer((r: Req) => ({ url: streaming.register({ podId: r.pod_sandbox_id, ports: r.port }) })),
  });
  const injector = grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  listener = net.createServer((socket) => injector.injectConnection(rewriteAuthority(socket, () => undefined)));
  const sock = path.join(dir, 'cri.sock');
  await new Promise<void>((resolve) => listener.listen(sock, resolve));
  endpoint = `unix://${sock}`;
});

afterAll(async () => {
  if (!CRICTL) return;
  listener.close();
  grpcServer.forceShutdown();
  await streaming.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function crictl(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      CRICTL ?? 'crictl',
      ['--runtime-endpoint', endpoint, '--image-endpoint', endpoint, ...args],
      { timeout: 30_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

describe.skipIf(!CRICTL)('crictl (client-go SPDY) against the streaming server', () => {
  it('exec: stdout, stderr and a zero exit code', async () => {
    const r = await crictl(['exec', 'c1', 'sh', '-c', 'echo out; echo err >&2']);
    expect(r).toMatchObject({ code: 0, stdout: 'out\n' });
    expect(r.stderr).toContain('err\n');
  });

  it('exec: stdin and a non-zero exit code', async () => {
    const r = await crictl(['exec', '-i', 'c1', 'sh', '-c', 'cat; exit 7'], 'from stdin\n');
    expect(r.stdout).toBe('from stdin\n');
    // crictl exits 1 and names the code client-go decoded from the v4 Status.
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('command terminated with exit code 7');
  });

  it('exec: a megabyte of output', async () => {
    const r = await crictl(['exec', 'c1', 'sh', '-c', 'head -c 1048576 /dev/zero | tr "\\0" a']);
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(1048576);
  });

  it('exec -it under a pseudo-terminal (tty, resize stream)', async () => {
    // script gives crictl a terminal, so client-go asks for a tty and opens the resize stream.
    const inner = [CRICTL, '--runtime-endpoint', endpoint, '--image-endpoint', endpoint, 'exec', '-it', 'c1', 'echo', 'in-tty'].join(' ');
    const r = await new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile('script', ['-qfec', inner, '/dev/null'], { timeout: 30_000 }, (err, stdout) =>
        resolve({ code: err ? 1 : 0, stdout }),
      );
    });
    expect(r.stdout).toContain('in-tty');
    expect(r.code).toBe(0);
  });

  it('attach: stdin and stdout', async () => {
    const r = await crictl(['attach', '-i', 'c1'], 'hello\n');
    expect(r.stdout).toBe('attached\nHELLO\n');
  });

  it('port-forward: a connection reaches the target and back', async () => {
    const echo = net.createServer((s) => s.pipe(s));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const target = (echo.address() as net.AddressInfo).port;
    const local = await freePort();
    const pf = spawn(CRICTL ?? 'crictl', ['--runtime-endpoint', endpoint, '--image-endpoint', endpoint, 'port-forward', 'pod1', `${local}:${target}`]);
    try {
      // Until crictl's forward listens: a refused connect is tried again.
      const reply = await until('an answer through crictl port-forward', () => roundTrip(local, 'ping through crictl'), 15_000);
      expect(reply).toBe('ping through crictl');
    } finally {
      pf.kill();
      echo.close();
    }
  });
});

function roundTrip(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => c.write(text));
    let got = '';
    c.on('data', (d) => {
      got += d.toString();
      if (got.length >= text.length) {
        c.end();
        resolve(got);
      }
    });
    c.on('error', reject);
    c.setTimeout(5000, () => reject(new Error('no answer through the forward')));
  });
}
