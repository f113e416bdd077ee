// Exact-size reads over an async stream of chunks, for the tar parser.

export class ByteReader {
  private buffered: Buffer[] = [];
  private size = 0;
  private ended = false;

  constructor(private readonly source: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<void> {
    while (this.size < n && !this.ended) {
      const next = await this.source.next();
      if (next.done) this.ended = true;
      else if (next.value.length) {
        this.buffered.push(next.value);
        this.size += next.value.length;
      }
    }
  }

  private take(n: number): Buffer {
    const all = this.buffered.length === 1 ? this.buffered[0] : Buffer.concat(this.buffered);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.buffered = rest.length ? [rest] : [];
    this.size = rest.length;
    return out;
  }

  /** Exactly n bytes, or null when the stream ends first (with 0 bytes left); a short tail is an error. */
  async read(n: number): Promise<Buffer | null> {
    await this.fill(n);
    if (this.size === 0 && this.ended) return null;
    if (this.size < n) throw new Error(`unexpected end of archive: wanted ${n} bytes, ${this.size} left`);
    return this.take(n);
  }

  /** Passes the next n bytes to sink in pieces, without holding them all. */
  async stream(n: number, sink: (chunk: Buffer) => Promise<void> | void): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.size === 0) await this.fill(1);
      if (this.size === 0) throw new Error(`unexpected end of archive: ${left} bytes of an entry missing`);
      const piece = this.take(Math.min(left, this.size));
      left -= piece.length;
      await sink(piece);
    }
  }

  /** Reads and discards everything left. */
  async drain(): Promise<void> {
    this.buffered = [];
    this.size = 0;
    while (!this.ended) {
      const next = await this.source.next();
      if (next.done) this.ended = true;
    }
  }

  async skip(n: number): Promise<void> {
    await this.stream(n, () => undefined);
  }
}
