// Port forwarding over WebSocket (kubelet's v4 port-forward protocol): the registered ports, two
// channels each (data 2n, error 2n+1), each channel's first message the port as a little-endian uint16.
// The connection closes when every port's forward is over.
import type { WebSocket } from 'ws';
import { messageOf } from '../errors';
import type { PortForwardRequest } from './requests';
import type { ActiveSession, SessionContext } from './session-context';
import { WsChannelConn, type WsChannel } from './ws-channels';

export function serveWsPortForward(ws: WebSocket, base64: boolean, request: PortForwardRequest, ctx: SessionContext): ActiveSession {
  const specs = request.ports.flatMap(() => [
    { read: true, write: true },
    { read: false, write: true },
  ]);
  const conn = new WsChannelConn(ws, specs, { base64, closeSignal: false, idleTimeoutMs: ctx.idleTimeoutMs });
  const log = ctx.log.child({ session: 'portforward', podId: request.podId });
  const abort = new AbortController();
  void conn.closed.then(() => abort.abort());

  const forwardOne = async (port: number, data: WsChannel, error: WsChannel): Promise<void> => {
    const portBytes = Buffer.alloc(2);
    portBytes.writeUInt16LE(port);
    await Promise.all([conn.send(data.num, portBytes), conn.send(error.num, portBytes)]);
    try {
      await ctx.backend.portForward(request.podId, port, data, abort.signal);
    } catch (err) {
      const message = `error forwarding port ${port} to pod ${request.podId}, uid : ${messageOf(err)}`;
      log.info({ port, err: messageOf(err) }, 'port forward failed');
      await conn.send(error.num, Buffer.from(message)).catch(() => undefined);
    }
  };

  const run = async (): Promise<void> => {
    const ch = conn.channels;
    await Promise.all(request.ports.map((port, i) => forwardOne(port, ch[2 * i], ch[2 * i + 1]).catch(() => undefined)));
    await conn.close();
  };
  const done = run();
  return { close: () => conn.close(1001), done: done.then(() => conn.closed) };
}
