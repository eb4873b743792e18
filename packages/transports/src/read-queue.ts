import { TransportError } from './errors.js';

type SomeWaiter = {
  kind: 'some';
  max: number;
  resolve: (v: Uint8Array | null) => void;
  reject: (e: TransportError) => void;
};
type ExactWaiter = {
  kind: 'exact';
  n: number;
  /** Allocated once the bytes are known to span chunks; filled progressively. */
  dest: Uint8Array | null;
  filled: number;
  /** Stream offset at which this read started. */
  offset: number;
  resolve: (v: Uint8Array) => void;
  reject: (e: TransportError) => void;
};
type Waiter = SomeWaiter | ExactWaiter;

/**
 * The receive side of a channel: arriving chunks queue here and reads take from the head.
 *
 * Reads return views of the arrived chunks when they can (no copy); an exact read that spans
 * chunks copies into one buffer, progressively, so a large exact read holds its bytes once.
 * Reads are served in call order. `onConsumed` lets the owner resume a paused source.
 */
export class ReadQueue {
  #chunks: Uint8Array[] = [];
  #headOffset = 0;
  #length = 0;
  #consumed = 0;
  #waiters: Waiter[] = [];
  #ended = false;
  #error: TransportError | null = null;
  readonly #uri: string;
  readonly #onConsumed: () => void;

  constructor(uri: string, onConsumed: () => void) {
    this.#uri = uri;
    this.#onConsumed = onConsumed;
  }

  /** Bytes queued and not yet read. */
  get buffered(): number {
    return this.#length;
  }

  /** Bytes handed to readers so far (the stream offset of the next read). */
  get consumed(): number {
    return this.#consumed;
  }

  /** Bytes a pending exact read still needs beyond what is queued (0 when none waits). */
  get demand(): number {
    const w = this.#waiters[0];
    return w?.kind === 'exact' ? w.n - w.filled : 0;
  }

  get ended(): boolean {
    return this.#ended;
  }

  get failed(): TransportError | null {
    return this.#error;
  }

  push(chunk: Uint8Array): void {
    if (this.#ended || this.#error || chunk.byteLength === 0) return;
    this.#chunks.push(chunk);
    this.#length += chunk.byteLength;
    if (this.#waiters.length > 0) this.#serve();
  }

  /** Clean end of stream: pending and later reads see EOF once the queue is drained. */
  end(): void {
    if (this.#ended || this.#error) return;
    this.#ended = true;
    this.#serve();
  }

  /**
   * The stream failed. With `discard`, queued bytes are dropped (cancel); otherwise they stay
   * readable and the error is raised where the stream stopped.
   */
  fail(error: TransportError, discard: boolean): void {
    if (this.#error) return;
    this.#error = error;
    if (discard) {
      this.#chunks = [];
      this.#headOffset = 0;
      this.#length = 0;
    }
    this.#serve();
  }

  read(max: number): Promise<Uint8Array | null> {
    if (this.#waiters.length === 0 && this.#length > 0) return Promise.resolve(this.#take(max));
    return new Promise((resolve, reject) => {
      this.#waiters.push({ kind: 'some', max, resolve, reject });
      this.#serve();
    });
  }

  /** Up to `max` queued bytes right now (a view), or null when none are queued. Never waits. */
  takeBuffered(max: number): Uint8Array | null {
    if (this.#waiters.length > 0 || this.#length === 0) return null;
    return this.#take(max);
  }

  readExactly(n: number): Promise<Uint8Array> {
    if (n === 0) return Promise.resolve(new Uint8Array(0));
    if (this.#waiters.length === 0 && this.#chunks.length > 0) {
      const head = this.#chunks[0] as Uint8Array;
      if (head.byteLength - this.#headOffset >= n) return Promise.resolve(this.#take(n));
    }
    return new Promise((resolve, reject) => {
      this.#waiters.push({ kind: 'exact', n, dest: null, filled: 0, offset: this.#consumed, resolve, reject });
      this.#serve();
    });
  }

  /** Puts bytes back at the head of the queue (a parser read further than it needed). */
  unread(bytes: Uint8Array): void {
    if (bytes.byteLength === 0) return;
    if (this.#headOffset > 0) {
      const head = this.#chunks[0] as Uint8Array;
      this.#chunks[0] = head.subarray(this.#headOffset);
      this.#headOffset = 0;
    }
    this.#chunks.unshift(bytes);
    this.#length += bytes.byteLength;
    this.#consumed -= bytes.byteLength;
    if (this.#waiters.length > 0) this.#serve();
  }

  #take(max: number): Uint8Array {
    const head = this.#chunks[0] as Uint8Array;
    const avail = head.byteLength - this.#headOffset;
    let out: Uint8Array;
    if (avail <= max) {
      out = this.#headOffset === 0 ? head : head.subarray(this.#headOffset);
      this.#chunks.shift();
      this.#headOffset = 0;
    } else {
      out = head.subarray(this.#headOffset, this.#headOffset + max);
      this.#headOffset += max;
    }
    this.#length -= out.byteLength;
    this.#consumed += out.byteLength;
    this.#onConsumed();
    return out;
  }

  #serve(): void {
    while (this.#waiters.length > 0) {
      const w = this.#waiters[0] as Waiter;
      if (w.kind === 'some') {
        if (this.#length > 0) {
          this.#waiters.shift();
          w.resolve(this.#take(w.max));
          continue;
        }
        if (this.#error) {
          this.#waiters.shift();
          w.reject(this.#error);
          continue;
        }
        if (this.#ended) {
          this.#waiters.shift();
          w.resolve(null);
          continue;
        }
        return;
      }
      if (!this.#serveExact(w)) return;
      this.#waiters.shift();
    }
  }

  /** Advances an exact read; true when it settled. */
  #serveExact(w: ExactWaiter): boolean {
    if (w.dest === null && this.#chunks.length > 0) {
      const head = this.#chunks[0] as Uint8Array;
      if (head.byteLength - this.#headOffset >= w.n) {
        w.resolve(this.#take(w.n));
        return true;
      }
    }
    if (this.#length > 0) {
      w.dest ??= new Uint8Array(w.n);
      while (w.filled < w.n && this.#length > 0) {
        const part = this.#take(w.n - w.filled);
        w.dest.set(part, w.filled);
        w.filled += part.byteLength;
      }
      if (w.filled === w.n) {
        w.resolve(w.dest);
        return true;
      }
    }
    if (this.#error) {
      w.reject(this.#shortBy(w, this.#error));
      return true;
    }
    if (this.#ended) {
      w.reject(
        new TransportError(
          'E_EOF',
          `stream ended at offset ${w.offset + w.filled} during an exact read of ${w.n} byte(s) at offset ${w.offset}: got ${w.filled}`,
          { uri: this.#uri, expected: w.n, got: w.filled, offset: w.offset },
        ),
      );
      return true;
    }
    return false;
  }

  /** The failure, restated with how far the interrupted exact read got. */
  #shortBy(w: ExactWaiter, e: TransportError): TransportError {
    return new TransportError(
      e.code,
      `${e.message} (during an exact read of ${w.n} byte(s) at offset ${w.offset}: got ${w.filled})`,
      {
        uri: e.uri ?? this.#uri,
        errno: e.errno,
        expected: w.n,
        got: w.filled,
        offset: w.offset,
        exitCode: e.exitCode,
        signal: e.signal,
        stderrTail: e.stderrTail,
        cause: e,
      },
    );
  }
}
