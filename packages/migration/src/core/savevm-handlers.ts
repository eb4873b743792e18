import type { Vmsd } from '@e2k-migrate/vmstate';
import type { SectionLoader } from '../stream/section-loader.js';
import type { Capabilities } from './capabilities.js';
import type { MigrationFile } from './migration-file.js';
import type { Parameters } from './parameters.js';
import type { PostcopySaveHandler } from './postcopy-save.js';
import type { QueryMigrate } from './stats.js';

/**
 * What the outgoing driver gives a live handler on every call: the stream, the settings of this
 * migration and the hooks into the driver's rate limit, statistics and auto-converge.
 */
export interface SaveContext {
  readonly file: MigrationFile;
  readonly caps: Capabilities;
  readonly params: Parameters;
  /** `performance.now()`-style clock in ms. */
  now(): number;
  /**
   * `file.bytesWritten` value at which this rate-limit window is used up (Infinity when
   * unlimited): a handler stops producing once past it (QEMU's qemu_file_rate_limit).
   */
  rateLimitEnd(): number;
  /** The guest runs (its bytes count as precopy-bytes, else downtime-bytes). */
  vmRunning(): boolean;
  /** Cancel was requested: long loops return early. */
  cancelled(): boolean;
  /** A dirty-bitmap sync happened (QMP MIGRATION_PASS). */
  onDirtySync(pass: number): void;
  /**
   * A sync closed a ≥ 1 s period: auto-converge decides whether to throttle the vCPUs
   * (QEMU's migration_trigger_throttle), when the capability is on.
   */
  onSyncPeriod(bytesDirtyPeriod: number, bytesXferPeriod: number): void;
}

/**
 * An iterable ("live") save handler, like QEMU's `ram`: a START section at setup, PART sections
 * while the guest runs, an END section with the VM stopped. Each method writes only the section
 * body; the driver writes headers and footers.
 */
export interface LiveSaveHandler {
  readonly idstr: string;
  readonly instanceId: number;
  readonly version: number;
  /** START body (`save_setup`). */
  setup(ctx: SaveContext): Promise<void>;
  /**
   * PART body (`save_live_iterate`), bounded by the rate limit and time. Resolves true when the
   * handler has nothing more to send in this round (QEMU's "done").
   */
  iterate(ctx: SaveContext): Promise<boolean>;
  /** END body with the VM stopped (`save_live_complete_precopy`): everything left, no rate limit. */
  complete(ctx: SaveContext): Promise<void>;
  /**
   * Bytes still to send (`save_live_pending`); re-synchronises its dirty state first when the
   * estimate is below `thresholdBytes`, as QEMU's ram does.
   */
  pending(thresholdBytes: number, ctx: SaveContext): number;
  /** Releases what setup allocated (dirty tracking, caches); called once per migration. */
  cleanup(): void;
  /** Bytes that were dirty at the last sync (QEMU's ram_counters.remaining, for expected-downtime). */
  remainingAtSync?(): number;
  /** Statistics for `query-migrate` (QEMU field names): `ram`, `xbzrle-cache`. */
  stats?(): Pick<QueryMigrate, 'ram' | 'xbzrle-cache'>;
}

/**
 * A device whose state is one VMState description (QEMU's `vmstate_register`): saved as a FULL
 * section at completion, loaded by decoding into `loadTarget()` then `load()`. The E2K machine's
 * `DeviceSection`s have exactly this shape.
 */
export interface DeviceStateHandler<S = unknown> {
  readonly idstr: string;
  readonly instanceId: number;
  readonly vmsd: Vmsd<S>;
  save(): S;
  loadTarget(): S;
  load(state: S): void;
}

/** One registered handler with the section id it got at registration. */
export type SaveVmEntry =
  | {
      kind: 'live';
      sectionId: number;
      save?: LiveSaveHandler;
      load?: SectionLoader;
      /** The handler can continue in postcopy (QEMU: it has save_live_complete_postcopy). */
      postcopy?: PostcopySaveHandler;
      idstr: string;
      instanceId: number;
    }
  | { kind: 'device'; sectionId: number; device: DeviceStateHandler; idstr: string; instanceId: number };

/**
 * QEMU's SaveVMHandlers list: handlers in registration order (all at the default priority), each
 * with a section id from a global counter assigned when it is registered — never when sent — so
 * ids are stable for the life of the VM and PART/END sections can refer to them.
 */
export class SaveVmHandlers {
  private readonly list: SaveVmEntry[] = [];
  private nextSectionId = 0;
  /** Cross-section checks after every section was loaded (e.g. timer against step counts). */
  afterLoad: (() => void) | undefined;

  /**
   * Registers an iterable handler (save side, load side or both, and its postcopy side); returns
   * its section id. `sectionId` pins the id (a stored migration re-sent with its original ids);
   * the counter continues after it.
   */
  registerLive(h: {
    idstr: string;
    instanceId: number;
    save?: LiveSaveHandler;
    load?: SectionLoader;
    postcopy?: PostcopySaveHandler;
    sectionId?: number;
  }): number {
    const { sectionId: pinned, ...rest } = h;
    const sectionId = pinned ?? this.nextSectionId;
    this.nextSectionId = Math.max(this.nextSectionId, sectionId + 1);
    this.list.push({ kind: 'live', sectionId, ...rest });
    return sectionId;
  }

  /** Registers a VMState device; returns its section id. */
  registerDevice(device: DeviceStateHandler): number {
    const sectionId = this.nextSectionId++;
    this.list.push({ kind: 'device', sectionId, device, idstr: device.idstr, instanceId: device.instanceId });
    return sectionId;
  }

  /** Every handler in save order. */
  entries(): readonly SaveVmEntry[] {
    return this.list;
  }

  /** Iterable handlers with a save side, in order (with their postcopy side when they have one). */
  live(): { sectionId: number; handler: LiveSaveHandler; postcopy?: PostcopySaveHandler }[] {
    const out: { sectionId: number; handler: LiveSaveHandler; postcopy?: PostcopySaveHandler }[] = [];
    for (const e of this.list) {
      if (e.kind !== 'live' || !e.save) continue;
      out.push({ sectionId: e.sectionId, handler: e.save, ...(e.postcopy ? { postcopy: e.postcopy } : {}) });
    }
    return out;
  }

  /** VMState devices, in order. */
  devices(): { sectionId: number; device: DeviceStateHandler }[] {
    const out: { sectionId: number; device: DeviceStateHandler }[] = [];
    for (const e of this.list) if (e.kind === 'device') out.push({ sectionId: e.sectionId, device: e.device });
    return out;
  }
}
