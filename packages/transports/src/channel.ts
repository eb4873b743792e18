import type { ChannelIo } from './channel-io.js';
import {
  type ChannelCloseInfo,
  type ChannelInfo,
  type ChannelOptions,
  DEFAULT_CHANNEL_OPTIONS,
} from './channel-types.js';
import { TransportError } from './errors.js';
import { ReadQueue } from './read-queue.js';
import { WriteQueue } from './write-queue.js';

/** Largest single exact read (it is one allocation). */
export const MAX_EXACT_READ = 2 ** 31 - 1;

/**
 * A duplex (or one-way) byte channel over a socket, TLS session, process pipe, descriptor or
 * file: exact reads, zero-copy chunk reads, batched writes with backpressure, half-close,
 * cancel, and counters. Every failure is a {@link TransportError}.
 *
 * Writes smaller than `copyMaxBytes` are copied; larger ones are sent by reference, so their
 * bytes must stay unchanged until `flush()` resolves (as QEMU's `qemu_put_buffer_async`).
 */
export class Channel implements AsyncIterable<Uint8Array> {
  readonly info: ChannelInfo;
  /** Resolves, never rejects, once the transport's resources are released. */
  readonly closed: Promise<ChannelCloseInfo>;
  readonly #io: ChannelIo;
  readonly #reader: ReadQueue | null = null;
  readonly #writer: WriteQueue | null = null;
  readonly #readHwm: number;
  #paused = false;
  #eofSeen = false;
  #peakRead = 0;
  #outcome: ChannelCloseInfo | null = null;

  constructor(io: ChannelIo, info: ChannelInfo, options: ChannelOptions = {}) {
    const opts = { ...DEFAULT_CHANNEL_OPTIONS, ...options };
    this.info = info;
    this.#io = io;
    this.#readHwm = opts.readHighWaterMark;
    const readable = io.readable;
    if (readable) {
      const reader = new ReadQueue(info.uri, () => this.#maybeResume());
      this.#reader = reader;
      readable.on('data', (chunk: Uint8Array) => {
        reader.push(chunk);
        const buffered = reader.buffered;
        if (buffered > this.#peakRead) this.#peakRead = buffered;
        if (buffered >= this.#readHwm && !this.#paused) {
          this.#paused = true;
          readable.pause();
        }
      });
      readable.on('end', () => {
        this.#eofSeen = true;
        void this.#onEof();
      });
      readable.on('error', (e) => void this.#onStreamError(e));
      readable.on('close', () => {
        if (!this.#eofSeen && !reader.failed) {
          const e = new TransportError('E_CLOSED', `${info.uri}: closed before the end of the stream`, {
            uri: info.uri,
          });
          void this.#onStreamError(e);
        }
      });
    }
    if (io.writable) {
      this.#writer = new WriteQueue(
        io.writable,
        { highWaterMark: opts.writeHighWaterMark, batchBytes: opts.batchBytes, copyMaxBytes: opts.copyMaxBytes },
        (e) => void this.#onStreamError(e),
      );
      if ((io.writable as unknown) !== readable) io.writable.on('error', (e) => void this.#onStreamError(e));
    }
    io.watch?.((e) => this.#fail(e));
    this.closed = io.released.then(() => this.#outcome ?? { reason: 'ended' });
  }

  /** Bytes handed to readers so far (the stream offset of the next read). */
  get bytesRead(): number {
    return this.#reader?.consumed ?? 0;
  }

  /** Bytes accepted by write/writev so far. */
  get bytesWritten(): number {
    return this.#writer?.accepted ?? 0;
  }

  /** Received bytes not yet read. */
  get readBuffered(): number {
    return this.#reader?.buffered ?? 0;
  }

  /** Accepted bytes not yet handed to the kernel. */
  get writeBuffered(): number {
    return this.#writer?.buffered ?? 0;
  }

  /** High-water marks actually reached, for checking that memory stayed bounded. */
  get peaks(): { readBuffered: number; writeBuffered: number } {
    return { readBuffered: this.#peakRead, writeBuffered: this.#writer?.peakBuffered ?? 0 };
  }

  /** Next available bytes (at most `max`) as a view, or null at a clean end of stream. */
  read(max = Number.MAX_SAFE_INTEGER): Promise<Uint8Array | null> {
    if (!Number.isSafeInteger(max) || max <= 0)
      return Promise.reject(badArg(`read(max): ${max} is not a positive integer`));
    return this.#reader ? this.#reader.read(max) : Promise.reject(this.#oneWay('read'));
  }

  /** Exactly `n` bytes (a view when they sit in one chunk), or E_EOF / E_CLOSED / E_CANCELLED saying how many came. */
  readExactly(n: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(n) || n < 0 || n > MAX_EXACT_READ) {
      return Promise.reject(badArg(`readExactly(n): ${n} is not an integer from 0 to ${MAX_EXACT_READ}`));
    }
    return this.#reader ? this.#reader.readExactly(n) : Promise.reject(this.#oneWay('read'));
  }

  /** Up to `max` already-received bytes, without waiting; null when none are buffered. */
  takeBuffered(max = Number.MAX_SAFE_INTEGER): Uint8Array | null {
    return this.#reader?.takeBuffered(max) ?? null;
  }

  /** Returns bytes to the head of the receive queue (they are read again next). */
  unread(bytes: Uint8Array): void {
    this.#requireReader().unread(bytes);
  }

  /**
   * Chunks as they arrive (views, no copy) until the end of the stream; errors are thrown from
   * the loop. Leaving the loop early does not close the channel.
   */
  chunks(max = Number.MAX_SAFE_INTEGER): AsyncIterableIterator<Uint8Array> {
    // A plain iterator, not an async generator: one promise per chunk instead of several.
    const next = (): Promise<IteratorResult<Uint8Array, undefined>> =>
      this.read(max).then((value) => (value === null ? { done: true, value: undefined } : { done: false, value }));
    const it: AsyncIterableIterator<Uint8Array> = {
      next,
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this.chunks();
  }

  /** Queues bytes; resolves once buffered bytes are at or below the write high-water mark. */
  write(bytes: Uint8Array): Promise<void> {
    return this.#writer ? this.#writer.write(bytes) : Promise.reject(this.#oneWay('write'));
  }

  /** Queues several buffers in order (one promise). */
  writev(list: readonly Uint8Array[]): Promise<void> {
    return this.#writer ? this.#writer.writev(list) : Promise.reject(this.#oneWay('write'));
  }

  /** Resolves when every accepted byte has been handed to the kernel. */
  flush(): Promise<void> {
    return this.#writer ? this.#writer.flush() : Promise.reject(this.#oneWay('write'));
  }

  /**
   * Flushes and closes the sending direction (a half-close on sockets; EOF for a pipe; closes a
   * file). Resolves when the peer side is done with it: for `exec:` when the command exited 0.
   */
  async end(): Promise<void> {
    if (!this.#writer) throw this.#oneWay('write');
    await this.#writer.end();
    const err = (await this.#io.checkEnd?.()) ?? null;
    if (err) {
      this.#fail(err);
      throw err;
    }
  }

  /**
   * Aborts: pending and later reads and writes reject with E_CANCELLED, the connection is reset
   * (the peer sees an error, not a clean end), a process is killed, a descriptor closed.
   */
  cancel(reason?: string | Error): void {
    if (this.#outcome) return;
    const why = reason === undefined ? 'cancelled' : typeof reason === 'string' ? reason : reason.message;
    const error = new TransportError('E_CANCELLED', `${this.info.uri}: ${why}`, {
      uri: this.info.uri,
      cause: reason instanceof Error ? reason : undefined,
    });
    this.#outcome = { reason: 'cancelled', error };
    this.#reader?.fail(error, true);
    this.#writer?.fail(error);
    this.#io.abort();
  }

  /** Orderly close: ends the sending side if still open (errors ignored), then releases the transport. */
  async close(): Promise<ChannelCloseInfo> {
    if (this.#writer && !this.#writer.ended && !this.#outcome) await this.end().catch(() => undefined);
    if (!this.#outcome) {
      const error = new TransportError('E_CLOSED', `${this.info.uri}: channel closed locally`, { uri: this.info.uri });
      this.#reader?.fail(error, true);
      this.#writer?.fail(error);
      this.#io.release();
    }
    return this.closed;
  }

  #requireReader(): ReadQueue {
    if (!this.#reader) throw this.#oneWay('read');
    return this.#reader;
  }

  #oneWay(op: 'read' | 'write'): TransportError {
    const dir = op === 'read' ? 'write-only' : 'read-only';
    return new TransportError('E_ONE_WAY', `cannot ${op}: ${this.info.uri} is a ${dir} channel`, {
      uri: this.info.uri,
    });
  }

  #maybeResume(): void {
    if (!this.#paused || !this.#reader) return;
    if (this.#reader.buffered < this.#readHwm / 2) {
      this.#paused = false;
      this.#io.readable?.resume();
    }
  }

  async #onEof(): Promise<void> {
    const err = (await this.#io.checkEof?.()) ?? null;
    if (err) this.#fail(err);
    else this.#reader?.end();
  }

  async #onStreamError(e: unknown): Promise<void> {
    if (this.#outcome) return;
    const err = e instanceof TransportError ? e : await this.#io.explain(e);
    this.#fail(err);
  }

  #fail(error: TransportError): void {
    if (this.#outcome) return;
    this.#outcome = { reason: 'error', error };
    this.#reader?.fail(error, false);
    this.#writer?.fail(error);
    this.#io.abort();
  }
}

function badArg(message: string): TransportError {
  return new TransportError('E_BAD_ARGUMENT', message);
}
