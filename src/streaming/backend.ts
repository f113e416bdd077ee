// What the streaming server asks of berth: run a command, attach to a container, forward a port. The
// server owns the protocols; the backend owns containers. Nothing here knows HTTP, SPDY or WebSocket.
import type { EventEmitter } from 'node:events';
import type { Duplex, Readable, Writable } from 'node:stream';

export interface TerminalSize {
  width: number;
  height: number;
}

/**
 * The client's streams for one exec or attach session. Absent streams were not asked for.
 *
 * - stdin ends when the client closes its stdin (SPDY FIN, the v5 WebSocket CLOSE signal, or the
 *   connection going away).
 * - stdout and stderr honour backpressure: write() returns false while the client is behind, so pipe or
 *   pipeline() into them. The backend may end them (pipeline() does); the server ends whatever is left
 *   open once the returned promise settles, and every byte written before that reaches the client
 *   before the exit status does.
 * - resize is present when tty is true and the protocol carries resizes; it emits 'resize' with a
 *   TerminalSize for each message the client sends (the first usually arrives right after the start).
 * - signal aborts when the session is over for the client: it disconnected, the idle timeout fired, or
 *   the server is closing. The backend should then stop (kill an exec'd process, detach) and settle.
 */
export interface StreamIO {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  tty: boolean;
  resize?: EventEmitter;
  signal: AbortSignal;
}

export interface StreamingBackend {
  /**
   * Runs cmd in the container with io. Resolves with the exit code once the process has exited and its
   * output has been written to io (0-255; reported to the client as kubelet does). Rejects when the
   * command could not be run at all: the client then gets an InternalError status with the message.
   */
  exec(containerId: string, cmd: string[], io: StreamIO): Promise<{ exitCode: number }>;
  /** Connects io to the container's main process; resolves when the container's output ends or io.signal aborts. */
  attach(containerId: string, io: StreamIO): Promise<void>;
  /**
   * Connects stream to port on 127.0.0.1 inside the pod's network namespace, in both directions, and
   * resolves when both directions are done (or signal aborts). The stream's readable side ends when the
   * client half-closes; end its writable side when the target closes. A rejection is reported to the
   * client on the request's error stream; EPIPE/ECONNRESET from the target keep the connection usable.
   */
  portForward(podId: string, port: number, stream: Duplex, signal: AbortSignal): Promise<void>;
}
