// The streaming server's backend: exec, attach and port forward against berth's containers and pods.
// Exec sessions run under a berth-monitor of their own (the runtime's `exec` as its command), so a
// terminal, stdin and output go through the same attach protocol as a container's: berthd never
// holds a container process's stdio itself.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import { closeSync, openSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { FailedPreconditionError, messageOf } from '../errors';
import { connectUnix, controlCommand, FrameDecoder, parseExitFrame, STREAM_EXIT, STREAM_STDERR, STREAM_STDOUT, type AttachFrame } from '../monitor/attach-client';
import { MONITOR_BINARY, monitorFiles, type MonitorFiles } from '../monitor/monitor';
import { netnsConnect, posixSpawn } from '../native';
import type { RuntimeRegistry } from '../oci/runtime';
import type { PodService } from '../pod/pod-service';
import type { StreamIO, StreamingBackend, TerminalSize } from '../streaming/backend';
import type { ContainerRecord } from './container';
import type { ContainerService } from './container-service';
import { waitForExit } from '../util/spawn';
import { execProcess, killExec } from './exec-sync';
import { poll } from '../util/poll';

/** How long an exec session's monitor may take to open its attach socket. */
const SESSION_START_MS = 30_000;

export class ContainerStreams implements StreamingBackend {
  constructor(
    private readonly containers: ContainerService,
    private readonly pods: PodService,
    private readonly runtimes: RuntimeRegistry,
    private readonly stateDir: string,
    private readonly log: Logger,
  ) {}

  private async running(containerId: string): Promise<ContainerRecord> {
    const record = await this.containers.status(containerId);
    if (record.state !== 'running') throw new FailedPreconditionError(`container ${record.id} is not running (${record.state})`);
    return record;
  }

  async exec(containerId: string, cmd: string[], io: StreamIO): Promise<{ exitCode: number }> {
    // Listen before the first await: the client's first resize comes with the session's start, and
    // is applied once the session's monitor listens.
    const resize = new LatestSize(io);
    const record = await this.running(containerId);
    const runtime = this.runtimes.get(record.handler);
    const tag = randomBytes(8).toString('hex');
    const dir = path.join(record.stateDir, `exec-${tag}`);
    const consoleSocket = io.tty ? path.join(this.stateDir, 'console', `exec-${tag}`) : undefined;
    await fs.mkdir(dir, { mode: 0o700 });
    if (consoleSocket) await fs.mkdir(path.dirname(consoleSocket), { recursive: true, mode: 0o700 });
    const files = monitorFiles(dir, path.join(dir, 'exit.json'));
    const pidFile = path.join(dir, 'exec.pid');
    const processFile = path.join(dir, 'process.json');
    await fs.writeFile(processFile, JSON.stringify({ ...(await execProcess(path.join(record.stateDir, 'bundle'), cmd)), terminal: io.tty }), { mode: 0o600 });
    const command = runtime.execCommand(record.id, processFile, pidFile, { consoleSocket });
    const monitor = this.startSessionMonitor(files, command, io, consoleSocket);
    const kill = () => void killExec(pidFile, monitor.pid);
    io.signal.addEventListener('abort', kill, { once: true });
    try {
      const socket = await connectWhenReady(files.attachSocket, monitor.exited);
      const exit = await pump(socket, io, io.tty ? files.controlSocket : undefined, this.log, resize);
      return { exitCode: exit?.exitCode ?? 255 };
    } finally {
      io.signal.removeEventListener('abort', kill);
      await monitor.exited;
      await fs.rm(dir, { recursive: true, force: true });
      if (consoleSocket) await fs.rm(consoleSocket, { force: true });
    }
  }

  private startSessionMonitor(files: MonitorFiles, command: string[], io: StreamIO, consoleSocket: string | undefined): { pid: number; exited: Promise<void> } {
    const args = [
      '--log', '/dev/null',
      '--exit-file', files.exitFile,
      '--pid-file', files.pidFile,
      '--attach-socket', files.attachSocket,
      '--control-socket', files.controlSocket,
      '--wait-attach',
      // The session's one client paces the command's output (no log has to keep up).
      '--attach-backpressure',
      // A session's stdin ends when its one client's does.
      ...(io.stdin ? ['--stdin', '--stdin-once'] : []),
      ...(consoleSocket ? ['--tty', '--console-socket', consoleSocket] : []),
      '--', ...command,
    ];
    const stderr = openSync(files.monitorLog, 'a', 0o600);
    try {
      const pid = posixSpawn(MONITOR_BINARY, [MONITOR_BINARY, ...args], { stderrFd: stderr });
      const exited = waitForExit(pid).then(() => undefined);
      return { pid, exited };
    } finally {
      closeSync(stderr);
    }
  }

  async attach(containerId: string, io: StreamIO): Promise<void> {
    const resize = new LatestSize(io);
    const record = await this.running(containerId);
    const files = this.containers.filesOf(record.id, record.stateDir);
    const socket = await connectUnix(files.attachSocket);
    const detach = () => socket.destroy();
    io.signal.addEventListener('abort', detach, { once: true });
    try {
      await pump(socket, io, record.spec.process.tty ? files.controlSocket : undefined, this.log, resize);
    } finally {
      io.signal.removeEventListener('abort', detach);
    }
  }

  async portForward(podId: string, port: number, stream: Duplex, signal: AbortSignal): Promise<void> {
    const pod = this.pods.status(podId);
    if (pod.state !== 'ready') throw new FailedPreconditionError(`pod sandbox ${pod.id} is not ready`);
    const target = pod.pins.net ? new net.Socket({ fd: netnsConnect(pod.pins.net, '127.0.0.1', port), readable: true, writable: true, allowHalfOpen: true }) : await connectTcp(port);
    const stop = () => target.destroy();
    signal.addEventListener('abort', stop, { once: true });
    try {
      await Promise.all([copy(stream, target), copy(target, stream)]);
    } finally {
      signal.removeEventListener('abort', stop);
      target.destroy();
    }
  }
}

function connectTcp(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Copies one direction and ends the other side when the source ends; errors end the copy quietly. */
function copy(from: Duplex, to: Duplex): Promise<void> {
  return new Promise((resolve) => {
    from.pipe(to);
    from.once('end', () => resolve());
    from.once('close', () => resolve());
    from.once('error', () => resolve());
    to.once('error', () => resolve());
  });
}

/** Terminal sizes a client sends: remembered until there is somewhere to apply them, then passed on. */
class LatestSize {
  private last: TerminalSize | undefined;
  private sink: ((size: TerminalSize) => void) | undefined;

  constructor(io: StreamIO) {
    io.resize?.on('resize', (size: TerminalSize) => {
      this.last = size;
      this.sink?.(size);
    });
  }

  apply(sink: (size: TerminalSize) => void): void {
    this.sink = sink;
    if (this.last) sink(this.last);
  }
}

/** Waits for an exec monitor's attach socket to accept (it appears once the monitor runs). */
async function connectWhenReady(socketPath: string, exited: Promise<void>): Promise<net.Socket> {
  let gone = false;
  void exited.then(() => (gone = true));
  let lastError: unknown;
  const socket = await poll(
    async () => {
      try {
        return await connectUnix(socketPath);
      } catch (err) {
        if (gone) throw new Error(`the exec session's monitor exited before it could be attached: ${messageOf(err)}`);
        lastError = err;
        return undefined;
      }
    },
    { first: 1, max: 4, deadline: Date.now() + SESSION_START_MS },
  );
  if (!socket) throw new Error(`the exec session's monitor did not open ${socketPath}: ${messageOf(lastError)}`);
  return socket;
}

/**
 * Connects a session's streams to a monitor's attach socket: frames to stdout/stderr (waiting for the
 * client when it is behind), stdin to the socket, resizes to the control socket. Resolves with the
 * exit status when the monitor sends one, when the output ends otherwise.
 */
async function pump(socket: net.Socket, io: StreamIO, controlSocket: string | undefined, log: Logger, sizes: LatestSize): Promise<ReturnType<typeof parseExitFrame> | undefined> {
  if (io.stdin) {
    io.stdin.pipe(socket, { end: true });
    io.stdin.on('error', () => socket.end());
  } else {
    socket.end();
  }
  if (controlSocket) {
    sizes.apply((size) => {
      controlCommand(controlSocket, `resize ${size.height} ${size.width}`).catch((err: unknown) => log.debug({ error: messageOf(err) }, 'resize not applied'));
    });
  }
  let exit: ReturnType<typeof parseExitFrame> | undefined;
  const decoder = socket.pipe(new FrameDecoder());
  try {
    for await (const frame of decoder as AsyncIterable<AttachFrame>) {
      const out = frame.stream === STREAM_STDOUT ? io.stdout : frame.stream === STREAM_STDERR ? (io.stderr ?? (io.tty ? io.stdout : undefined)) : undefined;
      if (frame.stream === STREAM_EXIT) exit = parseExitFrame(frame.payload);
      else if (out && !out.destroyed && !out.write(frame.payload)) await once(out, 'drain');
    }
  } catch (err) {
    if (!io.signal.aborted) log.debug({ error: messageOf(err) }, 'attach stream ended with an error');
  } finally {
    socket.destroy();
  }
  return exit;
}
