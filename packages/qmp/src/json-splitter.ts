/**
 * Splits a byte stream into top-level JSON values, as QEMU's JSON streamer does for QMP: values
 * may arrive in pieces or several per chunk, separated by any whitespace (or nothing).
 *
 * Each complete value is parsed; text that is not JSON, or a value past `maxBytes`, becomes a
 * parse error for that value and the splitter resynchronises at the next top-level `{` or `[`.
 */
export type SplitResult = { ok: true; value: unknown } | { ok: false; error: string };

export interface JsonSplitterOptions {
  /** Largest value accepted, in bytes (default 1 MiB). */
  maxBytes?: number;
  /** Deepest nesting accepted (default 1024, QEMU's limit). */
  maxDepth?: number;
}

export class JsonSplitter {
  private readonly maxBytes: number;
  private readonly maxDepth: number;
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });
  private buf = '';
  private depth = 0;
  private inString = false;
  private escape = false;
  /** Discarding the rest of an oversized or too deep value. */
  private skipping = false;
  /** Collecting stray top-level text (reported as one error). */
  private junk = '';

  constructor(opts: JsonSplitterOptions = {}) {
    this.maxBytes = opts.maxBytes ?? 1 << 20;
    this.maxDepth = opts.maxDepth ?? 1024;
  }

  /** Feeds bytes; returns the values (or errors) completed by them, in order. */
  push(chunk: Uint8Array | string): SplitResult[] {
    const text = typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    const out: SplitResult[] = [];
    for (let i = 0; i < text.length; i++) {
      const c = text[i] as string;
      if (this.depth === 0) {
        if (c === '{' || c === '[') {
          this.flushJunk(out);
          this.depth = 1;
          this.buf = c;
          this.skipping = false;
          continue;
        }
        if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
          this.flushJunk(out);
          continue;
        }
        this.junk += c;
        if (this.junk.length > 64) this.flushJunk(out);
        continue;
      }
      if (!this.skipping) this.buf += c;
      if (this.inString) {
        if (this.escape) this.escape = false;
        else if (c === '\\') this.escape = true;
        else if (c === '"') this.inString = false;
      } else if (c === '"') this.inString = true;
      else if (c === '{' || c === '[') {
        this.depth++;
        if (this.depth > this.maxDepth && !this.skipping) {
          this.skipping = true;
          out.push({ ok: false, error: `JSON parse error, nesting deeper than ${this.maxDepth}` });
        }
      } else if (c === '}' || c === ']') {
        this.depth--;
        if (this.depth === 0) {
          if (!this.skipping) out.push(parse(this.buf));
          this.buf = '';
          this.skipping = false;
        }
      }
      if (!this.skipping && this.buf.length > this.maxBytes) {
        this.skipping = true;
        this.buf = '';
        out.push({ ok: false, error: `JSON parse error, message longer than ${this.maxBytes} bytes` });
      }
    }
    return out;
  }

  /** Bytes held for an incomplete value. */
  get pending(): number {
    return this.buf.length + this.junk.length;
  }

  private flushJunk(out: SplitResult[]): void {
    if (!this.junk) return;
    out.push({ ok: false, error: `JSON parse error, invalid token '${this.junk.slice(0, 32)}'` });
    this.junk = '';
  }
}

function parse(text: string): SplitResult {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, error: `JSON parse error, ${(err as Error).message}` };
  }
}
