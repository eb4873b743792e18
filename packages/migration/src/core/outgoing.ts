import { AutoConverge } from './auto-converge.js';
import { Capabilities, MIGRATION_CAPABILITIES } from './capabilities.js';
import { MigrationControlError } from './errors.js';
import type { MigrationFile } from './migration-file.js';
import { type MigrationVm, wallClockMs } from './migration-vm.js';
import { type OpenChannel, OutgoingLink, SHUT_TIMEOUT_MS } from './outgoing-link.js';
import { OutgoingPacing } from './outgoing-pacing.js';
import { OutgoingPostcopy } from './outgoing-postcopy.js';
import { writeDeviceStateAndEnd, writeFooter, writeSectionHeader, writeStreamStart } from './outgoing-stream.js';
import type { Parameters } from './parameters.js';
import { PostcopyPolicy } from './postcopy-policy.js';
import type { PostcopySaveHandler } from './postcopy-save.js';
import type { LiveSaveHandler, SaveContext, SaveVmHandlers } from './savevm-handlers.js';
import type { PageRequest } from './source-return-path.js';
import { type MigrationEvent, type MigrationState, SOURCE_TRANSITIONS, step } from './state.js';
import { buildQueryMigrate, emptyRamStats, type QueryMigrate } from './stats.js';

export { type OpenChannel, type OutgoingChannel, SHUT_TIMEOUT_MS } from './outgoing-link.js';

/** A stored migration re-sent as it was received (e2k-migrate send). */
export interface VerbatimState {
  /** The configuration record (`07 …`). */
  configuration: Uint8Array;
  /** Device state: FULL sections through the EOF byte. */
  devices: Uint8Array;
  vmdesc?: Uint8Array;
}

export interface OutgoingOptions {
  vm: MigrationVm;
  handlers: SaveVmHandlers;
  /** The capabilities for this migration (copied at construction). */
  caps: Capabilities;
  /** The VM's parameters, read live: max-bandwidth and downtime-limit take effect at once. */
  params: Parameters;
  /** Configuration record machine name. */
  machineName: string;
  /** TARGET_PAGE_SIZE (the vmdesc `page_size`). */
  targetPageSize: number;
  /** Opens a channel to the destination (connect + TLS); the signal aborts it on cancel. */
  open: OpenChannel;
  /** Device state and configuration sent verbatim instead of from `handlers` (a stored migration). */
  verbatim?: VerbatimState;
  /** Every state change, in order. */
  onState?(state: MigrationState): void;
  /** Other events: `MIGRATION_PASS` with `{pass}`. */
  onEvent?(name: string, data: Record<string, unknown>): void;
  /** Diagnostics (why postcopy started, a recovery attempt that failed, …). */
  log?(line: string): void;
  now?: () => number;
}

type LiveEntry = { sectionId: number; handler: LiveSaveHandler; postcopy?: PostcopySaveHandler };

/**
 * The source side of a migration (QEMU's migration thread): setup (header, configuration, with a
 * return path OPEN_RETURN_PATH + PING 1, with postcopy-ram POSTCOPY_ADVISE, then START sections),
 * iterations while the guest runs (PART sections under the rate limit until the remaining bytes
 * fit in `bandwidth × downtime-limit`), then either completion with the VM stopped (END sections,
 * device state, EOF, vmdesc) or — once `migrate-start-postcopy` (or the postcopy policy) asked —
 * the switch to postcopy ({@link OutgoingPostcopy}). On a failure before that switch the VM runs on.
 * The state machine is {@link SOURCE_TRANSITIONS}; the I/O is this loop around it.
 */
export class OutgoingMigration {
  readonly o: OutgoingOptions;
  readonly now: () => number;
  readonly caps: Capabilities;
  private st: MigrationState = { status: 'none' };
  readonly abort = new AbortController();
  private readonly cancelledPromise: Promise<void>;
  private resolveCancelled: () => void = () => {};
  private terminateWaiters: (() => void)[] = [];
  /** The current connections (a postcopy recovery replaces them). */
  link: OutgoingLink | undefined;
  /** Bytes written on links replaced by a recovery. */
  private bytesBefore = 0;
  /** Rate limit, counters and wake-ups. */
  readonly pacing: OutgoingPacing;
  private readonly autoConverge = new AutoConverge();
  private startTime = 0;
  private setupTime = 0;
  totalTime: number | undefined;
  downtime: number | undefined;
  finalMbps: number | undefined;
  vcpuStopTime: number | undefined;
  vmStoppedByUs = false;
  private postcopyRequested = false;
  private readonly policy = new PostcopyPolicy();
  private postcopy: OutgoingPostcopy | undefined;
  /** A fatal error from outside the loop (a bad page request). */
  private fatal: Error | undefined;
  /** Settles when the migration reached a final state. */
  readonly done: Promise<MigrationState>;

  constructor(opts: OutgoingOptions) {
    this.o = opts;
    this.now = opts.now ?? (() => performance.now());
    this.caps = new Capabilities(MIGRATION_CAPABILITIES);
    this.caps.set(opts.caps.query());
    this.cancelledPromise = new Promise((r) => {
      this.resolveCancelled = r;
    });
    this.pacing = new OutgoingPacing(
      {
        now: this.now,
        linkBytes: () => this.link?.bytesWritten ?? 0,
        totalBytes: () => this.totalBytes(),
        pagesSent: () => this.pagesSent(),
        remainingAtSync: () =>
          this.o.handlers.live().reduce((n, { handler }) => n + (handler.remainingAtSync?.() ?? 0), 0),
        dirtyPagesRate: () => this.stats().ram?.['dirty-pages-rate'] ?? 0,
        downtimeLimitMs: () => this.o.params.get('downtime-limit'),
      },
      this.cancelledPromise,
    );
    this.done = this.run();
  }

  get state(): MigrationState {
    return this.st;
  }

  /** QMP `migrate_cancel`: stops sending, the VM keeps (or resumes) running. Refused in postcopy. */
  cancel(): void {
    const s = this.st.status;
    if (s !== 'setup' && s !== 'active' && s !== 'pre-switchover' && s !== 'device') return;
    this.transition({ type: 'cancel' });
    const err = new MigrationControlError('E_BAD_STATE', 'migration cancelled');
    this.link?.cancel(err);
    this.abort.abort(err);
    this.resolveCancelled();
  }

  /** QMP `migrate-start-postcopy`: switch at the next iteration where precopy-only data fits. */
  startPostcopy(): void {
    this.postcopyRequested = true;
    this.pacing.kick();
  }

  /** QMP `migrate-pause` (postcopy-active only): drops the connections; the migration pauses. */
  pause(): void {
    if (this.st.status !== 'postcopy-active') {
      throw new MigrationControlError(
        'E_BAD_STATE',
        `migrate-pause is only supported in postcopy-active (the migration is ${this.st.status})`,
      );
    }
    this.postcopy?.pause();
  }

  /**
   * QMP `migrate` with `resume: true` (postcopy-paused only): reconnects with `open`, exchanges
   * the received bitmaps and continues postcopy.
   */
  resume(open: OpenChannel): void {
    if (this.st.status !== 'postcopy-paused' || !this.postcopy) {
      throw new MigrationControlError('E_BAD_STATE', 'Cannot resume if there is no paused migration');
    }
    this.postcopy.requestResume(open);
  }

  /** `max-bandwidth` / `max-postcopy-bandwidth` changed: applies to the current window at once. */
  parametersChanged(): void {
    this.pacing.rate?.setRate(this.o.params.get(this.postcopy ? 'max-postcopy-bandwidth' : 'max-bandwidth'));
  }

  /** The `query-migrate` reply for this migration (QEMU 7.2 field names). */
  query(): QueryMigrate {
    const stats = this.stats();
    const ram = stats.ram ?? emptyRamStats(this.o.targetPageSize);
    const est = this.pacing.estimator;
    if (this.finalMbps !== undefined) ram.mbps = this.finalMbps;
    else if (est) ram.mbps = est.mbps;
    if (est) ram['pages-per-second'] = est.pagesPerSecond;
    const extras: Record<`x-${string}`, unknown> = {};
    if (this.vcpuStopTime !== undefined) extras['x-vcpu-stop-time'] = this.vcpuStopTime;
    if (this.policy.reason !== undefined) extras['x-postcopy-trigger'] = this.policy.reason;
    if (this.postcopy) Object.assign(extras, this.postcopy.extras());
    return buildQueryMigrate({
      status: this.st.status,
      ...(this.st.status === 'failed' ? { error: this.st.error } : {}),
      now: this.now(),
      startTime: this.startTime,
      setupTime: this.setupTime,
      ...(this.totalTime !== undefined ? { totalTime: this.totalTime } : {}),
      ...(this.downtime !== undefined ? { downtime: this.downtime } : {}),
      expectedDowntime: est?.expectedDowntime ?? this.o.params.get('downtime-limit'),
      ram,
      ...(stats['xbzrle-cache'] ? { xbzrle: stats['xbzrle-cache'] } : {}),
      throttlePercentage: this.autoConverge.percentage,
      extras,
    });
  }

  stats(): Pick<QueryMigrate, 'ram' | 'xbzrle-cache'> {
    const out: Pick<QueryMigrate, 'ram' | 'xbzrle-cache'> = {};
    for (const { handler } of this.o.handlers.live()) Object.assign(out, handler.stats?.() ?? {});
    return out;
  }

  transition(e: MigrationEvent): void {
    this.st = step(SOURCE_TRANSITIONS, this.st, e);
    this.o.onState?.(this.st);
  }

  private async run(): Promise<MigrationState> {
    await Promise.resolve();
    this.startTime = this.now();
    this.transition({ type: 'start' });
    const live: LiveEntry[] = this.o.handlers.live();
    const postcopy = this.caps.has('postcopy-ram');
    let wasRunning = false;
    let switched = false;
    try {
      if (postcopy && !live.some((l) => l.postcopy)) {
        throw new MigrationControlError(
          'E_NOT_SUPPORTED',
          'postcopy-ram is on but no save handler of this VM can continue in postcopy',
          { subject: 'postcopy-ram' },
        );
      }
      this.link = await this.openLink(this.o.open);
      this.throwIfCancelled();
      const f = this.link.file;
      const ctx = this.context(f);
      let summary = 0;
      for (const l of live) summary |= l.postcopy?.pageSizeSummary() ?? 0;
      writeStreamStart(f, this.o.machineName, this.o.verbatim?.configuration, {
        returnPath: this.link.rp !== undefined,
        ...(postcopy ? { advise: { pageSizeSummary: summary, targetPageSize: this.o.targetPageSize } } : {}),
      });
      for (const { sectionId, handler } of live) {
        writeSectionHeader(f, {
          kind: 'START',
          sectionId,
          idstr: handler.idstr,
          instanceId: handler.instanceId,
          versionId: handler.version,
        });
        await handler.setup(ctx);
        writeFooter(f, sectionId);
      }
      await f.flush();
      this.throwIfCancelled();
      this.setupTime = Math.round(this.now() - this.startTime);
      this.transition({ type: 'setup-done' });
      const pacing = this.pacing;
      pacing.start(this.o.params.get('max-bandwidth'));
      for (;;) {
        this.throwIfCancelled();
        if (!pacing.rateExceeded()) {
          const threshold = pacing.estimator?.thresholdSize ?? 0;
          let pending = 0;
          let precopyOnly = 0;
          for (const { handler, postcopy: pc } of live) {
            const p = handler.pending(threshold, ctx);
            pending += p;
            if (!pc) precopyOnly += p;
          }
          if (!(pending > 0 && pending >= threshold)) break;
          if (postcopy && precopyOnly <= threshold && this.wantsPostcopy()) {
            switched = true;
            break;
          }
          await this.iterate(f, ctx, live);
        }
        this.link.throwIfFailed();
        pacing.updateCounters();
        if (pacing.rateExceeded()) await pacing.rate?.waitForWindow();
        // QEMU's migration thread runs beside the main loop; here they share one thread, so let
        // I/O and QMP (migrate_cancel, query-migrate) in between two passes.
        else await new Promise<void>((r) => setImmediate(r));
      }
      wasRunning = this.o.vm.runState === 'running';
      if (switched) {
        this.postcopy = new OutgoingPostcopy(this, live);
        await this.postcopy.run();
      } else await this.complete(f, ctx, live);
      return this.st;
    } catch (err) {
      await this.fail(err, wasRunning);
      return this.st;
    } finally {
      for (const { handler } of live) {
        try {
          handler.cleanup();
        } catch {
          // cleanup must not mask the outcome
        }
      }
      if (this.autoConverge.percentage > 0) this.o.vm.setThrottle(0);
      this.autoConverge.stop();
    }
  }

  /** Opens the connections (at start, or for a postcopy recovery: no header is sent then). */
  async openLink(open: OpenChannel): Promise<OutgoingLink> {
    const live = this.o.handlers.live();
    const postcopy = this.caps.has('postcopy-ram');
    return OutgoingLink.open(open, this.abort.signal, {
      returnPath: postcopy || this.caps.has('return-path'),
      preempt: this.caps.has('postcopy-preempt'),
      onRequest: (r) => this.onPageRequest(live, r),
      onReturnPathFailure: () => this.pacing.kick(),
    });
  }

  /**
   * Ends the migration whatever its state (the VM process exits): a paused postcopy stops
   * waiting for `resume` and the migration fails with `err`.
   */
  terminate(err: Error): void {
    this.fatal ??= err;
    this.link?.cancel(err);
    this.pacing.kick();
    const list = this.terminateWaiters;
    this.terminateWaiters = [];
    for (const w of list) w();
  }

  /** True once {@link terminate} was called or a fatal error (a bad page request) happened. */
  get isTerminated(): boolean {
    return this.fatal !== undefined;
  }

  /** Throws the error {@link terminate} was given (or the fatal error). */
  throwIfTerminated(): void {
    if (this.fatal) throw this.fatal;
  }

  /** Calls `cb` when {@link terminate} is called. */
  onTerminate(cb: () => void): void {
    this.terminateWaiters.push(cb);
  }

  /** `migrate-start-postcopy` was issued, or the postcopy policy fires. */
  private wantsPostcopy(): boolean {
    if (this.postcopyRequested) return true;
    const ram = this.stats().ram;
    const fired = this.policy.observe(
      ram?.['dirty-sync-count'] ?? 0,
      this.o.handlers.live().reduce((n, { handler }) => n + (handler.remainingAtSync?.() ?? 0), 0),
      this.o.params.get('x-postcopy-after-iterations'),
      this.o.params.get('x-postcopy-stall-syncs'),
    );
    if (fired) this.o.log?.(`switching to postcopy: ${this.policy.reason}`);
    return fired;
  }

  /** A page request from the return path: queued by the postcopy handler; a bad one fails the migration. */
  private onPageRequest(live: LiveEntry[], req: PageRequest): void {
    const pc = live.find((l) => l.postcopy)?.postcopy;
    try {
      if (!pc) throw new MigrationControlError('E_BAD_STATE', 'a page request arrived but postcopy-ram is off');
      pc.requestPages(req);
    } catch (err) {
      this.fatal ??= err as Error;
    }
    this.pacing.kick();
  }

  /** qemu_savevm_state_iterate: a PART per handler until the rate limit or one is not done. */
  private async iterate(f: MigrationFile, ctx: SaveContext, live: LiveEntry[]) {
    for (const { sectionId, handler } of live) {
      if (this.pacing.rateExceeded()) return;
      writeSectionHeader(f, { kind: 'PART', sectionId });
      const done = await handler.iterate(ctx);
      writeFooter(f, sectionId);
      f.emit();
      if (!done) return;
    }
  }

  /** migration_completion: stop the VM, END sections, device state, EOF, vmdesc, flush, (SHUT). */
  private async complete(f: MigrationFile, ctx: SaveContext, live: LiveEntry[]) {
    const downtimeStart = this.now();
    await this.o.vm.stopForMigration();
    this.vmStoppedByUs = true;
    this.vcpuStopTime = wallClockMs();
    this.throwIfCancelled();
    for (const { sectionId, handler } of live) {
      writeSectionHeader(f, { kind: 'END', sectionId });
      await handler.complete(ctx);
      writeFooter(f, sectionId);
    }
    writeDeviceStateAndEnd(f, this.o.handlers, this.o.targetPageSize, this.o.verbatim);
    await f.flush();
    const end = this.now();
    this.downtime = Math.round(end - downtimeStart);
    this.throwIfCancelled();
    const link = this.link as OutgoingLink;
    if (link.rp) await link.rp.waitShut(SHUT_TIMEOUT_MS);
    await link.end();
    this.finish(end);
  }

  /** Records the final times and enters `completed` (the VM stays stopped: `postmigrate`). */
  finish(end: number): void {
    this.totalTime = Math.round(end - this.startTime);
    const transfer = this.totalTime - this.setupTime;
    if (transfer > 0) this.finalMbps = (this.totalBytes() * 8) / transfer / 1000;
    this.o.vm.setRunState('postmigrate');
    this.transition({ type: 'complete' });
  }

  private async fail(err: unknown, wasRunning: boolean): Promise<void> {
    const cancelled = this.st.status === 'cancelling';
    this.link?.cancel(err instanceof Error ? err : new Error(String(err)));
    this.abort.abort();
    if (this.vmStoppedByUs && !this.postcopy?.switchedOver) {
      try {
        if (wasRunning) await this.o.vm.start();
        else this.o.vm.setRunState('postmigrate');
      } catch {
        // the VM could not be restarted; the migration outcome is still reported
      }
    }
    if (cancelled) {
      this.transition({ type: 'cancelled' });
      return;
    }
    const e = err as Error & { code?: string };
    const why = e?.message ?? String(err);
    this.transition({ type: 'fail', error: e?.code ? `${e.code}: ${why}` : why });
  }

  /** The SaveContext handlers get, writing to `f`. */
  context(f: MigrationFile): SaveContext {
    return {
      file: f,
      caps: this.caps,
      params: this.o.params,
      now: this.now,
      rateLimitEnd: () => this.pacing.rateLimitEnd(f.bytesWritten),
      vmRunning: () => this.o.vm.runState === 'running',
      cancelled: () => this.st.status === 'cancelling',
      onDirtySync: (pass) => this.o.onEvent?.('MIGRATION_PASS', { pass }),
      onSyncPeriod: (dirty, xfer) => {
        if (!this.caps.has('auto-converge')) return;
        const before = this.autoConverge.percentage;
        const pct = this.autoConverge.onPeriod(dirty, xfer, this.o.params.query());
        if (pct !== before) this.o.vm.setThrottle(pct);
      },
    };
  }

  /** Every byte sent on every channel of this migration, recoveries included. */
  totalBytes(): number {
    return this.bytesBefore + (this.link?.bytesWritten ?? 0);
  }

  /** A recovery replaced the connections. */
  relinked(link: OutgoingLink): void {
    this.bytesBefore += this.link?.bytesWritten ?? 0;
    this.link = link;
    this.pacing.relinked();
  }

  private pagesSent(): number {
    const s = this.stats();
    return (s.ram?.normal ?? 0) + (s.ram?.duplicate ?? 0) + (s['xbzrle-cache']?.pages ?? 0);
  }

  throwIfCancelled(): void {
    if (this.st.status === 'cancelling') throw new MigrationControlError('E_BAD_STATE', 'migration cancelled');
    if (this.fatal) throw this.fatal;
    this.link?.throwIfFailed();
  }
}
