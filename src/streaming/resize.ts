// Terminal resizes arrive as a stream of JSON objects ({"Width":80,"Height":24}), back to back and split
// anywhere. The kubelet reads them with a json.Decoder and stops at the first one it cannot decode; so
// does this.
import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import type { TerminalSize } from './backend';

/** One resize message is a few dozen bytes; a client that sends more without closing a brace is broken. */
const MAX_PENDING = 64 * 1024;

export class ResizeDecoder {
  private pending = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private scanned = 0;
  failed = false;

  /** Returns the sizes completed by this chunk. */
  push(chunk: Buffer): TerminalSize[] {
    if (this.failed) return [];
    this.pending += chunk.toString('utf8');
    const sizes: TerminalSize[] = [];
    for (; this.scanned < this.pending.length; this.scanned++) {
      const c = this.pending[this.scanned];
      if (this.depth === 0 && /\s/.test(c)) continue;
      if (this.depth === 0 && c !== '{') return this.fail();
      if (!this.step(c)) continue;
      const size = parseSize(this.pending.slice(this.pending.search(/\S/), this.scanned + 1));
      if (!size) return this.fail();
      sizes.push(size);
      this.pending = this.pending.slice(this.scanned + 1);
      this.scanned = -1;
    }
    if (this.pending.length > MAX_PENDING) return this.fail();
    return sizes;
  }

  /** Advances the scanner by one character; true when it closed a top-level object. */
  private step(c: string): boolean {
    if (this.inString) {
      if (this.escaped) this.escaped = false;
      else if (c === '\\') this.escaped = true;
      else if (c === '"') this.inString = false;
      return false;
    }
    if (c === '"') this.inString = true;
    else if (c === '{') this.depth++;
    else if (c === '}') return --this.depth === 0;
    return false;
  }

  private fail(): TerminalSize[] {
    this.failed = true;
    this.pending = '';
    return [];
  }
}

/** Go decodes object keys case-insensitively into uint16 fields. */
function parseSize(text: string): TerminalSize | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const size: TerminalSize = { width: 0, height: 0 };
  for (const [key, v] of Object.entries(value)) {
    const field = key.toLowerCase();
    if (field !== 'width' && field !== 'height') continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff) return undefined;
    size[field] = v;
  }
  return size;
}

/** An emitter of 'resize' events read from a client's resize stream. */
export function resizeEvents(source: Readable): EventEmitter {
  const events = new EventEmitter();
  const decoder = new ResizeDecoder();
  source.on('data', (chunk: Buffer) => {
    for (const size of decoder.push(chunk)) events.emit('resize', size);
    if (decoder.failed) source.resume(); // keep draining what the client sends, as the kubelet ignores it
  });
  source.on('error', () => undefined);
  return events;
}
