// The instrument wrapper, exercised through berth's own gRPC server in process, on a unix socket.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectCri, type CriClient } from '../../src/client/cri-client';
import {
  AlreadyExistsError,
  DeadlineExceededError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
} from '../../src/errors';
import type { RuntimeServiceHandlers } from '../../src/generated/runtime/v1/RuntimeService';
import { createMetrics } from '../../src/metrics/registry';
import { loadCri } from '../../src/proto/load';
import { InflightCalls } from '../../src/server/inflight';
import { GrpcServer } from '../../src/server/grpc/server';
import { instrumentService, type Handlers } from '../../src/server/instrument';

const errorsById: Record<string, Error> = {
  notfound: new NotFoundError('pod "x" not found'),
  invalid: new InvalidArgumentError('metadata.name is empty'),
  exists: new AlreadyExistsError('name reserved'),
  precondition: new FailedPreconditionError('container is running'),
  deadline: new DeadlineExceededError('took too long'),
  unavailable: new UnavailableError('registry unreachable'),
  internal: new Error('disk on fire'),
};

describe('instrument wrapper', () => {
  let dir: string;
  let server: GrpcServer;
  let listener: net.Server;
  const aborted: string[] = [];
  let client: CriClient;
  let ready = false;
  const metrics = createMetrics();
  const inflight = new InflightCalls();
  let release: () => void = () => {};

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-instrument-'));
    const { runtime } = loadCri();
    const handlers: Handlers<RuntimeServiceHandlers> = {
      Version: async () => ({ runtime_name: 'test' }),
      PodSandboxStatus: async (req) => {
        const err = errorsById[req.pod_sandbox_id];
        if (err) throw err;
        if (req.pod_sandbox_id === 'slow') await new Promise<void>((resolve) => (release = resolve));
        return {};
      },
      // Waits for the client to give up: the handler's signal must abort.
      ContainerStatus: (req, ctx) =>
        new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            aborted.push(req.container_id);
            reject(ctx.signal.reason as Error);
          });
        }),
      ListPodSandbox: async (req) => ({ items: [{ id: req.filter?.id ?? 'none' }] }),
      StreamPodSandboxes: async function* () {
        yield { pod_sandboxes: [{ id: 'a' }] };
        yield { pod_sandboxes: [{ id: 'b' }] };
      },
    };
    server = new GrpcServer({ maxReceiveBytes: 1 << 20, maxSendBytes: 1 << 20 });
    const log = pino({ level: 'silent' });
    const impl = instrumentService('RuntimeService', runtime.v1.RuntimeService.service, handlers, {
      log,
      metrics,
      inflight,
      isReady: () => ready,
    });
    server.addService(runtime.v1.RuntimeService.service, impl);
    listener = net.createServer((socket) => server.injectConnection(socket));
    await new Promise<void>((resolve) => listener.listen(`${dir}/s.sock`, resolve));
    client = connectCri(`unix://${dir}/s.sock`);
  });

  afterAll(() => {
    client.close();
    listener.close();
    void server.shutdown(0);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("aborts the handler's signal when the client cancels or its deadline passes", async () => {
    ready = true;
    await expect(client.runtime.ContainerStatus({ container_id: 'deadline' }, { timeoutMs: 100 })).rejects.toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
    await expect.poll(() => aborted).toEqual(['deadline']);
    const call = client.rawRuntime.ContainerStatus({ container_id: 'cancel' }, () => undefined);
    await expect.poll(() => inflight.size).toBe(1);
    call.cancel();
    await expect.poll(() => aborted).toEqual(['deadline', 'cancel']);
  });

  it('refuses calls with UNAVAILABLE until recovery is done', async () => {
    ready = false;
    await expect(client.runtime.Version({})).rejects.toMatchObject({
      code: grpc.status.UNAVAILABLE,
      details: expect.stringMatching(/recovery has not finished/),
    });
    ready = true;
    await expect(client.runtime.Version({})).resolves.toMatchObject({ runtime_name: 'test' });
  });

  it('answers UNIMPLEMENTED naming the method for RPCs without a handler', async () => {
    ready = true;
    await expect(client.runtime.CreateContainer({})).rejects.toMatchObject({
      code: grpc.status.UNIMPLEMENTED,
      details: 'CreateContainer is not implemented by berth',
    });
  });

  it.each([
    ['notfound', grpc.status.NOT_FOUND],
    ['invalid', grpc.status.INVALID_ARGUMENT],
    ['exists', grpc.status.ALREADY_EXISTS],
    ['precondition', grpc.status.FAILED_PRECONDITION],
    ['deadline', grpc.status.DEADLINE_EXCEEDED],
    ['unavailable', grpc.status.UNAVAILABLE],
    ['internal', grpc.status.INTERNAL],
  ])('maps a %s error to status %i with its message', async (id, code) => {
    ready = true;
    await expect(client.runtime.PodSandboxStatus({ pod_sandbox_id: id })).rejects.toMatchObject({
      code,
      details: errorsById[id].message,
    });
  });

  it('passes typed requests and responses through', async () => {
    ready = true;
    const res = await client.runtime.ListPodSandbox({ filter: { id: 'abc' } });
    expect(res.items.map((p) => p.id)).toEqual(['abc']);
  });

  it('streams every message of a server-streaming handler', async () => {
    ready = true;
    const ids: string[] = [];
    const stream = client.rawRuntime.StreamPodSandboxes({});
    for await (const page of stream) ids.push(...page.pod_sandboxes.map((p: { id: string }) => p.id));
    expect(ids).toEqual(['a', 'b']);
  });

  it('counts calls in flight and records latency and errors by method and code', async () => {
    ready = true;
    const pending = client.runtime.PodSandboxStatus({ pod_sandbox_id: 'slow' });
    await expect.poll(() => inflight.size).toBe(1);
    release();
    await pending;
    expect(inflight.size).toBe(0);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/berth_grpc_request_duration_seconds_count\{service="RuntimeService",method="PodSandboxStatus",code="OK"\} 1/);
    expect(text).toMatch(/berth_grpc_request_errors_total\{service="RuntimeService",method="PodSandboxStatus",code="NOT_FOUND"\} 1/);
  });
});
