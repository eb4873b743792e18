import { ByteReader } from '@e2k-migrate/vmstate';
import { type MigrationErrorDetails, MigrationStreamError, TruncatedStreamError, toStreamError } from '../errors.js';

const EMPTY = new Uint8Array(0);

/** Options of a {@link ByteSource}. */
export interface ByteSourceOptions {
  /** Total input length when known (a plain file): lets length fields be checked up front. */
  totalLength?: number;
  /** Called after each chunk is pulled, with the total bytes pulled so far. */
  onProgress?: (bytesRead: number) => void;
  /** Input name for errors (`main`, `multifd:0`, …). */
  channel?: string;
  /**
   * Return to the event loop (a macrotask turn) at least this often while pulling chunks, even when
   * the input has chunks buffered. A consumer that parses a fast stream would otherwise run for
   * as long as buffered chunks last (each await resolves as a microtask), delaying callbacks from
   * other threads — postcopy's fault notifications — by milliseconds. Default: never.
   */
  yieldEveryMs?: number;
}

/**
 * An incremental byte window over an async sequence of chunks (a Node Readable, a gunzip stream,
 * a socket). Nothing is read until asked for: `ensure(n)` pulls chunks until `n` bytes from the
 * read position are contiguous in `buf[pos .. end)`, which gives backpressure for free.
 *
 * Parsers read `buf`/`view` synchronously between `pos` and `pos + available` and advance `pos`;
 * they await only when the window runs dry. Chunks are adopted without copying when the window
 * is empty; only records that straddle two chunks are stitched into a reused scratch buffer.
 * A stack of limits (nested packages) makes the input appear to end early.
 */
export class ByteSource {
  /** Window storage; valid bytes are `buf[pos .. end)`. */
  buf: Uint8Array = EMPTY;
  view: DataView = new DataView(EMPTY.buffer);
  pos = 0;
  end = 0;
  readonly channel: string;
  readonly totalLength: number | undefined;
  /** Absolute offset of `buf[0]`. */
  private base = 0;
  private readonly iterator: AsyncIterator<Uint8Array> | undefined;
  private pending: Uint8Array | undefined;
  private done = false;
  private pulled = 0;
  private scratch: Uint8Array = EMPTY;
  private limits: number[] = [];
  private limit = Number.POSITIVE_INFINITY;
  private readonly onProgress: ((n: number) => void) | undefined;
  private readonly yieldEveryMs: number;
  private lastYield = 0;

  constructor(input: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Uint8Array, opts: ByteSourceOptions = {}) {
    this.channel = opts.channel ?? 'main';
    this.onProgress = opts.onProgress;
    this.yieldEveryMs = opts.yieldEveryMs ?? Number.POSITIVE_INFINITY;
    if (input instanceof Uint8Array) {
      this.adopt(input, 0);
      this.pulled = input.length;
      this.done = true;
      this.totalLength = opts.totalLength ?? input.length;
    } else {
      this.totalLength = opts.totalLength;
      this.iterator =
        Symbol.asyncIterator in input
          ? (input as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]()
          : toAsync((input as Iterable<Uint8Array>)[Symbol.iterator]());
    }
  }

  /** Absolute offset of the next unread byte. */
  get offset(): number {
    return this.base + this.pos;
  }

  /** Bytes readable now from `pos` without awaiting (clamped by the innermost limit). */
  get available(): number {
    const lim = this.limit - this.base;
    return Math.min(lim, this.end) - this.pos;
  }

  /** Total bytes pulled from the input so far. */
  get bytesRead(): number {
    return this.pulled;
  }

  /** True once the underlying input has ended (the window may still hold bytes). */
  get inputDone(): boolean {
    return this.done && this.pending === undefined;
  }

  /** The absolute end of the innermost limit, or Infinity. */
  get limitEnd(): number {
    return this.limit;
  }

  /**
   * Makes at least `n` bytes available from `pos`. Resolves false when the input (or the current
   * limit) ends first; `available` then tells how many there are.
   */
  async ensure(n: number): Promise<boolean> {
    if (this.available >= n) return true;
    const want = Math.min(n, this.limit - this.offset);
    if (this.end - this.pos === 0 && this.pending !== undefined) {
      const p = this.pending;
      this.pending = undefined;
      this.adopt(p, this.offset);
      if (this.available >= n) return true;
    }
    while (this.end - this.pos < want) {
      const chunk = this.pending ?? (await this.pull());
      this.pending = undefined;
      if (chunk === undefined) break;
      if (this.end - this.pos === 0) {
        this.adopt(chunk, this.offset);
        continue;
      }
      const need = want - (this.end - this.pos);
      this.stitch(Math.max(want, this.end - this.pos + Math.min(chunk.length, need)));
      const take = Math.min(chunk.length, need);
      this.buf.set(chunk.subarray(0, take), this.end);
      this.end += take;
      if (take < chunk.length) this.pending = chunk.subarray(take);
    }
    return this.available >= n;
  }

  /**
   * Appends the next whole input chunk (the pending remainder or a newly pulled one) to the
   * window, asking for no more than what exists: a scanner that only knows "at least one more
   * byte must come" uses this instead of guessing a size (a live peer may be waiting for us).
   * Resolves false when the input (or the current limit) has ended.
   */
  async more(): Promise<boolean> {
    const before = this.available;
    if (this.offset + before >= this.limit) return false;
    const chunk = this.pending ?? (await this.pull());
    this.pending = undefined;
    if (chunk === undefined) return false;
    if (this.end - this.pos === 0) this.adopt(chunk, this.offset);
    else {
      this.stitch(this.end - this.pos + chunk.length);
      this.buf.set(chunk, this.end);
      this.end += chunk.length;
    }
    return this.available > before;
  }

  /** Like {@link ensure} but throws a TruncatedStreamError naming `what` when the input ends. */
  async need(n: number, what: string, details: MigrationErrorDetails = {}): Promise<void> {
    if (this.available >= n) return;
    if (!(await this.ensure(n))) {
      throw new TruncatedStreamError(what, this.offset, n, this.available, { channel: this.channel, ...details });
    }
  }

  /** True when no byte remains before the end of the input or the current limit. */
  async atEnd(): Promise<boolean> {
    return !(await this.ensure(1));
  }

  /** Consumes `n` bytes that are available. */
  consume(n: number): void {
    this.pos += n;
  }

  /** Skips `n` bytes, pulling and dropping chunks as needed. */
  async skip(n: number, what: string, details: MigrationErrorDetails = {}): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.available === 0) await this.need(1, what, details);
      const step = Math.min(left, this.available);
      this.pos += step;
      left -= step;
    }
  }

  /** Copies the next `n` bytes out (they are consumed). */
  async read(n: number, what: string, details: MigrationErrorDetails = {}): Promise<Uint8Array> {
    await this.need(n, what, details);
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** A bounds-checked reader over the available window; commit its position with {@link commit}. */
  reader(): ByteReader {
    return new ByteReader(this.buf, this.base, this.pos, this.pos + this.available);
  }

  /** Advances to where `r` (from {@link reader}) stopped. */
  commit(r: ByteReader): void {
    this.pos = r.position;
  }

  /**
   * Runs a synchronous parser over the window; when it runs out of bytes, buffers more (doubling)
   * and runs it again from the same position, up to `maxBytes`. Cursor errors become
   * MigrationStreamErrors with `details`.
   */
  async parse<T>(
    fn: (r: ByteReader) => T,
    what: string,
    maxBytes: number,
    details: MigrationErrorDetails = {},
  ): Promise<T> {
    let want = 64;
    for (;;) {
      const r = this.reader();
      try {
        const v = fn(r);
        this.commit(r);
        return v;
      } catch (err) {
        const e = toStreamError(err, { channel: this.channel, ...details, record: details.record ?? what });
        if (!(e instanceof TruncatedStreamError)) throw e;
        const noMoreInput = this.inputDone || this.available >= this.limit - this.offset;
        if (noMoreInput) throw e;
        if (this.available >= maxBytes) {
          throw new MigrationStreamError(
            'E_BAD_LENGTH',
            `${what} at byte offset ${this.offset} is longer than ${maxBytes} bytes`,
            {
              channel: this.channel,
              ...details,
              offset: this.offset,
              record: details.record ?? what,
            },
          );
        }
        want = Math.min(maxBytes, Math.max(want * 2, this.available + 64));
        await this.ensure(want);
      }
    }
  }

  /**
   * Buffers everything up to the end of the input, unless more than `maxBytes` would be needed.
   * Resolves true when the whole rest of the input is now in the window.
   */
  async fillToEnd(maxBytes: number): Promise<boolean> {
    let want = Math.min(maxBytes, Math.max(this.available, 1 << 16));
    for (;;) {
      if (!(await this.ensure(want))) return true;
      if (want >= maxBytes) return false;
      want = Math.min(maxBytes, want * 2);
    }
  }

  /** Stops reading: releases the underlying input (file handle, gunzip stream). */
  async close(): Promise<void> {
    this.done = true;
    this.pending = undefined;
    try {
      await this.iterator?.return?.();
    } catch {
      // The input is being abandoned; its own errors no longer matter.
    }
  }

  /** Makes the input appear to end at absolute offset `end` (nested package) until {@link popLimit}. */
  pushLimit(end: number): void {
    this.limits.push(this.limit);
    this.limit = Math.min(this.limit, end);
  }

  popLimit(): void {
    this.limit = this.limits.pop() ?? Number.POSITIVE_INFINITY;
  }

  private adopt(input: Uint8Array, absOffset: number): void {
    // A plain Uint8Array view (not a Buffer, whose slice() does not copy).
    const chunk =
      input.constructor === Uint8Array ? input : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    this.buf = chunk;
    this.view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.base = absOffset;
    this.pos = 0;
    this.end = chunk.length;
  }

  /** Moves the unread bytes to the front of the scratch buffer, growing it to hold `cap` bytes. */
  private stitch(cap: number): void {
    const left = this.end - this.pos;
    const abs = this.offset;
    if (this.buf === this.scratch && this.scratch.length >= cap) {
      this.scratch.copyWithin(0, this.pos, this.end);
    } else {
      let next = this.scratch;
      if (next.length < cap || next === this.buf) {
        next = new Uint8Array(Math.max(cap, 2 * this.scratch.length, 1 << 16));
      }
      next.set(this.buf.subarray(this.pos, this.end), 0);
      this.scratch = next;
    }
    this.buf = this.scratch;
    this.view = new DataView(this.scratch.buffer, this.scratch.byteOffset, this.scratch.byteLength);
    this.base = abs;
    this.pos = 0;
    this.end = left;
  }

  private async pull(): Promise<Uint8Array | undefined> {
    if (this.done || this.iterator === undefined) return undefined;
    if (this.yieldEveryMs !== Number.POSITIVE_INFINITY) {
      const now = performance.now();
      if (now - this.lastYield >= this.yieldEveryMs) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        this.lastYield = performance.now();
      }
    }
    for (;;) {
      let r: IteratorResult<Uint8Array>;
      try {
        r = await this.iterator.next();
      } catch (err) {
        this.done = true;
        throw new MigrationStreamError(
          'E_IO',
          `reading ${this.channel} input after byte ${this.pulled}: ${(err as Error).message}`,
          {
            offset: this.pulled,
            channel: this.channel,
            cause: err,
          },
        );
      }
      if (r.done) {
        this.done = true;
        return undefined;
      }
      const c = r.value;
      if (!(c instanceof Uint8Array)) {
        this.done = true;
        throw new MigrationStreamError('E_IO', `${this.channel} input yielded a non-byte chunk`, {
          channel: this.channel,
        });
      }
      if (c.length === 0) continue;
      this.pulled += c.length;
      this.onProgress?.(this.pulled);
      return c;
    }
  }
}

async function* toAsync(it: Iterator<Uint8Array>): AsyncGenerator<Uint8Array> {
  for (;;) {
    const r = it.next();
    if (r.done) return;
    yield r.value;
  }
}
