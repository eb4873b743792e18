import type { ByteWriter } from '@e2k-migrate/vmstate';

/**
 * Where a {@link MigrationFile}'s buffers go. A transports `Channel` fits: `write` queues the
 * bytes (by reference when large) and resolves once the unsent backlog is under its high-water
 * mark; `flush` resolves when every byte was handed to the kernel.
 */
export interface MigrationSink {
  write(bytes: Uint8Array): Promise<void>;
  flush(): Promise<void>;
  /** Bytes accepted and not yet handed to the kernel. */
  readonly writeBuffered: number;
  /**
   * Bytes accepted so far. With it, a buffer is known to be released once
   * `bytesWritten - writeBuffered` passed its end, and output buffers are reused.
   */
  readonly bytesWritten?: number;
}

/** Default size of one output buffer. */
export const MIGRATION_FILE_BUFFER = 1 << 20;
/** Largest record a caller may reserve room for with {@link MigrationFile.reserve}. */
export const MAX_RESERVE = 64 << 10;

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * The outgoing migration stream (QEMU's QEMUFile): records are written synchronously into a large
 * buffer that goes to the sink whole when it fills or on {@link flush}, so the hot path makes no
 * call per page. Each handed-over buffer is a fresh allocation, never reused, because the sink
 * may send it by reference.
 *
 * Hot paths may write into {@link buf} directly: `reserve(n)` first, then write at `pos` and
 * advance it. Callers that produce many buffers check {@link congested} and `await drain()`.
 *
 * Buffers are recycled once the sink reports them handed to the kernel (its accepted minus
 * unsent byte counts passed their end): fresh memory costs a page fault per 4 KiB, which at
 * loopback speed is as much as the copy itself.
 */
export class MigrationFile {
  /** The current buffer; valid bytes are `buf[0, pos)`. */
  buf: Buffer;
  view: DataView;
  pos = 0;
  private readonly sink: MigrationSink;
  private readonly bufferBytes: number;
  private readonly highWaterMark: number;
  private emitted = 0;
  private lastWrite: Promise<void> = RESOLVED;
  private failure: Error | undefined;
  /** Buffers handed to the sink, with the sink's accepted-byte count at their end. */
  private readonly inFlight: { buf: Buffer; end: number }[] = [];
  private readonly free: Buffer[] = [];

  constructor(sink: MigrationSink, opts: { bufferBytes?: number; highWaterMark?: number } = {}) {
    this.sink = sink;
    this.bufferBytes = Math.max(opts.bufferBytes ?? MIGRATION_FILE_BUFFER, MAX_RESERVE);
    this.highWaterMark = opts.highWaterMark ?? 4 * this.bufferBytes;
    this.buf = Buffer.allocUnsafe(this.bufferBytes);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  /** Every byte written so far (QEMU's qemu_file_total_transferred, buffered bytes included). */
  get bytesWritten(): number {
    return this.emitted + this.pos;
  }

  /** The first write error, if the sink failed. */
  get error(): Error | undefined {
    return this.failure;
  }

  /** The sink holds more than its high-water mark: `await drain()` before producing more. */
  get congested(): boolean {
    return this.sink.writeBuffered > this.highWaterMark;
  }

  /** Makes room for `n` contiguous bytes at `pos` (n ≤ 64 KiB). */
  reserve(n: number): void {
    if (this.pos + n > this.buf.length) this.emit();
  }

  u8(v: number): this {
    this.reserve(1);
    this.buf[this.pos++] = v;
    return this;
  }

  be16(v: number): this {
    this.reserve(2);
    this.view.setUint16(this.pos, v);
    this.pos += 2;
    return this;
  }

  be32(v: number): this {
    this.reserve(4);
    this.view.setUint32(this.pos, v);
    this.pos += 4;
    return this;
  }

  /** A 64-bit big-endian value below 2^53. */
  be64(v: number): this {
    this.reserve(8);
    this.view.setUint32(this.pos, Math.floor(v / 0x1_0000_0000));
    this.view.setUint32(this.pos + 4, v >>> 0);
    this.pos += 8;
    return this;
  }

  /** Bytes of any length (copied). */
  bytes(src: Uint8Array): this {
    let done = 0;
    while (done < src.length) {
      if (this.pos === this.buf.length) this.emit();
      const n = Math.min(src.length - done, this.buf.length - this.pos);
      this.buf.set(src.subarray(done, done + n), this.pos);
      this.pos += n;
      done += n;
    }
    return this;
  }

  /** Appends what a wire codec encoded into a ByteWriter (`encodeX(..., new ByteWriter())`). */
  put(w: ByteWriter): this {
    return this.bytes(w.written());
  }

  /** Hands the current buffer to the sink (without waiting) and starts a new one. */
  emit(): void {
    this.throwIfFailed();
    if (this.pos === 0) return;
    const chunk = this.buf.subarray(0, this.pos);
    const full = this.buf;
    this.emitted += this.pos;
    this.pos = 0;
    this.lastWrite = this.sink.write(chunk).catch((e: unknown) => {
      this.failure ??= e instanceof Error ? e : new Error(String(e));
    });
    const accepted = this.sink.bytesWritten;
    if (accepted !== undefined) this.inFlight.push({ buf: full, end: accepted });
    this.buf = this.nextBuffer();
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  /** A released buffer if there is one, else a new one. */
  private nextBuffer(): Buffer {
    const accepted = this.sink.bytesWritten;
    if (accepted !== undefined) {
      const released = accepted - this.sink.writeBuffered;
      while (this.inFlight.length > 0 && (this.inFlight[0] as { end: number }).end <= released) {
        this.free.push((this.inFlight.shift() as { buf: Buffer }).buf);
      }
    }
    return this.free.pop() ?? Buffer.allocUnsafe(this.bufferBytes);
  }

  /** Waits until the sink's backlog is under its high-water mark (backpressure). */
  async drain(): Promise<void> {
    await this.lastWrite;
    this.throwIfFailed();
  }

  /** Hands everything over and waits until the sink has passed it to the kernel (qemu_fflush). */
  async flush(): Promise<void> {
    this.emit();
    await this.lastWrite;
    this.throwIfFailed();
    try {
      await this.sink.flush();
    } catch (e) {
      this.failure ??= e as Error;
    }
    this.throwIfFailed();
  }

  /** Throws the sink's first error, if any. */
  throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  /** Marks the file failed (e.g. cancelled): later writes throw `err`. */
  fail(err: Error): void {
    this.failure ??= err;
  }
}
