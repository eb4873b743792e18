import { TransportError } from '@e2k-migrate/transports';
import { MigrationStreamError } from '../errors.js';
import { forEachReturnPathMessage } from '../store/return-path-reader.js';
import type { RpMessage } from '../wire/return-path.js';

/** A page request of the destination (REQ_PAGES_ID / REQ_PAGES), block name resolved. */
export interface PageRequest {
  block: string;
  /** Byte offset in the block. */
  start: number;
  /** Bytes (the block's host page size, or a multiple). */
  length: number;
  /** Offset of the message on the return path (for errors). */
  rpOffset: number;
}

export interface SourceReturnPathOptions {
  /** Every page request, in order, as soon as it is read. */
  onRequest?(req: PageRequest): void;
  /** The return path failed or ended without SHUT (after `error` was set). */
  onFailure?(err: Error): void;
}

/**
 * The source's return-path reader (QEMU's source_return_path_thread): a task reading the
 * destination's messages from the main channel's other direction — PONG, SHUT, REQ_PAGES_ID /
 * REQ_PAGES (handed to `onRequest` with the block name of the last REQ_PAGES_ID), RECV_BITMAP with
 * its bitmap blob and RESUME_ACK during a postcopy recovery. A malformed message is a typed
 * MigrationStreamError; the input ending without SHUT is a TransportError `E_EOF` (the peer is
 * gone: a postcopy source pauses on it).
 */
export class SourceReturnPath {
  /** PONG values in arrival order. */
  readonly pongs: number[] = [];
  private shutValue: number | undefined;
  private failure: Error | undefined;
  private lastBlock: string | undefined;
  private readonly bitmaps = new Map<string, Uint8Array>();
  private resumeAcked = false;
  private readonly waiters = new Set<() => void>();
  private readonly o: SourceReturnPathOptions;
  /** Settles (never rejects) when the reader stopped: SHUT, end of input or failure. */
  readonly finished: Promise<void>;

  constructor(input: AsyncIterable<Uint8Array>, opts: SourceReturnPathOptions = {}) {
    this.o = opts;
    this.finished = forEachReturnPathMessage(input, (m, at) => this.onMessage(m, at)).then(
      () => {
        if (this.shutValue === undefined) {
          this.setFailure(new TransportError('E_EOF', 'the destination closed the return path without SHUT'));
        }
        this.wake();
      },
      (err: unknown) => {
        this.setFailure(err instanceof Error ? err : new Error(String(err)));
        this.wake();
      },
    );
  }

  /** The first failure (malformed message, I/O error, end without SHUT), if any. */
  get error(): Error | undefined {
    return this.failure;
  }

  /** The SHUT value once received. */
  get shut(): number | undefined {
    return this.shutValue;
  }

  /** Throws the failure, if the return path failed. */
  throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  /** Resolves with the SHUT value (0 = the destination loaded everything); rejects on failure or timeout. */
  async waitShut(timeoutMs: number): Promise<number> {
    await this.until(() => this.shutValue !== undefined, timeoutMs, 'SHUT');
    return this.shutValue as number;
  }

  /** The RECV_BITMAP blob for `block` (recovery); rejects on failure or timeout. */
  async recvBitmap(block: string, timeoutMs: number): Promise<Uint8Array> {
    await this.until(() => this.bitmaps.has(block), timeoutMs, `RECV_BITMAP for "${block}"`);
    const b = this.bitmaps.get(block) as Uint8Array;
    this.bitmaps.delete(block);
    return b;
  }

  /** Resolves on RESUME_ACK(1); rejects on failure or timeout. */
  async resumeAck(timeoutMs: number): Promise<void> {
    await this.until(() => this.resumeAcked, timeoutMs, 'RESUME_ACK');
  }

  /** Waits until `ready()` or a failure; a SHUT or a failure wakes every waiter. */
  private async until(ready: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if (ready()) return;
      this.throwIfFailed();
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new MigrationStreamError('E_PEER_FAILED', `the destination sent no ${what} within ${timeoutMs} ms`, {
          channel: 'return-path',
          record: `return-path ${what}`,
        });
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.waiters.add(done);
      });
    }
  }

  private onMessage(m: RpMessage, at: number): void {
    switch (m.type) {
      case 'PONG':
        this.pongs.push(m.value);
        return;
      case 'SHUT':
        this.shutValue = m.value;
        if (m.value !== 0) {
          this.setFailure(
            new MigrationStreamError(
              'E_PEER_FAILED',
              `the destination reported failure on the return path (SHUT ${m.value})`,
              {
                channel: 'return-path',
                record: 'return-path SHUT',
                offset: at,
              },
            ),
          );
        }
        this.wake();
        return;
      case 'REQ_PAGES_ID':
        this.lastBlock = m.block;
        this.o.onRequest?.({ block: m.block, start: m.start, length: m.length, rpOffset: at });
        return;
      case 'REQ_PAGES':
        if (this.lastBlock === undefined) {
          throw new MigrationStreamError(
            'E_BAD_RP_MESSAGE',
            `return-path REQ_PAGES at byte offset ${at} names no block and no REQ_PAGES_ID came before it`,
            { channel: 'return-path', record: 'return-path REQ_PAGES', offset: at },
          );
        }
        this.o.onRequest?.({ block: this.lastBlock, start: m.start, length: m.length, rpOffset: at });
        return;
      case 'RECV_BITMAP':
        this.bitmaps.set(m.block, m.bitmap);
        this.wake();
        return;
      case 'RESUME_ACK':
        this.resumeAcked = true;
        this.wake();
        return;
    }
  }

  private setFailure(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.o.onFailure?.(err);
  }

  private wake(): void {
    const list = [...this.waiters];
    this.waiters.clear();
    for (const w of list) w();
  }
}
