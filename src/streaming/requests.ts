// The three kinds of streaming request berth registers, and the checks the server makes on them itself
// (the caller validates against its containers; these are the ones the protocols cannot live without).
import { InvalidArgumentError } from '../errors';

export interface ExecRequest {
  containerId: string;
  cmd: string[];
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

export interface AttachRequest {
  containerId: string;
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

export interface PortForwardRequest {
  podId: string;
  /** Ports the WebSocket protocol forwards (SPDY clients name theirs per stream, as with the kubelet). */
  ports: number[];
}

export type StreamingRequest = ExecRequest | AttachRequest | PortForwardRequest;

export type Registered =
  | { kind: 'exec'; request: ExecRequest }
  | { kind: 'attach'; request: AttachRequest }
  | { kind: 'portforward'; request: PortForwardRequest };

export type RequestKind = Registered['kind'];

/** Tells the kinds apart by shape (a command makes an exec, a pod ID a port forward) and checks them. */
export function classify(req: StreamingRequest): Registered {
  if ('podId' in req) {
    if (!req.podId) throw new InvalidArgumentError('port forward: missing required pod ID');
    for (const port of req.ports) {
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        throw new InvalidArgumentError(`port forward to pod ${req.podId}: port ${port} is not in 1-65535`);
      }
    }
    return { kind: 'portforward', request: { podId: req.podId, ports: [...req.ports] } };
  }
  const kind = 'cmd' in req ? 'exec' : 'attach';
  if (!req.containerId) throw new InvalidArgumentError(`${kind}: missing required container ID`);
  if (req.tty && req.stderr) {
    throw new InvalidArgumentError(`${kind} in container ${req.containerId}: tty and stderr cannot both be true`);
  }
  if (!req.stdin && !req.stdout && !req.stderr) {
    throw new InvalidArgumentError(`${kind} in container ${req.containerId}: one of stdin, stdout or stderr must be set`);
  }
  if ('cmd' in req) {
    if (!req.cmd.length) throw new InvalidArgumentError(`exec in container ${req.containerId}: the command is empty`);
    return { kind: 'exec', request: { ...req, cmd: [...req.cmd] } };
  }
  return { kind: 'attach', request: { ...req } };
}
