import { TransportError } from '@e2k-migrate/transports';
import { MigrationStreamError } from '../errors.js';
import { encodeCommand, encodePackaged } from '../wire/command.js';
import { MAX_VM_CMD_PACKAGED_SIZE, QEMU_VM_EOF, RAM_SAVE_FLAG_EOS } from '../wire/constants.js';
import { MigrationControlError } from './errors.js';
import { MigrationFile, type MigrationSink } from './migration-file.js';
import { wallClockMs } from './migration-vm.js';
import type { OutgoingMigration } from './outgoing.js';
import { type OpenChannel, type OutgoingLink, SHUT_TIMEOUT_MS } from './outgoing-link.js';
import { writeDeviceSections, writeFooter, writeSectionHeader } from './outgoing-stream.js';
import type { PostcopyIo, PostcopySaveHandler } from './postcopy-save.js';
import type { LiveSaveHandler } from './savevm-handlers.js';

/** How long a recovery waits for each RECV_BITMAP reply and for RESUME_ACK. */
export const RECOVERY_REPLY_TIMEOUT_MS = 30_000;

type LiveEntry = { sectionId: number; handler: LiveSaveHandler; postcopy?: PostcopySaveHandler };

/**
 * An error that means "the connection is gone" rather than "the peer or the data is wrong": a
 * transport error (reset, EOF, migrate-pause's cancel) or a return path that broke off. In
 * postcopy such an error pauses the migration instead of failing it (spec §9.6).
 */
export function isConnectionLoss(err: unknown): boolean {
  if (err instanceof TransportError) return true;
  if (err instanceof MigrationStreamError) {
    return err.code === 'E_IO' || (err.code === 'E_TRUNCATED' && err.channel === 'return-path');
  }
  return false;
}

/**
 * The postcopy part of an outgoing migration (QEMU 7.2's postcopy_start, the postcopy iterations,
 * migration_completion in postcopy, postcopy_pause and postcopy_do_resume):
 *
 * 1. with postcopy-preempt, wait until the preempt channel is connected;
 * 2. `postcopy-active`; 3. stop the VM; 4. END sections of handlers without a postcopy side;
 * 5. last dirty sync, canonicalisation and POSTCOPY_RAM_DISCARD commands;
 * 6. rate limit := `max-postcopy-bandwidth`, PING(2);
 * 7. PACKAGED(POSTCOPY_LISTEN, every FULL device section, PING(3), POSTCOPY_RUN); 8. PING(4) —
 *    `downtime` is the time from step 1 to here;
 * 9. PART sections (page requests first) until nothing is left, END, EOF, the preempt channel's
 *    EOS, then the destination's SHUT.
 *
 * A lost connection in steps 9 pauses (`postcopy-paused`); `migrate` with `resume` reconnects,
 * sends RECV_BITMAP per block, rebuilds the dirty bitmaps from the replies, POSTCOPY_RESUME, and
 * continues on RESUME_ACK.
 */
export class OutgoingPostcopy {
  /** The package with POSTCOPY_RUN was written: the guest may run on the destination now. */
  switchedOver = false;
  private readonly m: OutgoingMigration;
  private readonly live: LiveEntry[];
  private readonly pcs: PostcopySaveHandler[];
  private discardRanges = 0;
  private recoveries = 0;
  private packageBytes = 0;
  private resumeOpen: OpenChannel | undefined;
  private resumeWake: (() => void) | undefined;
  /** When the switchover started, and when the migration completed (`x-postcopy-time`). */
  private startedAt: number | undefined;
  private endedAt: number | undefined;

  constructor(m: OutgoingMigration, live: LiveEntry[]) {
    this.m = m;
    this.live = live;
    this.pcs = live.flatMap((l) => (l.postcopy ? [l.postcopy] : []));
  }

  /** `query-migrate` extras: discard ranges sent, package size, recoveries, time in postcopy. */
  extras(): Record<`x-${string}`, unknown> {
    const out: Record<`x-${string}`, unknown> = {
      // ms from the start of the switchover to completion (so far, while it runs)
      'x-postcopy-time': this.startedAt === undefined ? 0 : Math.round((this.endedAt ?? this.m.now()) - this.startedAt),
      'x-postcopy-discard-ranges': this.discardRanges,
      'x-postcopy-package-bytes': this.packageBytes,
      'x-postcopy-recoveries': this.recoveries,
    };
    for (const pc of this.pcs) Object.assign(out, pc.extras?.() ?? {});
    return out;
  }

  async run(): Promise<void> {
    const m = this.m;
    const start = m.now();
    this.startedAt = start;
    const link = m.link as OutgoingLink;
    if (m.caps.has('postcopy-preempt')) await link.preempt();
    m.throwIfCancelled();
    m.transition({ type: 'postcopy-start' });
    await m.o.vm.stopForMigration();
    m.vmStoppedByUs = true;
    m.vcpuStopTime = wallClockMs();
    const f = link.file;
    const ctx = m.context(f);
    for (const { sectionId, handler, postcopy } of this.live) {
      if (postcopy) continue;
      writeSectionHeader(f, { kind: 'END', sectionId });
      await handler.complete(ctx);
      writeFooter(f, sectionId);
    }
    for (const pc of this.pcs) this.discardRanges += pc.sendDiscards(ctx);
    m.pacing.rate?.setRate(m.o.params.get('max-postcopy-bandwidth'));
    f.put(encodeCommand({ cmd: 'PING', value: 2 }));
    const pkg = this.buildPackage();
    this.packageBytes = pkg.length;
    f.put(encodePackaged(pkg));
    this.switchedOver = true;
    f.put(encodeCommand({ cmd: 'PING', value: 4 }));
    await f.flush();
    m.downtime = Math.round(m.now() - start);
    for (;;) {
      try {
        await this.sendRest();
        break;
      } catch (err) {
        if (!isConnectionLoss(err)) throw err;
        await this.pauseUntilRecovered(err as Error);
      }
    }
    this.endedAt = m.now();
    m.finish(this.endedAt);
  }

  /** QMP migrate-pause: drop the connections; the send loop sees the loss and pauses. */
  pause(): void {
    this.m.link?.cancel(new TransportError('E_CANCELLED', 'migrate-pause: the source dropped the connection'));
    this.m.pacing.kick();
  }

  /** QMP migrate with resume: the paused loop reconnects with `open` (one resume at a time). */
  requestResume(open: OpenChannel): void {
    if (this.resumeOpen) {
      throw new MigrationControlError(
        'E_BAD_STATE',
        'Cannot resume if there is no paused migration (a resume is starting)',
      );
    }
    this.resumeOpen = open;
    this.resumeWake?.();
  }

  /** The package: POSTCOPY_LISTEN, the device state (FULL sections), PING(3), POSTCOPY_RUN. */
  private buildPackage(): Uint8Array {
    const chunks: Uint8Array[] = [];
    const sink: MigrationSink = {
      writeBuffered: 0,
      write: async (b) => {
        chunks.push(b);
      },
      flush: async () => {},
    };
    const pf = new MigrationFile(sink, { bufferBytes: 256 << 10 });
    pf.put(encodeCommand({ cmd: 'POSTCOPY_LISTEN' }));
    const v = this.m.o.verbatim;
    if (v) {
      if (v.devices[v.devices.length - 1] !== QEMU_VM_EOF) {
        throw new MigrationStreamError('E_STORE_LAYOUT', 'the stored device state does not end with the EOF byte');
      }
      pf.bytes(v.devices.subarray(0, v.devices.length - 1));
    } else writeDeviceSections(pf, this.m.o.handlers);
    pf.put(encodeCommand({ cmd: 'PING', value: 3 }));
    pf.put(encodeCommand({ cmd: 'POSTCOPY_RUN' }));
    pf.emit();
    const pkg = Buffer.concat(chunks);
    if (pkg.length > MAX_VM_CMD_PACKAGED_SIZE) {
      throw new MigrationStreamError('E_BAD_LENGTH', `the postcopy package is ${pkg.length} bytes, over 4 GiB`);
    }
    return pkg;
  }

  /** Step 9: PART sections until done, END, EOF, the preempt EOS, SHUT. */
  private async sendRest(): Promise<void> {
    const m = this.m;
    const io: PostcopyIo = {
      get preempt() {
        return m.link?.preemptStream;
      },
      yield: () => new Promise<void>((r) => setImmediate(r)),
    };
    for (;;) {
      m.throwIfCancelled();
      const link = m.link as OutgoingLink;
      const f = link.file;
      const ctx = m.context(f);
      let pending = 0;
      for (const pc of this.pcs) pending += pc.pending();
      if (!(pending > 0 && pending >= (m.pacing.estimator?.thresholdSize ?? 0))) break;
      if (m.pacing.rateExceeded() && !this.pcs.some((pc) => pc.hasRequests)) {
        await m.pacing.sleepToWindowEnd();
        m.pacing.updateCounters();
        continue;
      }
      for (const { sectionId, postcopy } of this.live) {
        if (!postcopy) continue;
        writeSectionHeader(f, { kind: 'PART', sectionId });
        await postcopy.iterate(ctx, io);
        writeFooter(f, sectionId);
      }
      f.emit();
      m.pacing.updateCounters();
      await io.yield();
    }
    const link = m.link as OutgoingLink;
    const f = link.file;
    const ctx = m.context(f);
    for (const { sectionId, postcopy } of this.live) {
      if (!postcopy) continue;
      writeSectionHeader(f, { kind: 'END', sectionId });
      await postcopy.complete(ctx, io);
      writeFooter(f, sectionId);
    }
    f.u8(QEMU_VM_EOF);
    await f.flush();
    const preempt = link.preemptStream;
    if (preempt) {
      preempt.be64(RAM_SAVE_FLAG_EOS);
      await preempt.flush();
    }
    if (link.rp) await link.rp.waitShut(SHUT_TIMEOUT_MS);
    await link.end();
  }

  /** postcopy_pause: `postcopy-paused` until a resume succeeds (a failed recovery pauses again). */
  private async pauseUntilRecovered(cause: Error): Promise<void> {
    const m = this.m;
    let err = cause;
    for (;;) {
      const e = err as Error & { code?: string };
      m.transition({ type: 'pause', error: e.code ? `${e.code}: ${e.message}` : e.message });
      m.o.log?.(`postcopy paused: ${e.message}`);
      m.link?.cancel(err);
      const open = await this.waitForResume();
      m.transition({ type: 'recover' });
      try {
        await this.recover(open);
        this.recoveries++;
        m.transition({ type: 'resumed' });
        return;
      } catch (e2) {
        if (m.isTerminated) throw e2;
        m.o.log?.(`postcopy recovery failed: ${(e2 as Error).message}`);
        err = e2 as Error;
      }
    }
  }

  private async waitForResume(): Promise<OpenChannel> {
    const m = this.m;
    for (;;) {
      m.throwIfTerminated();
      const open = this.resumeOpen;
      if (open) {
        this.resumeOpen = undefined;
        return open;
      }
      await new Promise<void>((r) => {
        this.resumeWake = r;
        m.onTerminate(r);
      });
      this.resumeWake = undefined;
    }
  }

  /** postcopy_do_resume: new connections, RECV_BITMAP per block, POSTCOPY_RESUME, RESUME_ACK. */
  private async recover(open: OpenChannel): Promise<void> {
    const m = this.m;
    const link = await m.openLink(open);
    m.relinked(link);
    const f = link.file;
    if (m.caps.has('postcopy-preempt')) await link.preempt();
    for (const pc of this.pcs) pc.channelsChanged();
    const rp = link.rp;
    if (!rp) throw new MigrationControlError('E_BAD_STATE', 'a postcopy recovery needs the return path');
    // As QEMU 7.2 (ram_dirty_bitmap_sync_all): every RECV_BITMAP first, then the replies.
    for (const pc of this.pcs) {
      for (const block of pc.recvBitmapBlocks()) f.put(encodeCommand({ cmd: 'RECV_BITMAP', block }));
    }
    await f.flush();
    for (const pc of this.pcs) {
      for (const block of pc.recvBitmapBlocks()) {
        pc.applyReceivedBitmap(block, await rp.recvBitmap(block, RECOVERY_REPLY_TIMEOUT_MS));
      }
    }
    for (const pc of this.pcs) pc.resumePrepare();
    f.put(encodeCommand({ cmd: 'POSTCOPY_RESUME' }));
    await f.flush();
    await rp.resumeAck(RECOVERY_REPLY_TIMEOUT_MS);
  }
}
