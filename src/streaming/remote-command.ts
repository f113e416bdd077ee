// One exec or attach session, whatever the wire: hand the client's streams to the backend, then flush
// stdout and stderr and report how it ended, as the kubelet's ServeExec and ServeAttach do.
import { finished } from 'node:stream/promises';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import { messageOf } from '../errors';
import type { StreamIO, StreamingBackend } from './backend';
import type { AttachRequest, ExecRequest } from './requests';
import { resizeEvents } from './resize';
import { exitCodeStatus, internalErrorStatus, successStatus, type Status } from './status';

export type CommandTarget = { kind: 'exec'; request: ExecRequest } | { kind: 'attach'; request: AttachRequest };

/** The client's side of a session, already set up by a protocol. */
export interface CommandChannels {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  /** The raw resize stream (JSON messages), when the protocol carries one. */
  resize?: Readable;
  /** Writes the final status in the protocol's encoding and closes the error stream. */
  writeStatus(status: Status): Promise<void>;
}

export async function runRemoteCommand(
  target: CommandTarget,
  backend: StreamingBackend,
  channels: CommandChannels,
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  const { request } = target;
  const io: StreamIO = {
    stdin: channels.stdin,
    stdout: channels.stdout,
    stderr: channels.stderr,
    tty: request.tty,
    resize: request.tty && channels.resize ? resizeEvents(channels.resize) : undefined,
    signal,
  };
  const status = await callBackend(target, backend, io, log);
  await Promise.all([flush(channels.stdout), flush(channels.stderr)]);
  await channels.writeStatus(status).catch(() => undefined);
}

async function callBackend(target: CommandTarget, backend: StreamingBackend, io: StreamIO, log: Logger): Promise<Status> {
  const containerId = target.request.containerId;
  try {
    if (target.kind === 'attach') {
      await backend.attach(containerId, io);
      return successStatus();
    }
    const { exitCode } = await backend.exec(containerId, target.request.cmd, io);
    // The client parses the code as a uint8; a shell reports codes past 255 modulo 256 as well.
    const code = ((exitCode % 256) + 256) % 256;
    return code === 0 ? successStatus() : exitCodeStatus(target.request.cmd, code);
  } catch (err) {
    const what = target.kind === 'exec' ? 'error executing command in container' : 'error attaching to container';
    log.info({ containerId, err: messageOf(err) }, `${target.kind} failed`);
    return internalErrorStatus(`${what}: ${messageOf(err)}`);
  }
}

/** Ends an output stream the backend left open and waits until its data has left berth. */
async function flush(stream: Writable | undefined): Promise<void> {
  if (!stream || stream.destroyed) return;
  if (!stream.writableEnded) stream.end();
  await finished(stream, { readable: false }).catch(() => undefined);
}
