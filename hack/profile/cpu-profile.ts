#!/usr/bin/env node
// Profiles a running berthd for a while without restarting it: SIGUSR1 opens its inspector on
// 127.0.0.1:9229 (Node's documented behaviour), the V8 profiler runs for --seconds over the DevTools protocol,
// and the profile is written (load it in Chrome DevTools) and summarised by self time.
//   node dist/hack/profile/cpu-profile.js --pid PID [--seconds 30] [--out berthd.cpuprofile] [--top 30]
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { summariseProfile, type CpuProfile } from './summary';

const INSPECTOR = 'http://127.0.0.1:9229';

async function inspectorUrl(pid: number): Promise<string> {
  process.kill(pid, 'SIGUSR1');
  for (let i = 0; i < 50; i++) {
    const list = await fetch(`${INSPECTOR}/json/list`).then((r) => r.json() as Promise<{ webSocketDebuggerUrl: string }[]>, () => undefined);
    if (list?.length) return list[0].webSocketDebuggerUrl;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`pid ${pid} opened no inspector on ${INSPECTOR}`);
}

function session(url: string): Promise<(method: string, params?: object) => Promise<unknown>> {
  const ws = new WebSocket(url);
  let id = 0;
  const waiting = new Map<number, (v: unknown) => void>();
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data)) as { id?: number; result?: unknown };
    if (msg.id !== undefined) waiting.get(msg.id)?.(msg.result);
  });
  return new Promise((resolve, reject) => {
    ws.on('error', reject);
    ws.on('open', () =>
      resolve((method, params = {}) => {
        const n = ++id;
        ws.send(JSON.stringify({ id: n, method, params }));
        return new Promise((r) => waiting.set(n, r));
      }),
    );
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { pid: { type: 'string' }, seconds: { type: 'string', default: '30' }, out: { type: 'string', default: 'berthd.cpuprofile' }, top: { type: 'string', default: '30' }, interval: { type: 'string', default: '200' } },
  });
  if (!values.pid) throw new Error('--pid PID is required');
  const call = await session(await inspectorUrl(Number(values.pid)));
  await call('Profiler.enable');
  await call('Profiler.setSamplingInterval', { interval: Number(values.interval) });
  await call('Profiler.start');
  await new Promise((r) => setTimeout(r, Number(values.seconds) * 1000));
  const { profile } = (await call('Profiler.stop')) as { profile: CpuProfile };
  // Close the inspector again so the daemon does not keep a debugging port open.
  void call('Runtime.evaluate', { expression: "require('inspector').close()", includeCommandLineAPI: true });
  fs.writeFileSync(values.out, JSON.stringify(profile));
  process.stdout.write(summariseProfile(profile, Number(values.top)));
  process.exit(0);
}

main().catch((err: Error) => {
  process.stderr.write(`cpu-profile: ${err.message}\n`);
  process.exit(1);
});
