import type { Writable } from 'node:stream';
import { TransportError } from './errors.js';

export interface WriteQueueOptions {
  /** Accepted-but-unwritten bytes above which `write` waits (backpressure). */
  highWaterMark: number;
  /** Size of the buffer that small writes are copied into. */
  batchBytes: number;
  /** Writes up to this size are copied into the batch; larger ones are passed by reference. */
  copyMaxBytes: number;
}

type Waiter = { resolve: () => void; reject: (e: TransportError) => void };

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * The send side of a channel. Small writes are copied into a batch buffer that goes out when it
 * fills, before a large write, on `flush()`, or once the current burst of work yields to the
 * event loop (setImmediate); large writes go straight to the stream without a copy.
 *
 * `write` resolves once the bytes buffered in user space (batch + stream queue) are at or below
 * the high-water mark, so a fast producer waits for the kernel to take the data.
 */
export class WriteQueue {
  readonly #w: Writable;
  readonly #opts: WriteQueueOptions;
  #batch: Uint8Array | null = null;
  #batchLen = 0;
  #immediate: NodeJS.Immediate | null = null;
  #inFlight = 0;
  #accepted = 0;
  #drainWaiters: Waiter[] = [];
  #flushWaiters: Waiter[] = [];
  #error: TransportError | null = null;
  #ended = false;
  #peakBuffered = 0;
  readonly #onWritten: (err?: Error | null) => void;
  readonly #onError: (err: unknown) => void;

  constructor(w: Writable, opts: WriteQueueOptions, onError: (err: unknown) => void) {
    this.#w = w;
    this.#opts = opts;
    this.#onError = onError;
    this.#onWritten = (err) => {
      this.#inFlight--;
      if (err) {
        this.#onError(err);
        return;
      }
      this.#wake();
    };
  }

  /** Bytes accepted by write/writev so far. */
  get accepted(): number {
    return this.#accepted;
  }

  /** Bytes accepted but not yet handed to the kernel. */
  get buffered(): number {
    return this.#w.writableLength + this.#batchLen;
  }

  /** Largest `buffered` seen after a write was accepted. */
  get peakBuffered(): number {
    return this.#peakBuffered;
  }

  get ended(): boolean {
    return this.#ended;
  }

  write(bytes: Uint8Array): Promise<void> {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#ended) return Promise.reject(afterEnd());
    if (bytes.byteLength === 0) return RESOLVED;
    this.#enqueue(bytes);
    return this.#admit();
  }

  writev(list: readonly Uint8Array[]): Promise<void> {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#ended) return Promise.reject(afterEnd());
    this.#w.cork();
    try {
      for (const b of list) if (b.byteLength > 0) this.#enqueue(b);
    } finally {
      this.#w.uncork();
    }
    return this.#admit();
  }

  /** Resolves when every accepted byte has been handed to the kernel. */
  flush(): Promise<void> {
    if (this.#error) return Promise.reject(this.#error);
    this.#emitBatch();
    if (this.#inFlight === 0) return RESOLVED;
    return new Promise((resolve, reject) => this.#flushWaiters.push({ resolve, reject }));
  }

  /** Sends what is batched and ends the stream; resolves when the stream has finished. */
  end(): Promise<void> {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#ended) return this.flush();
    this.#emitBatch();
    this.#ended = true;
    return new Promise((resolve, reject) => {
      this.#flushWaiters.push({ resolve, reject });
      this.#w.end((err?: Error | null) => {
        if (err) this.#onError(err);
        else if (!this.#error) this.#wake();
      });
    });
  }

  /** Rejects every waiter with `error`; later calls reject with it too. */
  fail(error: TransportError): void {
    if (this.#error) return;
    this.#error = error;
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#immediate = null;
    this.#batch = null;
    this.#batchLen = 0;
    const waiters = [...this.#drainWaiters, ...this.#flushWaiters];
    this.#drainWaiters = [];
    this.#flushWaiters = [];
    for (const w of waiters) w.reject(error);
  }

  #enqueue(bytes: Uint8Array): void {
    const n = bytes.byteLength;
    this.#accepted += n;
    if (n > this.#opts.copyMaxBytes) {
      this.#emitBatch();
      this.#emit(bytes);
      return;
    }
    if (this.#batchLen + n > this.#opts.batchBytes) this.#emitBatch();
    this.#batch ??= Buffer.allocUnsafe(this.#opts.batchBytes);
    this.#batch.set(bytes, this.#batchLen);
    this.#batchLen += n;
    if (this.#batchLen === this.#opts.batchBytes) this.#emitBatch();
    else this.#immediate ??= setImmediate(() => this.#emitBatch());
  }

  #emitBatch(): void {
    if (this.#immediate) {
      clearImmediate(this.#immediate);
      this.#immediate = null;
    }
    if (this.#batchLen === 0 || this.#batch === null || this.#error) return;
    const out = this.#batch.subarray(0, this.#batchLen);
    this.#batch = null;
    this.#batchLen = 0;
    this.#emit(out);
  }

  #emit(bytes: Uint8Array): void {
    this.#inFlight++;
    this.#w.write(bytes, this.#onWritten);
  }

  #admit(): Promise<void> {
    const buffered = this.buffered;
    if (buffered > this.#peakBuffered) this.#peakBuffered = buffered;
    if (buffered <= this.#opts.highWaterMark) return RESOLVED;
    this.#emitBatch();
    return new Promise((resolve, reject) => this.#drainWaiters.push({ resolve, reject }));
  }

  #wake(): void {
    if (this.#drainWaiters.length > 0 && this.buffered <= this.#opts.highWaterMark) {
      const ws = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const w of ws) w.resolve();
    }
    if (this.#flushWaiters.length > 0 && this.#inFlight === 0 && this.#batchLen === 0) {
      if (this.#ended && !this.#w.writableFinished) return;
      const ws = this.#flushWaiters;
      this.#flushWaiters = [];
      for (const w of ws) w.resolve();
    }
  }
}

function afterEnd(): TransportError {
  return new TransportError('E_CLOSED', 'write after end(): the sending side of this channel is closed');
}
