import {
  type ExtraChannel,
  type IncomingPostcopy,
  loadRamBody,
  type MainLink,
  type MigCommand,
  MigrationStreamError,
  type PostcopyPhase,
  RAM_SECTION_VERSION,
  type SectionContext,
  type SectionLoader,
} from '@e2k-migrate/migration';
import { applyDiscard } from './apply-discard.js';
import { checkAdvise } from './check-advise.js';
import { FaultStats, type LatencySummary } from './fault-stats.js';
import type { UserfaultChoice } from './open-userfault.js';
import { PageRequester } from './page-requester.js';
import { PlacementPath } from './placement-path.js';
import type { PostcopyBlock, PostcopyBlockSource } from './postcopy-block.js';
import { stepPhase } from './postcopy-phase.js';
import { hex, PostcopyProtocolError } from './postcopy-protocol-error.js';
import { postcopyQuery } from './postcopy-query.js';
import type { PostcopyRamSink, PostcopyRecordCounts } from './postcopy-ram-sink.js';
import { PreemptChannel } from './preempt-channel.js';

export interface PostcopyIncomingOptions {
  /**
   * The RAM blocks. Read at POSTCOPY_ADVISE unless `mirror` (then at the first DISCARD or LISTEN:
   * a store learns its blocks from the stream's block list).
   */
  blocks(): readonly PostcopyBlockSource[];
  /** Mirror the source's page sizes (a store) instead of comparing them with ours at ADVISE. */
  mirror?: boolean;
  /** Capability postcopy-preempt: a second connection carries urgent pages. */
  preempt?: boolean;
  /** Capability postcopy-blocktime: query-migrate shows postcopy-blocktime / postcopy-vcpu-blocktime. */
  blocktime?: boolean;
  /** `auto` (default): userfaultfd when the kernel gives one, else cooperative (reported as such). */
  userfault?: UserfaultChoice;
  /** Kernel thread ids of the vCPUs, index = vCPU (blocktime per vCPU). */
  vcpuTids?(): readonly number[];
  /** 4 KiB pages per install batch (default 64). */
  batchPages?: number;
  log?(line: string): void;
}

/**
 * The postcopy destination (QEMU's postcopy-ram.c "postcopy channels on the dest node", spec §9):
 * ADVISE checks page sizes; DISCARD drops pages that were sent and then dirtied again; LISTEN
 * registers every RAM block MISSING with userfaultfd (after the discards: from then on every
 * write into guest RAM is a UFFDIO_COPY) and switches the `ram` loader to the per-channel
 * PostcopyTmpPage path; RUN lets the guest run and fault; each fault becomes one request per host
 * page on the return path; the preempt channel has its own TmpPage; recovery answers RECV_BITMAP
 * and POSTCOPY_RESUME. Nothing here reads guest RAM.
 */
export class PostcopyIncoming implements IncomingPostcopy {
  readonly preempt: boolean;
  private readonly o: PostcopyIncomingOptions;
  private ph: PostcopyPhase = 'none';
  private advised: number | undefined;
  private path: PlacementPath | undefined;
  private readonly requester = new PageRequester();
  private readonly stats: FaultStats;
  private readonly counts: PostcopyRecordCounts = { normal: 0, duplicate: 0 };
  private link: MainLink | undefined;
  private recovery = false;
  private paused = false;
  private discarded = 0;
  private readonly preemptChannel: PreemptChannel;

  constructor(opts: PostcopyIncomingOptions) {
    this.o = opts;
    this.preempt = opts.preempt === true;
    this.stats = new FaultStats(opts.vcpuTids ?? (() => []));
    this.preemptChannel = new PreemptChannel((err) => this.link?.fail(err));
  }

  get phase(): PostcopyPhase {
    return this.ph;
  }

  /** The RAM blocks, once known. */
  get blocks(): readonly PostcopyBlock[] {
    return this.path?.blocks ?? [];
  }

  /** `uffd` or `cooperative` once chosen (at the first DISCARD or LISTEN). */
  get backend(): 'uffd' | 'cooperative' | undefined {
    return this.path?.userfault.backend;
  }

  /** Exact p50 / p90 / p99 / max of the remote-fault latencies so far (`x-query-postcopy-latency`). */
  latencySummary(): LatencySummary {
    return this.stats.latencySummary();
  }

  /** The per-fault latencies (ns) kept so far: fault read → host page placed (a copy). */
  latencySamples(): Float64Array {
    return this.stats.latencySamples();
  }

  /** Outstanding page requests, in order (diagnostics and tests). */
  outstandingRequests(): { block: string; hostOffset: number }[] {
    return this.requester.list();
  }

  async command(c: MigCommand, at: number): Promise<void> {
    switch (c.cmd) {
      case 'POSTCOPY_ADVISE': {
        const local = this.o.mirror ? undefined : pageSizeSummary(this.o.blocks());
        this.ph = stepPhase(this.ph, 'advise', at);
        this.advised = checkAdvise(c, at, local);
        return;
      }
      case 'POSTCOPY_RAM_DISCARD': {
        this.ph = stepPhase(this.ph, 'discard', at);
        const path = this.openPath(at);
        this.discarded += applyDiscard(path.userfault, path.block(c.block, at), c.ranges, at);
        return;
      }
      case 'POSTCOPY_LISTEN': {
        this.ph = stepPhase(this.ph, 'listen', at);
        const path = this.openPath(at);
        path.register();
        path.ram.resetLast();
        this.o.log?.(`postcopy listening: ${path.blocks.length} block(s) registered (${path.userfault.backend})`);
        if (this.preempt) this.preemptChannel.start(path.ram, path.sinks[1] as PostcopyRamSink);
        return;
      }
      case 'POSTCOPY_RUN':
        this.ph = stepPhase(this.ph, 'run', at);
        return;
      case 'RECV_BITMAP': {
        const block = this.expectRecovery(at, 'RECV_BITMAP').block(c.block, at);
        await this.link?.send({ type: 'RECV_BITMAP', block: block.name, bitmap: block.recvBitmapBlob() });
        return;
      }
      case 'POSTCOPY_RESUME': {
        const path = this.expectRecovery(at, 'POSTCOPY_RESUME');
        this.recovery = false;
        this.paused = false;
        await this.link?.send({ type: 'RESUME_ACK', value: 1 });
        const link = this.link;
        this.requester.attach(link ? (m) => link.send(m) : undefined);
        this.requester.resendOutstanding();
        if (this.preempt) this.preemptChannel.start(path.ram, path.sinks[1] as PostcopyRamSink);
        return;
      }
      default:
    }
  }

  wrapRamLoader(inner: SectionLoader): SectionLoader {
    return {
      load: (ctx) => (this.ph === 'listening' || this.ph === 'running' ? this.loadPostcopyRam(ctx) : inner.load(ctx)),
    };
  }

  attachMain(link: MainLink | undefined): void {
    this.link = link;
    // After a recovery, requests wait for POSTCOPY_RESUME (the source is not serving yet).
    if (!this.recovery) this.requester.attach(link ? (m) => link.send(m) : undefined);
  }

  attachPreempt(ch: ExtraChannel): void {
    this.preemptChannel.attach(ch);
    this.o.log?.('postcopy-preempt connection attached');
    const path = this.path;
    if (path && (this.ph === 'listening' || this.ph === 'running') && !this.paused && !this.recovery) {
      this.preemptChannel.start(path.ram, path.sinks[1] as PostcopyRamSink);
    }
  }

  pause(reason: Error): void {
    this.paused = true;
    this.o.log?.(`postcopy paused: ${reason.message}`);
    this.path?.dropPartial();
    this.preemptChannel.drop(reason);
    this.requester.attach(undefined);
    this.path?.ram.resetLast();
  }

  recovering(): void {
    this.recovery = true;
  }

  async finish(): Promise<void> {
    const path = this.path;
    if (this.ph !== 'running' || path === undefined) return;
    if (this.preempt) await this.preemptChannel.finished();
    path.placer.flush();
    for (const t of path.tmp) {
      if (t.busy) {
        throw new PostcopyProtocolError(
          'E_POSTCOPY_HOST_PAGE',
          `the stream ended while host page ${hex(t.hostAddr)} of block "${t.block?.name}" had only ${t.targetPages} of its ${t.block?.targetsPerHost} target pages (postcopy channel ${t.channel})`,
          { block: t.block?.name, channelIndex: t.channel, hostOffset: t.hostAddr },
        );
      }
    }
    path.release(this.o.log);
    this.ph = stepPhase(this.ph, 'end', -1);
  }

  abort(reason?: Error): void {
    this.preemptChannel.drop(reason ?? new Error('postcopy aborted'));
    this.path?.release(this.o.log);
  }

  query(): Record<string, unknown> {
    return postcopyQuery({
      phase: this.ph,
      backend: this.path?.userfault.backend,
      backendReason: this.path?.backendReason,
      blocktime: this.o.blocktime === true,
      requests: this.requester.sent,
      outstanding: this.requester.pending,
      stats: this.stats.snapshot(),
      pages: this.path?.placer.counters,
      records: this.counts,
      discarded: this.discarded,
    });
  }

  private async loadPostcopyRam(ctx: SectionContext): Promise<undefined> {
    const s = ctx.section;
    if (s.versionId !== RAM_SECTION_VERSION) {
      throw new MigrationStreamError(
        'E_BAD_VERSION',
        `section ${s.label} at byte offset ${s.offset}: ram version ${s.versionId}, expected 4`,
        { offset: s.offset, section: s.label },
      );
    }
    const path = this.path as PlacementPath;
    await loadRamBody(ctx.source, path.ram, ctx.state, path.sinks[0] as PostcopyRamSink, { channel: 0, section: s });
    return undefined;
  }

  /** The placement path, built once (first DISCARD or LISTEN: a store knows its blocks by then). */
  private openPath(at: number): PlacementPath {
    this.path ??= new PlacementPath({
      sources: this.o.blocks(),
      mirrorSummary: this.o.mirror ? this.advised : undefined,
      channels: this.preempt ? 2 : 1,
      userfault: this.o.userfault ?? 'auto',
      requester: this.requester,
      stats: this.stats,
      counts: this.counts,
      ...(this.o.batchPages ? { batchPages: this.o.batchPages } : {}),
      onError: (err) => {
        this.o.log?.(`postcopy fault handling failed: ${err.message}`);
        this.link?.fail(err);
      },
      at,
    });
    return this.path;
  }

  private expectRecovery(at: number, what: string): PlacementPath {
    if (!this.recovery || !this.path) {
      throw new PostcopyProtocolError(
        'E_POSTCOPY_SEQUENCE',
        `${what} at byte offset ${at} outside a postcopy recovery (postcopy state ${this.ph.toUpperCase()})`,
        { offset: at, record: `command ${what}` },
      );
    }
    return this.path;
  }
}

/** OR of the blocks' host page sizes (QEMU's ram_pagesize_summary). */
export function pageSizeSummary(blocks: readonly PostcopyBlockSource[]): number {
  return blocks.reduce((s, b) => s | b.memory.pageSize, 0);
}
