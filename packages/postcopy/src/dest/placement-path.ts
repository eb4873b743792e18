import { MigrationStreamError, RamState } from '@e2k-migrate/migration';
import type { FaultEvent, Userfault } from '@e2k-migrate/native';
import { SUPPORTED_PAGE_SIZES } from './check-advise.js';
import type { FaultStats } from './fault-stats.js';
import { openUserfault, type UserfaultChoice } from './open-userfault.js';
import { PagePlacer } from './page-placer.js';
import type { PageRequester } from './page-requester.js';
import { PostcopyBlock, type PostcopyBlockSource } from './postcopy-block.js';
import { hex, PostcopyProtocolError } from './postcopy-protocol-error.js';
import { PostcopyRamSink, type PostcopyRecordCounts } from './postcopy-ram-sink.js';
import { PostcopyTmpPage } from './postcopy-tmp-page.js';

export interface PlacementPathOptions {
  sources: readonly PostcopyBlockSource[];
  /** The POSTCOPY_ADVISE summary the blocks must match when mirroring the source (a store). */
  mirrorSummary: number | undefined;
  /** Postcopy channels: 1, or 2 with postcopy-preempt. */
  channels: number;
  userfault: UserfaultChoice;
  requester: PageRequester;
  stats: FaultStats;
  counts: PostcopyRecordCounts;
  batchPages?: number;
  /** A fault could not be handled (the driver breaks the connection: the migration pauses). */
  onError(err: Error): void;
  /** Byte offset of the command that made the path (for errors). */
  at: number;
}

/**
 * Everything between a postcopy record and guest memory, built once the blocks are known (first
 * DISCARD or LISTEN): the blocks with their received bitmaps, the userfault backend, the placer,
 * one PostcopyTmpPage and RAM sink per channel, the RamState of the postcopy loaders (channel 0
 * main, 1 preempt) — and the fault handler: each fault is timed, then either resolved at once
 * (its host page was already received) or requested, once per host page.
 */
export class PlacementPath {
  readonly blocks: readonly PostcopyBlock[];
  readonly userfault: Userfault;
  /** Why the cooperative fallback was chosen (undefined for userfaultfd). */
  readonly backendReason: string | undefined;
  readonly placer: PagePlacer;
  readonly tmp: readonly PostcopyTmpPage[];
  readonly sinks: readonly PostcopyRamSink[];
  /** Block list and CONTINUE memory of the postcopy loaders. */
  readonly ram = new RamState();
  private readonly byName = new Map<string, PostcopyBlock>();
  private readonly byRegion = new Map<number, PostcopyBlock>();
  private readonly o: PlacementPathOptions;
  private registered = false;

  constructor(o: PlacementPathOptions) {
    this.o = o;
    const list = o.sources.map((b, i) => new PostcopyBlock(i, b));
    const summary = list.reduce((s, b) => s | b.hostPageSize, 0);
    if (o.mirrorSummary !== undefined && summary !== o.mirrorSummary) {
      throw new PostcopyProtocolError(
        'E_POSTCOPY_ADVISE',
        `the block list's page sizes (${hex(summary)}) differ from the POSTCOPY_ADVISE summary (${hex(o.mirrorSummary)}) (byte offset ${o.at})`,
        { offset: o.at },
      );
    }
    if ((summary & ~SUPPORTED_PAGE_SIZES) !== 0) {
      throw new PostcopyProtocolError('E_POSTCOPY_ADVISE', `unsupported host page sizes ${hex(summary)}`, {
        offset: o.at,
      });
    }
    this.blocks = list;
    for (const b of list) {
      this.byName.set(b.name, b);
      this.byRegion.set(b.memory.handle.id, b);
    }
    const chosen = openUserfault(o.userfault, list, (events) => this.onFaults(events));
    this.userfault = chosen.userfault;
    this.backendReason = chosen.reason;
    this.placer = new PagePlacer({
      userfault: this.userfault,
      onPlaced: (block, host) => {
        o.requester.placed(block, host);
        o.stats.resolve(`${block.index}:${host}`, process.hrtime.bigint());
      },
      ...(o.batchPages ? { batchPages: o.batchPages } : {}),
    });
    const maxPage = list.reduce((m, b) => Math.max(m, b.hostPageSize), 0);
    this.tmp = Array.from({ length: o.channels }, (_, ch) => new PostcopyTmpPage(ch, maxPage));
    this.sinks = this.tmp.map(
      (tmp) =>
        new PostcopyRamSink({
          tmp,
          placer: this.placer,
          requester: o.requester,
          lookup: (b) => list[b.index] as PostcopyBlock,
          counts: o.counts,
        }),
    );
    this.ram.setBlocks({
      total: list.reduce((n, b) => n + b.size, 0),
      blocks: list.map((b) => ({ name: b.name, usedLength: b.size })),
    });
  }

  /** The block named `name`, or a typed error naming the command's offset. */
  block(name: string, at: number): PostcopyBlock {
    const b = this.byName.get(name);
    if (b === undefined) {
      throw new MigrationStreamError(
        'E_BAD_RAM_BLOCK',
        `command at byte offset ${at} names unknown RAM block "${name}"`,
        {
          offset: at,
        },
      );
    }
    return b;
  }

  /** LISTEN: every block registered MISSING (from now on every write into guest RAM is a placement). */
  register(): void {
    for (const b of this.blocks) this.userfault.register(b.memory, { length: b.size });
    this.registered = true;
  }

  /** Drops half-assembled host pages (a pause: their records come again). */
  dropPartial(): void {
    this.placer.flush();
    for (const t of this.tmp) t.reset();
  }

  /** Unregisters every block (blocked threads wake) and closes the userfault; errors go to `log`. */
  release(log?: (line: string) => void): void {
    if (this.registered) {
      this.registered = false;
      for (const b of this.blocks) {
        try {
          this.userfault.unregister(b.memory, 0, b.size);
        } catch (err) {
          log?.(`unregister ${b.name}: ${(err as Error).message}`);
        }
      }
    }
    try {
      this.userfault.close();
    } catch (err) {
      log?.(`closing the userfault: ${(err as Error).message}`);
    }
  }

  /** The fault thread's batch: each fault is timed, then resolved locally or requested (once per host page). */
  private onFaults(events: FaultEvent[]): void {
    try {
      this.placer.flush();
      for (const ev of events) {
        const block = this.byRegion.get(ev.regionId);
        if (block === undefined || !this.registered) continue;
        const host = block.hostPageOf(ev.offset);
        this.o.stats.fault(`${block.index}:${host}`, ev.tid, ev.timestampNs);
        if (block.hostPageReceived(host)) this.placer.resolvePresent(block, host);
        else this.o.requester.request(block, host);
      }
    } catch (err) {
      this.o.onError(err as Error);
    }
  }
}
