/**
 * Splits a byte stream into lines without ever holding more than `maxLineBytes` of one line: the
 * rest of a longer line is dropped and the line is reported as truncated. A trailing CR is removed.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private truncated = false;

  constructor(
    private readonly maxLineBytes: number,
    private readonly onLine: (line: string, truncated: boolean) => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      this.append(chunk.subarray(start, nl === -1 ? chunk.length : nl));
      if (nl === -1) return;
      this.emit();
      start = nl + 1;
    }
  }

  /** Emits the last line if it had no newline. */
  end(): void {
    if (this.size > 0 || this.truncated) this.emit();
  }

  private append(piece: Buffer): void {
    if (piece.length === 0) return;
    const room = this.maxLineBytes - this.size;
    if (piece.length > room) this.truncated = true;
    const kept = piece.subarray(0, Math.max(0, room));
    if (kept.length === 0) return;
    // A copy, so a kept piece does not pin the whole chunk it came from.
    this.parts.push(Buffer.from(kept));
    this.size += kept.length;
  }

  private emit(): void {
    let line = Buffer.concat(this.parts, this.size).toString('utf8');
    if (line.endsWith('\r')) line = line.slice(0, -1);
    const truncated = this.truncated;
    this.parts = [];
    this.size = 0;
    this.truncated = false;
    this.onLine(line, truncated);
  }
}

/** The last `maxBytes` bytes of a stream. */
export class TailBuffer {
  private buf = Buffer.alloc(0);
  total = 0;

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): void {
    this.total += chunk.length;
    if (this.maxBytes === 0) return;
    const piece = chunk.length > this.maxBytes ? chunk.subarray(chunk.length - this.maxBytes) : chunk;
    const joined = Buffer.concat([this.buf, piece]);
    this.buf = Buffer.from(joined.subarray(Math.max(0, joined.length - this.maxBytes)));
  }

  /** The tail as text, starting at a character boundary. */
  text(): string {
    let start = 0;
    // Skip UTF-8 continuation bytes left over from a character cut in two.
    while (start < this.buf.length && start < 3 && ((this.buf[start] ?? 0) & 0xc0) === 0x80) start++;
    return this.buf.subarray(start).toString('utf8');
  }
}
