// remotecommand over SPDY (channel.k8s.io v1-v5): the client opens one stream per channel, named by its
// streamType header; the session starts once every expected stream is there, as the kubelet's
// waitForStreams does, and the status goes out on the error stream before the connection closes.
import type { Socket } from 'node:net';
import { finished } from 'node:stream/promises';
import { carriesResize, jsonStatus, type CommandProtocol } from './protocols';
import { runRemoteCommand, type CommandTarget, type CommandChannels } from './remote-command';
import { within, type ActiveSession, type SessionContext } from './session-context';
import { SpdySession } from './spdy/session';
import { headerValue } from './spdy/header-codec';
import type { SpdyStream } from './spdy/stream';
import { encodeStatusJson, encodeStatusText, type Status } from './status';

type StreamType = 'error' | 'stdin' | 'stdout' | 'stderr' | 'resize';

function expectedTypes(target: CommandTarget, protocol: CommandProtocol): Set<StreamType> {
  const { request } = target;
  const types = new Set<StreamType>(['error']);
  if (request.stdin) types.add('stdin');
  if (request.stdout) types.add('stdout');
  if (request.stderr) types.add('stderr');
  if (request.tty && carriesResize(protocol)) types.add('resize');
  return types;
}

export function serveSpdyCommand(
  socket: Socket,
  protocol: CommandProtocol,
  target: CommandTarget,
  ctx: SessionContext,
): ActiveSession {
  const expected = expectedTypes(target, protocol);
  const streams = new Map<StreamType, SpdyStream>();
  let allThere: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (allThere = resolve));
  const log = ctx.log.child({ session: target.kind, containerId: target.request.containerId, protocol: protocol.name });

  const session = new SpdySession(socket, {
    isServer: true,
    idleTimeoutMs: ctx.idleTimeoutMs,
    onStream: (stream) => {
      // Every stream is accepted, as the kubelet does; one it has no use for is simply never read.
      const type = headerValue(stream.headers, 'streamtype') as StreamType | undefined;
      if (type && expected.has(type) && !streams.has(type)) streams.set(type, stream);
      else log.debug({ streamType: type }, 'ignoring unexpected stream');
      if (streams.size === expected.size) allThere();
      return true;
    },
  });
  const closed = new Promise<void>((resolve) => session.once('close', resolve));
  const abort = new AbortController();
  session.once('close', () => abort.abort());

  const run = async (): Promise<void> => {
    const gotStreams = await within(Promise.race([ready, closed]), ctx.streamCreationTimeoutMs);
    if (!gotStreams || session.isClosed) {
      if (!session.isClosed) log.info({ missing: [...expected].filter((t) => !streams.has(t)) }, 'timed out waiting for client to create streams');
      return session.close();
    }
    await runRemoteCommand(target, ctx.backend, channelsOf(streams, protocol), abort.signal, log);
    await session.close();
  };
  const done = run().catch((err: unknown) => {
    log.warn({ err }, 'SPDY session failed');
    session.destroy();
  });
  return { close: () => session.close(), done: done.then(() => closed) };
}

function channelsOf(streams: Map<StreamType, SpdyStream>, protocol: CommandProtocol): CommandChannels {
  return {
    stdin: streams.get('stdin'),
    stdout: streams.get('stdout'),
    stderr: streams.get('stderr'),
    resize: streams.get('resize'),
    writeStatus: (status) => writeStatus(streams.get('error'), status, protocol),
  };
}

async function writeStatus(stream: SpdyStream | undefined, status: Status, protocol: CommandProtocol): Promise<void> {
  if (!stream || stream.destroyed) return;
  const body = jsonStatus(protocol) ? encodeStatusJson(status) : encodeStatusText(status);
  stream.end(body);
  await finished(stream, { readable: false });
}
