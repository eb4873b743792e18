import type { MigrationFile, PageRequest, PostcopyIo, PostcopySaveHandler, SaveContext } from '@e2k-migrate/migration';
import type { BlockState, RamSaveHandler, RamSaveState } from '@e2k-migrate/migration-ram';
import { canonicalizeHostPages, writeDiscards } from './discard.js';
import { PostcopySourceError } from './errors.js';
import { type HostPageRef, PageRequestQueue } from './page-request-queue.js';
import { dirtyFromReceived } from './recv-bitmap.js';

/** QEMU's MAX_WAIT: a postcopy iteration sends for at most this long (checked every 64 host pages). */
export const POSTCOPY_ITERATE_MAX_WAIT_MS = 50;
/** Target pages sent between two looks at the return path (a request can break a huge page here). */
export const POSTCOPY_YIELD_PAGES = 64;
/** Bytes sent between two looks at the return path in the page loop. */
const YIELD_BYTES = 256 << 10;

/** QEMU 7.2's RAM channels: the main stream, and the postcopy-preempt connection. */
type RamChannel = 'main' | 'preempt';

export interface PostcopyRamSourceOptions {
  /**
   * `x-postcopy-preempt-break-huge` (QEMU 7.2 default true): with postcopy-preempt, a request
   * arriving while a huge page is being sent on the main channel suspends that page.
   */
  breakHuge?: boolean;
}

/** The host page suspended on the main channel by a request (QEMU's postcopy_preempt_state). */
interface Suspended {
  block: number;
  /** The next target page to look at. */
  page: number;
}

/**
 * The RAM side of postcopy on the source (QEMU 7.2 ram.c / postcopy-ram.c): discard computation
 * with host-page canonicalisation, the page-request queue, and the postcopy page loop —
 * requested host pages first (on the preempt channel when there is one, flushed after each),
 * the background scan resuming right after the last page sent, host pages always whole on one
 * channel. With postcopy-preempt and huge pages, a request arriving while a huge page is half
 * sent on the main channel suspends it; the request goes on the preempt channel; the suspended
 * page is finished on the main channel afterwards — also when it is the page requested.
 * No XBZRLE, no multifd; ZERO records for zero pages.
 */
export class PostcopyRamSource implements PostcopySaveHandler {
  private readonly ram: RamSaveHandler;
  private readonly breakHuge: boolean;
  private queue: PageRequestQueue | undefined;
  /** The background scan position (QEMU's last_seen_block / last_page). */
  private pos = { block: 0, page: 0 };
  private channel: RamChannel = 'main';
  private suspended: Suspended | undefined;
  /** Statistics for tests and `x-` fields: host pages sent per way. */
  readonly sent = { requested: 0, requestedOnPreempt: 0, background: 0, suspensions: 0 };

  constructor(ram: RamSaveHandler, opts: PostcopyRamSourceOptions = {}) {
    this.ram = ram;
    this.breakHuge = opts.breakHuge ?? true;
  }

  extras(): Record<`x-${string}`, unknown> {
    return {
      'x-postcopy-requested-host-pages': this.sent.requested,
      'x-postcopy-preempt-host-pages': this.sent.requestedOnPreempt,
      'x-postcopy-background-host-pages': this.sent.background,
      'x-postcopy-break-huge': this.sent.suspensions,
    };
  }

  pageSizeSummary(): number {
    return this.ram.pageSizeSummary();
  }

  get hasRequests(): boolean {
    return (this.queue?.length ?? 0) > 0;
  }

  private state(): RamSaveState {
    try {
      return this.ram.saveState;
    } catch (err) {
      throw new PostcopySourceError('E_NOT_STARTED', 'postcopy: the ram handler has no migration set up', {
        cause: err,
      });
    }
  }

  private requests(s: RamSaveState): PageRequestQueue {
    this.queue ??= new PageRequestQueue(
      s.blocks.map((b) => ({ idstr: b.bytes.idstr, size: b.bytes.size, hostPageSize: b.bytes.hostPageSize })),
      s.tps,
    );
    return this.queue;
  }

  sendDiscards(ctx: SaveContext): number {
    const s = this.state();
    this.requests(s);
    s.sync(ctx);
    s.inPostcopy = true;
    s.counters.inPostcopy = true;
    for (const b of s.blocks) canonicalizeHostPages(b.dirty.bitmap, b.hostPages);
    s.recountDirty();
    let ranges = 0;
    for (const b of s.blocks) ranges += writeDiscards(ctx.file, b.bytes.idstr, b.dirty.bitmap, s.tps);
    // As QEMU: the scan restarts at the first block, so it never resumes inside a host page.
    this.restart(s);
    return ranges;
  }

  pending(): number {
    const s = this.state();
    return s.dirtyPages * s.tps;
  }

  requestPages(req: PageRequest): void {
    const s = this.state();
    this.requests(s).push(req);
    s.counters.postcopyRequests++;
  }

  async iterate(ctx: SaveContext, io: PostcopyIo): Promise<boolean> {
    return this.sendLoop(ctx, io, true);
  }

  async complete(ctx: SaveContext, io: PostcopyIo): Promise<void> {
    await this.sendLoop(ctx, io, false);
  }

  recvBitmapBlocks(): string[] {
    return this.state().blocks.map((b) => b.bytes.idstr);
  }

  applyReceivedBitmap(block: string, bitmap: Uint8Array): void {
    const s = this.state();
    const b = s.blocks.find((x) => x.bytes.idstr === block);
    if (!b) {
      throw new PostcopySourceError('E_BAD_RECV_BITMAP', `RECV_BITMAP names an unknown RAM block "${block}"`, {
        block,
      });
    }
    dirtyFromReceived(b.dirty.bitmap, bitmap, block);
    s.recountDirty();
  }

  resumePrepare(): void {
    const s = this.state();
    this.requests(s).clear();
    s.recountDirty();
    this.restart(s);
  }

  channelsChanged(): void {
    this.state().rec.resetLastBlock();
    this.channel = 'main';
  }

  /** Scan from the first block, no suspended page, the next record names its block. */
  private restart(s: RamSaveState): void {
    this.pos = { block: 0, page: 0 };
    this.suspended = undefined;
    this.channel = 'main';
    s.rec.resetLastBlock();
    s.resetScan();
  }

  /**
   * ram_save_iterate / ram_save_complete in postcopy: host pages until nothing is left (→ true),
   * or — when `bounded` — until the rate-limit window is used up with no request waiting, or
   * 50 ms passed. Ends the section body with EOS on the main channel.
   */
  private async sendLoop(ctx: SaveContext, io: PostcopyIo, bounded: boolean): Promise<boolean> {
    const s = this.state();
    const q = this.requests(s);
    const f = ctx.file;
    const t0 = ctx.now();
    let n = 0;
    let done = false;
    let mainBefore = f.bytesWritten;
    let preemptBefore = io.preempt?.bytesWritten ?? 0;
    const account = () => {
      const p = io.preempt?.bytesWritten ?? 0;
      s.counters.addTransferred(f.bytesWritten - mainBefore + (p - preemptBefore), false);
      mainBefore = f.bytesWritten;
      preemptBefore = p;
    };
    try {
      for (;;) {
        if (bounded && q.length === 0 && f.bytesWritten >= ctx.rateLimitEnd()) break;
        if (!(await this.saveNextHostPage(s, q, f, io))) {
          done = true;
          break;
        }
        n++;
        if (bounded && (n & 63) === 0 && ctx.now() - t0 > POSTCOPY_ITERATE_MAX_WAIT_MS) break;
        const p = io.preempt?.bytesWritten ?? 0;
        if (f.bytesWritten - mainBefore + (p - preemptBefore) >= YIELD_BYTES) {
          account();
          await io.yield();
        }
        if (f.congested) await f.drain();
      }
    } finally {
      account();
    }
    s.rec.eos(f);
    s.counters.addTransferred(8, false);
    mainBefore = f.bytesWritten;
    return done;
  }

  /**
   * ram_find_and_save_block: the next requested host page (a request hitting the suspended page
   * resumes that one on the main channel), else the suspended page, else the next dirty host page
   * from the scan position. Returns false when nothing is left.
   */
  private async saveNextHostPage(s: RamSaveState, q: PageRequestQueue, f: MigrationFile, io: PostcopyIo) {
    for (;;) {
      const req = q.shift();
      if (req === undefined) break;
      const b = s.blocks[req.block] as BlockState;
      const sus = this.suspended;
      if (sus && sus.block === req.block && hostStart(b, sus.page) === req.page) {
        this.suspended = undefined;
        await this.saveHostPage(s, b, sus.page, 'main', true, f, io);
        return true;
      }
      if (!hostPageDirty(b, req.page)) continue; // already sent: the destination gets it from the stream
      const ch: RamChannel = io.preempt ? 'preempt' : 'main';
      await this.saveHostPage(s, b, req.page, ch, true, f, io);
      this.sent.requested++;
      if (ch === 'preempt') this.sent.requestedOnPreempt++;
      // The background scan continues right after the requested page.
      this.pos = { block: req.block, page: Math.min(req.page + b.hostPages, b.pages) };
      return true;
    }
    const sus = this.suspended;
    if (sus) {
      this.suspended = undefined;
      await this.saveHostPage(s, s.blocks[sus.block] as BlockState, sus.page, 'main', false, f, io);
      return true;
    }
    const next = this.findDirty(s);
    if (!next) return false;
    await this.saveHostPage(s, s.blocks[next.block] as BlockState, next.page, 'main', false, f, io);
    this.sent.background++;
    return true;
  }

  /** find_dirty_block: the next dirty target page from the scan position, wrapping once. */
  private findDirty(s: RamSaveState): HostPageRef | undefined {
    if (s.dirtyPages === 0) return undefined;
    const nb = s.blocks.length;
    for (let k = 0; k <= nb; k++) {
      const bi = (this.pos.block + k) % nb;
      const b = s.blocks[bi] as BlockState;
      const from = k === 0 ? this.pos.page : 0;
      const p = b.dirty.bitmap.nextSet(from);
      if (p >= 0) return { block: bi, page: p };
    }
    return undefined;
  }

  /**
   * ram_save_host_page: every dirty target page from `page` to the end of its host page, on one
   * channel. On the main channel a huge page may be suspended by a request (break-huge); the
   * position is saved and the loop returns early.
   */
  private async saveHostPage(
    s: RamSaveState,
    b: BlockState,
    page: number,
    ch: RamChannel,
    requested: boolean,
    main: MigrationFile,
    io: PostcopyIo,
  ): Promise<void> {
    const out = ch === 'preempt' ? (io.preempt as MigrationFile) : main;
    if (ch !== this.channel) {
      // 7.2 keeps one "last sent block": a channel switch makes the next record name its block.
      s.rec.resetLastBlock();
      this.channel = ch;
    }
    const end = Math.min(hostStart(b, page) + b.hostPages, b.pages);
    const canBreak = ch === 'main' && !requested && this.breakHuge && io.preempt !== undefined && b.hostPages > 1;
    const bm = b.dirty.bitmap;
    let p = page;
    let since = 0;
    while (p >= 0 && p < end) {
      if (since >= POSTCOPY_YIELD_PAGES) {
        since = 0;
        // a congested channel makes a huge page take real time, as QEMU's blocking writes do
        if (out.congested) await out.drain();
        if (canBreak) {
          await io.yield();
          if (this.queue && this.queue.length > 0) {
            this.suspended = { block: b.index, page: p };
            this.sent.suspensions++;
            return;
          }
        }
      }
      s.sendDirtyPage(out, b, p);
      since++;
      p = bm.nextSet(p + 1);
    }
    this.pos = { block: b.index, page: end };
    if (requested) out.emit();
  }
}

function hostStart(b: BlockState, page: number): number {
  return page - (page % b.hostPages);
}

/** Some target page of the host page starting at `first` is still to send. */
function hostPageDirty(b: BlockState, first: number): boolean {
  const p = b.dirty.bitmap.nextSet(first);
  return p >= 0 && p < first + b.hostPages;
}
