/**
 * One proxied TCP connection, shaped in the client → target direction (the migration stream):
 * pause/resume, a cut after an exact byte count, bit flips at an offset, a bandwidth cap that
 * pushes back on the client, and callbacks at the first occurrence of a byte pattern. The other
 * direction (the return path) is forwarded as is. Used by {@link startTcpProxy}.
 */
import type { Socket } from 'node:net';

/** Past this many bytes held (paused, or waiting for the upstream connection) the client is not read. */
const MAX_HELD = 64 << 20;
/** With a bandwidth cap, at most this much is read ahead of what was forwarded. */
const THROTTLE_HELD = 256 << 10;
const TICK_MS = 5;

/**
 * How a cut ends the connection. `reset`: both sockets are reset once the forwarded bytes were
 * handed to the kernel (a reset may still drop bytes the target had not read). `exact`: the
 * target reads exactly the forwarded bytes and then an end of stream; the client is reset.
 */
export type CutMode = 'reset' | 'exact';

interface Matcher {
  pattern: Buffer;
  extra: number;
  /** Absolute offset just past the pattern and its `extra` bytes; those bytes. */
  fire(end: number, extra: Buffer): void;
}

export class ShapedPipe {
  readonly client: Socket;
  private upstream: Socket | undefined;
  private readonly mode: CutMode;
  /** Called once when this pipe is cut (the proxy may cut the others). */
  onCut: (() => void) | undefined;
  private fwd = 0;
  private rcvd = 0;
  private paused = false;
  private cutAt = Number.POSITIVE_INFINITY;
  private isCut = false;
  private rate = 0;
  private budget = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly corruptions = new Map<number, number>();
  private readonly held: Buffer[] = [];
  private heldBytes = 0;
  private readonly waiters: { bytes: number; resolve: () => void }[] = [];
  private matchers: Matcher[] = [];
  private scanTail: Buffer = Buffer.alloc(0);

  constructor(client: Socket, mode: CutMode) {
    this.client = client;
    this.mode = mode;
    client.on('data', (d: Buffer) => this.onData(d));
  }

  /** Bytes forwarded client → target so far. */
  get forwarded(): number {
    return this.fwd;
  }

  /** Bytes read from the client so far (forwarded or held). */
  get received(): number {
    return this.rcvd;
  }

  /** Bytes read from the client and not forwarded (yet). */
  get holding(): number {
    return this.heldBytes;
  }

  get cut(): boolean {
    return this.isCut;
  }

  /** The connection to the target is up: held bytes start flowing. */
  attach(upstream: Socket): void {
    this.upstream = upstream;
    if (this.isCut) {
      this.endUpstream();
      return;
    }
    this.flushHeld();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.flushHeld();
  }

  /** Forward exactly `bytes` bytes in total, then cut (at once if already past). */
  cutAfter(bytes: number): void {
    this.cutAt = Math.max(bytes, this.fwd);
    if (this.fwd >= this.cutAt) this.doCut();
    else this.flushHeld();
  }

  corruptAt(offset: number, xor: number): void {
    this.corruptions.set(offset, xor);
  }

  /** Forward at most `bytesPerSecond` (0 = unlimited), reading no further ahead than 256 KiB. */
  throttle(bytesPerSecond: number): void {
    this.rate = bytesPerSecond;
    clearInterval(this.timer);
    this.timer = undefined;
    if (bytesPerSecond > 0) {
      this.budget = 0;
      let last = performance.now();
      this.timer = setInterval(() => {
        const now = performance.now();
        this.budget = Math.min(this.budget + ((now - last) / 1000) * this.rate, this.rate);
        last = now;
        this.flushHeld();
      }, TICK_MS);
    } else this.flushHeld();
  }

  /**
   * Calls `fire(end, extra)` at the first occurrence of `pattern` in the client → target stream,
   * with the `extra` bytes that follow it and the absolute offset just past them — synchronously,
   * before any byte after them is forwarded (so `fire` may arm {@link cutAfter} at or past `end`).
   */
  onMatch(pattern: Uint8Array, extra: number, fire: (end: number, extra: Buffer) => void): void {
    this.matchers.push({ pattern: Buffer.from(pattern), extra, fire });
  }

  waitForBytes(bytes: number, timeoutMs = 30_000): Promise<void> {
    if (this.fwd >= bytes) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`proxy: only ${this.fwd} of ${bytes} bytes within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.waiters.push({
        bytes,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  /** Cuts now, at the bytes forwarded so far (held bytes are dropped). */
  cutNow(): void {
    this.cutAfter(this.fwd);
  }

  close(): void {
    clearInterval(this.timer);
    this.client.destroy();
    this.upstream?.destroy();
  }

  private onData(d: Buffer): void {
    if (this.isCut) return;
    const base = this.rcvd;
    this.rcvd += d.length;
    if (this.matchers.length > 0) this.scan(d, base);
    if (this.paused || this.held.length > 0 || this.rate > 0 || this.upstream === undefined) {
      this.held.push(d);
      this.heldBytes += d.length;
      if (this.heldBytes >= (this.rate > 0 ? THROTTLE_HELD : MAX_HELD)) this.client.pause();
      return;
    }
    this.send(d);
  }

  private scan(d: Buffer, base: number): void {
    const buf = this.scanTail.length > 0 ? Buffer.concat([this.scanTail, d]) : d;
    const bufBase = base - this.scanTail.length;
    let keepFrom = buf.length;
    for (const m of [...this.matchers]) {
      const i = buf.indexOf(m.pattern);
      const need = m.pattern.length + m.extra;
      if (i >= 0 && i + need <= buf.length) {
        this.matchers.splice(this.matchers.indexOf(m), 1);
        m.fire(bufBase + i + need, Buffer.from(buf.subarray(i + m.pattern.length, i + need)));
      } else if (i >= 0) keepFrom = Math.min(keepFrom, i);
      else keepFrom = Math.min(keepFrom, Math.max(0, buf.length - m.pattern.length + 1));
    }
    this.scanTail = this.matchers.length > 0 ? Buffer.from(buf.subarray(keepFrom)) : Buffer.alloc(0);
  }

  private flushHeld(): void {
    while (!this.paused && this.held.length > 0 && this.upstream !== undefined && !this.isCut) {
      let c = this.held[0] as Buffer;
      if (this.rate > 0) {
        if (this.budget < 1) break;
        if (c.length > this.budget) {
          const n = Math.floor(this.budget);
          this.held[0] = c.subarray(n);
          c = c.subarray(0, n);
        } else this.held.shift();
        this.budget -= c.length;
      } else this.held.shift();
      this.heldBytes -= c.length;
      this.send(c);
    }
    if (!this.isCut && this.heldBytes < (this.rate > 0 ? THROTTLE_HELD : MAX_HELD)) this.client.resume();
  }

  private send(chunk: Buffer): void {
    let c = chunk;
    if (this.fwd + c.length > this.cutAt) c = c.subarray(0, Math.max(0, this.cutAt - this.fwd));
    if (c.length > 0) {
      for (const [off, xor] of this.corruptions) {
        if (off >= this.fwd && off < this.fwd + c.length) {
          c = Buffer.from(c);
          c[off - this.fwd] = (c[off - this.fwd] as number) ^ xor;
          this.corruptions.delete(off);
        }
      }
      this.upstream?.write(c);
      this.fwd += c.length;
      for (const w of [...this.waiters]) {
        if (this.fwd >= w.bytes) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    }
    if (this.fwd >= this.cutAt) this.doCut();
  }

  private doCut(): void {
    if (this.isCut) return;
    this.isCut = true;
    clearInterval(this.timer);
    this.held.length = 0;
    this.heldBytes = 0;
    if (this.mode === 'exact') {
      this.client.resetAndDestroy();
      if (this.upstream) this.endUpstream();
    } else {
      const up = this.upstream;
      const resetBoth = () => {
        this.client.resetAndDestroy();
        up?.resetAndDestroy();
      };
      // let the forwarded bytes reach the target before the reset
      if (up && up.writableLength > 0) up.once('drain', resetBoth);
      else setImmediate(resetBoth);
    }
    this.onCut?.();
  }

  /** The target reads what was forwarded, then an end of stream; the socket closes once it is done. */
  private endUpstream(): void {
    const up = this.upstream as Socket;
    up.end();
    up.on('end', () => up.destroy());
    up.resume();
  }
}
