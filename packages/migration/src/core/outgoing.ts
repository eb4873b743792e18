import { AutoConverge } from './auto-converge.js';
import { Capabilities, MIGRATION_CAPABILITIES } from './capabilities.js';
import { ConvergenceEstimator } from './convergence.js';
import { MigrationControlError } from './errors.js';
import { MigrationFile, type MigrationSink } from './migration-file.js';
import { type MigrationVm, wallClockMs } from './migration-vm.js';
import { writeDeviceStateAndEnd, writeFooter, writeSectionHeader, writeStreamStart } from './outgoing-stream.js';
import type { Parameters } from './parameters.js';
import { RateLimiter } from './rate-limiter.js';
import type { LiveSaveHandler, SaveContext, SaveVmHandlers } from './savevm-handlers.js';
import { type MigrationEvent, type MigrationState, SOURCE_TRANSITIONS, step } from './state.js';
import { buildQueryMigrate, emptyRamStats, type QueryMigrate } from './stats.js';

/** The outgoing connection: a transports `Channel` fits. */
export interface OutgoingChannel extends MigrationSink {
  /** Closes the sending side after the last byte (socket half-close, file close, exec exit). */
  end(): Promise<void>;
  /** Aborts: pending writes fail, the peer sees a reset. */
  cancel(reason?: string | Error): void;
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
  /** Opens the channel (connect + TLS); the signal aborts it on cancel. */
  open(signal: AbortSignal): Promise<OutgoingChannel>;
  /** Every state change, in order. */
  onState?(state: MigrationState): void;
  /** Other events: `MIGRATION_PASS` with `{pass}`. */
  onEvent?(name: string, data: Record<string, unknown>): void;
  now?: () => number;
}

/**
 * The source side of a precopy migration (QEMU's migration thread): setup (header,
 * configuration, START sections), iterations while the guest runs (PART sections under the rate
 * limit until the remaining bytes fit in `bandwidth × downtime-limit`), then completion with the
 * VM stopped (END sections, device state, EOF, vmdesc). On failure or cancel the VM runs on.
 * The state machine is {@link SOURCE_TRANSITIONS}; the I/O is this loop around it.
 */
export class OutgoingMigration {
  private readonly o: OutgoingOptions;
  private readonly now: () => number;
  private readonly caps: Capabilities;
  private st: MigrationState = { status: 'none' };
  private readonly abort = new AbortController();
  private readonly cancelledPromise: Promise<void>;
  private resolveCancelled: () => void = () => {};
  private channel: OutgoingChannel | undefined;
  private file: MigrationFile | undefined;
  private estimator: ConvergenceEstimator | undefined;
  private rate: RateLimiter | undefined;
  private accounted = 0;
  private readonly autoConverge = new AutoConverge();
  private startTime = 0;
  private setupTime = 0;
  private totalTime: number | undefined;
  private downtime: number | undefined;
  private finalMbps: number | undefined;
  private vcpuStopTime: number | undefined;
  private vmStoppedByUs = false;
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
    this.done = this.run();
  }

  get state(): MigrationState {
    return this.st;
  }

  /** QMP `migrate_cancel`: stops sending, the VM keeps (or resumes) running. */
  cancel(): void {
    const s = this.st.status;
    if (s !== 'setup' && s !== 'active' && s !== 'pre-switchover' && s !== 'device') return;
    this.transition({ type: 'cancel' });
    const err = new MigrationControlError('E_BAD_STATE', 'migration cancelled');
    this.file?.fail(err);
    this.abort.abort(err);
    this.channel?.cancel('migration cancelled');
    this.resolveCancelled();
  }

  /** `max-bandwidth` changed: applies to the current window at once. */
  parametersChanged(): void {
    this.rate?.setRate(this.o.params.get('max-bandwidth'));
  }

  /** The `query-migrate` reply for this migration (QEMU 7.2 field names). */
  query(): QueryMigrate {
    const stats = this.stats();
    const ram = stats.ram ?? emptyRamStats(this.o.targetPageSize);
    const est = this.estimator;
    if (this.finalMbps !== undefined) ram.mbps = this.finalMbps;
    else if (est) ram.mbps = est.mbps;
    if (est) ram['pages-per-second'] = est.pagesPerSecond;
    const extras: Record<`x-${string}`, unknown> = {};
    if (this.vcpuStopTime !== undefined) extras['x-vcpu-stop-time'] = this.vcpuStopTime;
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

  private stats(): Pick<QueryMigrate, 'ram' | 'xbzrle-cache'> {
    const out: Pick<QueryMigrate, 'ram' | 'xbzrle-cache'> = {};
    for (const { handler } of this.o.handlers.live()) Object.assign(out, handler.stats?.() ?? {});
    return out;
  }

  private transition(e: MigrationEvent): void {
    this.st = step(SOURCE_TRANSITIONS, this.st, e);
    this.o.onState?.(this.st);
  }

  private async run(): Promise<MigrationState> {
    await Promise.resolve();
    this.startTime = this.now();
    this.transition({ type: 'start' });
    const live = this.o.handlers.live();
    let wasRunning = false;
    try {
      this.channel = await this.o.open(this.abort.signal);
      this.throwIfCancelled();
      const f = new MigrationFile(this.channel);
      this.file = f;
      const ctx = this.context(f);
      writeStreamStart(f, this.o.machineName);
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
      this.estimator = new ConvergenceEstimator(
        this.o.params.get('downtime-limit'),
        this.now(),
        f.bytesWritten,
        this.pagesSent(),
      );
      this.rate = new RateLimiter(this.o.params.get('max-bandwidth'), { now: this.now, sleep: (ms) => this.sleep(ms) });
      this.accounted = f.bytesWritten;
      for (;;) {
        this.throwIfCancelled();
        if (!this.rateExceeded()) {
          const threshold = this.estimator.thresholdSize;
          let pending = 0;
          for (const { handler } of live) pending += handler.pending(threshold, ctx);
          if (!(pending > 0 && pending >= threshold)) break;
          await this.iterate(f, ctx, live);
        }
        f.throwIfFailed();
        this.updateCounters(f);
        if (this.rateExceeded()) await this.rate.waitForWindow();
        // QEMU's migration thread runs beside the main loop; here they share one thread, so let
        // I/O and QMP (migrate_cancel, query-migrate) in between two passes.
        else await new Promise<void>((r) => setImmediate(r));
      }
      wasRunning = this.o.vm.runState === 'running';
      await this.complete(f, ctx, live);
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

  /** qemu_savevm_state_iterate: a PART per handler until the rate limit or one is not done. */
  private async iterate(f: MigrationFile, ctx: SaveContext, live: { sectionId: number; handler: LiveSaveHandler }[]) {
    for (const { sectionId, handler } of live) {
      if (this.rateExceeded()) return;
      writeSectionHeader(f, { kind: 'PART', sectionId });
      const done = await handler.iterate(ctx);
      writeFooter(f, sectionId);
      f.emit();
      if (!done) return;
    }
  }

  /** migration_completion: stop the VM, END sections, device state, EOF, vmdesc, flush. */
  private async complete(f: MigrationFile, ctx: SaveContext, live: { sectionId: number; handler: LiveSaveHandler }[]) {
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
    writeDeviceStateAndEnd(f, this.o.handlers, this.o.targetPageSize);
    await f.flush();
    const end = this.now();
    this.downtime = Math.round(end - downtimeStart);
    this.throwIfCancelled();
    await (this.channel as OutgoingChannel).end();
    this.totalTime = Math.round(end - this.startTime);
    const transfer = this.totalTime - this.setupTime;
    if (transfer > 0) this.finalMbps = (f.bytesWritten * 8) / transfer / 1000;
    this.o.vm.setRunState('postmigrate');
    this.transition({ type: 'complete' });
  }

  private async fail(err: unknown, wasRunning: boolean): Promise<void> {
    const cancelled = this.st.status === 'cancelling';
    this.channel?.cancel(cancelled ? 'migration cancelled' : (err as Error));
    if (this.vmStoppedByUs) {
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

  private context(f: MigrationFile): SaveContext {
    return {
      file: f,
      caps: this.caps,
      params: this.o.params,
      now: this.now,
      rateLimitEnd: () => {
        if (!this.rate) return Number.POSITIVE_INFINITY;
        this.accountRate();
        return f.bytesWritten + this.rate.remaining();
      },
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

  private pagesSent(): number {
    const s = this.stats();
    return (s.ram?.normal ?? 0) + (s.ram?.duplicate ?? 0) + (s['xbzrle-cache']?.pages ?? 0);
  }

  private accountRate(): void {
    const f = this.file;
    if (!f || !this.rate) return;
    this.rate.account(f.bytesWritten - this.accounted);
    this.accounted = f.bytesWritten;
  }

  private rateExceeded(): boolean {
    if (!this.rate) return false;
    this.accountRate();
    return this.rate.exceeded();
  }

  /**
   * migration_update_counters: every ≥ 100 ms, bandwidth, threshold, mbps, expected downtime.
   * The rate limiter keeps its own 100 ms windows (QEMU resets the limit at the same instant).
   */
  private updateCounters(f: MigrationFile): void {
    const est = this.estimator;
    if (!est) return;
    const ram = this.stats().ram;
    est.update({
      now: this.now(),
      totalBytes: f.bytesWritten,
      totalPages: this.pagesSent(),
      downtimeLimitMs: this.o.params.get('downtime-limit'),
      remainingAtSync: this.o.handlers.live().reduce((n, { handler }) => n + (handler.remainingAtSync?.() ?? 0), 0),
      dirtyPagesRate: ram?.['dirty-pages-rate'] ?? 0,
    });
  }

  private async sleep(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((r) => {
        timer = setTimeout(r, ms);
      }),
      this.cancelledPromise,
    ]);
    clearTimeout(timer);
  }

  private throwIfCancelled(): void {
    if (this.st.status === 'cancelling') throw new MigrationControlError('E_BAD_STATE', 'migration cancelled');
    this.file?.throwIfFailed();
  }
}
