// The hand-over of CRI connections to the HTTP/2 server: clients with a valid :authority get HTTP/2 on the
// socket itself (no JavaScript stream between), clients with an invalid one the rewriting stream; the
// SETTINGS frame berthd sends first is acknowledged by the client and that ACK never reaches the server.
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthorityRewriter, handOver } from '../../src/server/h2/authority-rewriter';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const settingsAck = Buffer.from([0, 0, 0, 4, 1, 0, 0, 0, 0]);
const ping = Buffer.concat([Buffer.from([0, 0, 8, 6, 0, 0, 0, 0, 0]), Buffer.alloc(8)]);

describe('AuthorityRewriter.expectSettingsAck', () => {
  it('takes exactly the expected number of SETTINGS ACKs out of the stream', () => {
    const r = new AuthorityRewriter();
    r.expectSettingsAck();
    expect(r.settingsAcked).toBe(false);
    const out = Buffer.concat(r.push(Buffer.concat([PREFACE, settingsAck, ping, settingsAck])));
    expect(r.settingsAcked).toBe(true);
    // The first ACK is gone; the PING and the second ACK (the server's own) pass.
    expect(out).toEqual(Buffer.concat([PREFACE, ping, settingsAck]));
  });

  it('finds an ACK split across chunks', () => {
    const r = new AuthorityRewriter();
    r.expectSettingsAck();
    const input = Buffer.concat([PREFACE, settingsAck, ping]);
    const out = [...r.push(input.subarray(0, 28)), ...r.push(input.subarray(28))];
    expect(Buffer.concat(out)).toEqual(Buffer.concat([PREFACE, ping]));
  });
});

describe('handOver', () => {
  let dir: string;
  let socketPath: string;
  let listener: net.Server;
  const injected: Duplex[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-h2-'));
    socketPath = path.join(dir, 's.sock');
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200 });
      stream.end(String(headers[':authority']));
    });
    listener = net.createServer((socket) =>
      handOver(socket, (conn) => {
        injected.push(conn);
        server.emit('connection', conn);
      }, () => undefined),
    );
    await new Promise<void>((resolve) => listener.listen(socketPath, resolve));
  });

  afterAll(() => {
    listener.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function get(authority: string, requests: number): Promise<string[]> {
    const session = http2.connect('http://localhost', { createConnection: () => net.connect(socketPath) });
    try {
      const bodies: string[] = [];
      for (let i = 0; i < requests; i++) {
        const req = session.request({ ':path': '/', ':authority': authority });
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        await new Promise<void>((resolve, reject) => {
          req.on('end', resolve);
          req.on('error', reject);
        });
        bodies.push(Buffer.concat(chunks).toString());
      }
      // A PING answered after the requests: the connection is still sound (no protocol error from the ACK).
      await new Promise<void>((resolve, reject) => session.ping((err) => (err ? reject(err) : resolve())));
      return bodies;
    } finally {
      session.close();
    }
  }

  it('gives a client with a valid authority the socket itself', async () => {
    const before = injected.length;
    expect(await get('localhost', 3)).toEqual(['localhost', 'localhost', 'localhost']);
    expect(injected.length).toBe(before + 1);
    expect(injected[before]).toBeInstanceOf(net.Socket);
  });

  it('gives a client with an invalid authority the rewriting stream', async () => {
    const before = injected.length;
    expect(await get(socketPath, 2)).toEqual(['localhost', 'localhost']);
    expect(injected.length).toBe(before + 1);
    expect(injected[before]).not.toBeInstanceOf(net.Socket);
  });
});
