// Subprotocol names and their negotiation, as the kubelet's streaming server offers them.

export const HEADER_PROTOCOL_VERSION = 'x-stream-protocol-version';
export const HEADER_ACCEPTED_PROTOCOL_VERSIONS = 'X-Accepted-Stream-Protocol-Versions';

/** remotecommand over SPDY, most preferred first. v5 behaves as v4 there: its CLOSE signal is WebSocket-only. */
export const SPDY_REMOTE_COMMAND_PROTOCOLS = [
  'v5.channel.k8s.io',
  'v4.channel.k8s.io',
  'v3.channel.k8s.io',
  'v2.channel.k8s.io',
  'channel.k8s.io',
];
export const SPDY_PORT_FORWARD_PROTOCOLS = ['portforward.k8s.io'];

/** What a negotiated remotecommand protocol means for the session. */
export interface CommandProtocol {
  name: string;
  version: 1 | 2 | 3 | 4 | 5;
  /** WebSocket only: payloads are base64 text and the channel a digit. */
  base64: boolean;
}

/** The status on the error stream is a JSON metav1.Status from v4 on, plain text before. */
export function jsonStatus(p: CommandProtocol): boolean {
  return p.version >= 4;
}

/** Resizes are carried from v3 on (the kubelet expects the resize stream only then). */
export function carriesResize(p: CommandProtocol): boolean {
  return p.version >= 3;
}

export function spdyCommandProtocol(name: string): CommandProtocol {
  const m = /^v(\d)\./.exec(name);
  return { name, version: (m ? Number(m[1]) : 1) as CommandProtocol['version'], base64: false };
}

/** WebSocket remotecommand subprotocols. "" is a client that named none: binary, pre-v4. */
const WS_COMMAND_PROTOCOLS: CommandProtocol[] = [
  { name: 'v5.channel.k8s.io', version: 5, base64: false },
  { name: 'v4.channel.k8s.io', version: 4, base64: false },
  { name: 'v4.base64.channel.k8s.io', version: 4, base64: true },
  { name: 'v3.channel.k8s.io', version: 3, base64: false },
  { name: 'v3.base64.channel.k8s.io', version: 3, base64: true },
  { name: 'v2.channel.k8s.io', version: 2, base64: false },
  { name: 'v2.base64.channel.k8s.io', version: 2, base64: true },
  { name: 'channel.k8s.io', version: 1, base64: false },
  { name: 'base64.channel.k8s.io', version: 1, base64: true },
  { name: '', version: 1, base64: false },
];

/** WebSocket port forward: two channels per port (kubelet's v4 port-forward protocol). */
const WS_PORT_FORWARD_PROTOCOLS: Array<{ name: string; base64: boolean }> = [
  { name: 'v4.channel.k8s.io', base64: false },
  { name: 'v4.base64.channel.k8s.io', base64: true },
  { name: '', base64: false },
];

/** Comma-separated values across repeated headers (Node joins repeats with ", "). */
export function headerList(value: string | string[] | undefined): string[] {
  const joined = Array.isArray(value) ? value.join(',') : (value ?? '');
  return joined.split(',').map((s) => s.trim()).filter(Boolean);
}

/** The client's first protocol the server also speaks (httpstream.Handshake), or undefined. */
export function negotiate(clientProtocols: string[], serverProtocols: string[]): string | undefined {
  return clientProtocols.find((p) => serverProtocols.includes(p));
}

/** The subprotocols a WebSocket client offered, in its order; none offered means "". */
function wsOffered(header: string | string[] | undefined): string[] {
  const offered = headerList(header);
  return offered.length ? offered : [''];
}

export function negotiateWsCommand(header: string | string[] | undefined): CommandProtocol | undefined {
  for (const name of wsOffered(header)) {
    const p = WS_COMMAND_PROTOCOLS.find((c) => c.name === name);
    if (p) return p;
  }
  return undefined;
}

export function negotiateWsPortForward(header: string | string[] | undefined): { name: string; base64: boolean } | undefined {
  for (const name of wsOffered(header)) {
    const p = WS_PORT_FORWARD_PROTOCOLS.find((c) => c.name === name);
    if (p) return p;
  }
  return undefined;
}

export function wsCommandProtocolNames(): string[] {
  return WS_COMMAND_PROTOCOLS.map((p) => p.name).filter(Boolean);
}

export function wsPortForwardProtocolNames(): string[] {
  return WS_PORT_FORWARD_PROTOCOLS.map((p) => p.name).filter(Boolean);
}
