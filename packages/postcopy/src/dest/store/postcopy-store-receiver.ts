import { totalmem } from 'node:os';
import {
  type Configuration,
  DeviceStateCollector,
  type ExtraChannel,
  encodeConfiguration,
  type IncomingChannel,
  IncomingMigration,
  type MigrationState,
  MigrationStreamError,
  type MigrationVm,
  type QueryMigrate,
  type RamSectionHeader,
  RamSectionLoader,
  RamState,
  type ReceivedMigration,
  ReceivedRam,
  SaveVmHandlers,
  type SectionLoader,
} from '@e2k-migrate/migration';
import type { UserfaultChoice } from '../open-userfault.js';
import { PostcopyIncoming } from '../postcopy-incoming.js';
import { GuestBlockMemory } from './guest-block-memory.js';
import { Toucher, type ToucherOptions, type ToucherReport } from './toucher.js';

export interface PostcopyStoreOptions {
  /** Capability postcopy-preempt: the second connection carries urgent pages. */
  preempt?: boolean;
  /** Capability postcopy-blocktime (query-migrate blocktime fields). */
  blocktime?: boolean;
  /** Demand-paging backend (default `auto`: userfaultfd, else cooperative). */
  userfault?: UserfaultChoice;
  /** The toucher started at POSTCOPY_RUN (default: random order); `false`: none. */
  toucher?: ToucherOptions | false;
  /** Bound on the block list's total (default: physical memory). */
  maxRam?: number;
  onState?(state: MigrationState): void;
  onProgress?(bytes: number): void;
  log?(line: string): void;
}

/** A received postcopy migration: the store's view plus what postcopy did. */
export interface PostcopyReceived extends ReceivedMigration {
  /** query-migrate of the destination at completion (postcopy statistics included). */
  query: QueryMigrate;
  /** The toucher, when one ran. */
  toucher: ToucherReport | undefined;
}

/**
 * Receives a QEMU 7.2 migration with postcopy-ram into memory for `writeStore` — QEMU's
 * "postcopy channels on the dest node" with a store as the machine: the RAM blocks of the block
 * list become guest-memory regions (hugetlb for 2 MiB blocks), precopy records go straight in,
 * the postcopy destination (`PostcopyIncoming`) takes over at LISTEN, and at RUN a toucher
 * worker stands in for the vCPUs, reading pages and faulting. Device sections (in the package)
 * are kept verbatim. Driven by `IncomingMigration`: return path, pause on a broken connection,
 * {@link resume} for `migrate-recover`. A stream that never switches to postcopy loads as precopy.
 */
export class PostcopyStoreReceiver {
  readonly incoming: IncomingMigration;
  readonly postcopy: PostcopyIncoming;
  private readonly o: PostcopyStoreOptions;
  private readonly ram: ReceivedRam;
  private readonly devices = new DeviceStateCollector();
  private readonly memories: GuestBlockMemory[] = [];
  private readonly ramSections = { start: 0, part: 0, end: 0 };
  private configuration: Configuration | undefined;
  private ramHeader: RamSectionHeader | undefined;
  private vmdesc: Uint8Array | undefined;
  private rpOpen = false;
  private bytes = 0;
  private toucher: Toucher | undefined;

  constructor(opts: PostcopyStoreOptions = {}) {
    this.o = opts;
    this.ram = new ReceivedRam({
      memory: (req) => {
        const m = new GuestBlockMemory(req);
        this.memories.push(m);
        return m;
      },
      pageSize: 4096,
      maxRam: opts.maxRam ?? totalmem(),
    });
    this.postcopy = new PostcopyIncoming({
      mirror: true,
      blocks: () =>
        this.ram.blocks.map((b) => ({
          name: b.name,
          memory: (b.memory as GuestBlockMemory).memory,
          size: b.size,
          precopyReceived: () => b.received,
        })),
      preempt: opts.preempt === true,
      blocktime: opts.blocktime === true,
      userfault: opts.userfault ?? 'auto',
      vcpuTids: () => (this.toucher ? [this.toucher.tid] : []),
      ...(opts.log ? { log: opts.log } : {}),
    });
    const ramLoader = new RamSectionLoader(new RamState(), this.ram);
    const devices = this.devices;
    // Device sections sit in the postcopy package (depth 1); the store keeps them as if sent after the RAM.
    const deviceLoader: SectionLoader = {
      load: (ctx) => devices.load({ ...ctx, section: { ...ctx.section, depth: 0 } }),
    };
    const vm = this.storeVm();
    this.incoming = new IncomingMigration({
      vm,
      handlers: new SaveVmHandlers(),
      autostart: true,
      postcopy: this.postcopy,
      resolver: { resolve: (s) => (s.idstr === 'ram' ? ramLoader : deviceLoader) },
      onState: (s) => opts.onState?.(s),
      visitor: {
        configuration: (c) => {
          this.configuration = c;
        },
        sectionBegin: (s) => {
          if (this.configuration === undefined) throw noConfiguration(s.offset);
          if (s.idstr !== 'ram') return;
          if (s.kind === 'START') {
            if (this.ramHeader) {
              throw new MigrationStreamError('E_STORE_LAYOUT', `a second ram START at byte offset ${s.offset}`, {
                offset: s.offset,
                section: s.label,
              });
            }
            this.ramHeader = { sectionId: s.sectionId, instanceId: s.instanceId, versionId: s.versionId };
            this.ramSections.start++;
          } else if (s.kind === 'PART') this.ramSections.part++;
          else this.ramSections.end++;
        },
        command: (c, place) => {
          if (this.configuration === undefined) throw noConfiguration(place.offset);
          if (c.cmd === 'OPEN_RETURN_PATH') this.rpOpen = true;
        },
        eof: () => devices.eof(),
        vmdesc: (json) => {
          this.vmdesc = json.slice();
        },
      },
    });
  }

  /**
   * Receives the migration from its main connection (and the preempt connection); resolves once
   * it is complete, rejects with the typed error that failed it (after releasing the memory).
   */
  async receive(main: IncomingChannel, preempt?: ExtraChannel): Promise<PostcopyReceived> {
    const state = await this.incoming.load(this.counted(main), preempt ? { preempt } : {});
    const toucher = await this.toucher?.stop().catch(() => undefined);
    if (state.status !== 'completed') {
      this.release();
      throw this.incoming.error ?? new MigrationStreamError('E_IO', `the migration ended in state ${state.status}`);
    }
    if (this.configuration === undefined || this.ramHeader === undefined || this.ramSections.end === 0) {
      this.release();
      throw new MigrationStreamError(
        'E_STORE_LAYOUT',
        `the stream ended without ${this.ramHeader ? 'a ram END' : 'a ram START'} section`,
        {
          section: 'ram',
        },
      );
    }
    const pc = this.postcopy.query() as { 'x-postcopy-records'?: { normal: number; duplicate: number } };
    const counts = { ...this.ram.counts };
    counts.normal += pc['x-postcopy-records']?.normal ?? 0;
    counts.duplicate += pc['x-postcopy-records']?.duplicate ?? 0;
    return {
      configuration: this.configuration,
      configurationBytes: encodeConfiguration(this.configuration).written().slice(),
      pageSize: 4096,
      ramSection: this.ramHeader,
      blocks: this.ram.blocks,
      counts,
      ramSections: this.ramSections,
      devices: this.devices.result(),
      deviceSections: this.devices.sections,
      vmdesc: this.vmdesc,
      bytes: this.bytes,
      returnPath: this.rpOpen,
      close: () => this.release(),
      query: this.incoming.query(),
      toucher,
    };
  }

  /** `migrate-recover`: a new main connection (and preempt connection) for a paused migration. */
  resume(main: IncomingChannel, preempt?: ExtraChannel): void {
    this.incoming.resume(this.counted(main), preempt);
  }

  /** The destination's query-migrate, with the toucher's progress. */
  query(): QueryMigrate {
    const q = this.incoming.query();
    if (this.toucher) q['x-toucher'] = { tid: this.toucher.tid, touched: this.toucher.touched };
    return q;
  }

  private storeVm(): MigrationVm {
    let runState = 'inmigrate';
    return {
      get runState() {
        return runState;
      },
      stopForMigration: async () => undefined,
      setRunState: (s) => {
        runState = s;
      },
      // POSTCOPY_RUN: the "guest" starts — a toucher reads the RAM and faults on what is missing.
      start: async () => {
        runState = 'running';
        if (this.postcopy.phase !== 'running' || this.o.toucher === false) return;
        const handles = this.ram.blocks.map((b) => (b.memory as GuestBlockMemory).memory.handle);
        this.toucher = await Toucher.start(handles, this.o.toucher ?? {});
        this.o.log?.(`toucher started (tid ${this.toucher.tid})`);
      },
      setThrottle: () => undefined,
      loadedRunState: () => undefined,
    };
  }

  /** The channel with its received bytes counted (x-bytes of the result, progress). */
  private counted(ch: IncomingChannel): IncomingChannel {
    const write = ch.write?.bind(ch);
    const flush = ch.flush?.bind(ch);
    return {
      chunks: () => this.count(ch.chunks()),
      cancel: (r) => ch.cancel(r),
      close: () => ch.close(),
      ...(write ? { write } : {}),
      ...(flush ? { flush } : {}),
    };
  }

  private async *count(input: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    for await (const c of input) {
      this.bytes += c.length;
      this.o.onProgress?.(this.bytes);
      yield c;
    }
  }

  private release(): void {
    for (const m of this.memories) {
      try {
        m.close();
      } catch (err) {
        this.o.log?.(`releasing RAM block ${m.name}: ${(err as Error).message}`);
      }
    }
  }
}

function noConfiguration(at: number): MigrationStreamError {
  return new MigrationStreamError(
    'E_BAD_CONFIGURATION',
    `record at byte offset ${at} comes before any configuration record: QEMU 7.2 requires the configuration right after the header`,
    { offset: at, record: 'configuration' },
  );
}
