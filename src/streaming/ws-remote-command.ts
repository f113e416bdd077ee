// remotecommand over WebSocket: channels 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize (kubelet's
// createWebSocketStreams), with the status on channel 3 and a normal close after it.
import type { WebSocket } from 'ws';
import { jsonStatus, type CommandProtocol } from './protocols';
import { runRemoteCommand, type CommandTarget } from './remote-command';
import type { ActiveSession, SessionContext } from './session-context';
import { encodeStatusJson, encodeStatusText } from './status';
import { WsChannelConn } from './ws-channels';

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const RESIZE = 4;

export function serveWsCommand(ws: WebSocket, protocol: CommandProtocol, target: CommandTarget, ctx: SessionContext): ActiveSession {
  const { request } = target;
  const conn = new WsChannelConn(
    ws,
    [
      { read: request.stdin, write: false },
      { read: false, write: request.stdout },
      { read: false, write: request.stderr },
      { read: false, write: true },
      { read: true, write: false },
    ],
    { base64: protocol.base64, closeSignal: protocol.version >= 5, idleTimeoutMs: ctx.idleTimeoutMs },
  );
  const log = ctx.log.child({ session: target.kind, containerId: request.containerId, protocol: protocol.name });
  const abort = new AbortController();
  void conn.closed.then(() => abort.abort());
  const ch = conn.channels;

  const run = async (): Promise<void> => {
    // An empty message on the lowest writable channel tells the client the session is up.
    await conn.send(request.stdout ? STDOUT : request.stderr ? STDERR : ERROR, Buffer.alloc(0)).catch(() => undefined);
    await runRemoteCommand(
      target,
      ctx.backend,
      {
        stdin: request.stdin ? ch[STDIN] : undefined,
        stdout: request.stdout ? ch[STDOUT] : undefined,
        stderr: request.stderr ? ch[STDERR] : undefined,
        resize: ch[RESIZE],
        writeStatus: async (status) => {
          const body = jsonStatus(protocol) ? encodeStatusJson(status) : encodeStatusText(status);
          if (body) await conn.send(ERROR, body);
        },
      },
      abort.signal,
      log,
    );
    await conn.close();
  };
  const done = run().catch((err: unknown) => {
    log.warn({ err }, 'WebSocket session failed');
    ws.terminate();
  });
  return { close: () => conn.close(1001), done: done.then(() => conn.closed) };
}
