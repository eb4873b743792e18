import { open } from 'node:fs/promises';
import { type MigrationVm, SaveVmHandlers, type StoredMigration, type VerbatimState } from '@e2k-migrate/migration';
import { RamSaveHandler } from '@e2k-migrate/migration-ram';
import { createGuestMemory, type GuestMemory } from '@e2k-migrate/native';
import { PostcopySourceError } from './errors.js';
import { PostcopyRamSource } from './postcopy-ram-source.js';

export interface StoreSourceOptions {
  /**
   * Host page size per block (bytes), overriding the manifest: a precopy stream does not carry
   * it (QEMU sends a block's page size only with postcopy-ram), so a store received from a
   * hugetlb guest says 4096 unless told.
   */
  hostPageSizes?: Readonly<Record<string, number>>;
  /** `x-postcopy-preempt-break-huge` (default true). */
  breakHuge?: boolean;
}

/** A stored migration set up as a migration source (the VM it describes, stopped on disk). */
export interface StoreSource {
  /** The `ram` handler (with its postcopy side) pinned to the stored section id. */
  readonly handlers: SaveVmHandlers;
  readonly ram: RamSaveHandler;
  readonly postcopy: PostcopyRamSource;
  /** A VM that "runs" until the migration stops it (so precopy bytes count as such). */
  readonly vm: MigrationVm;
  /** The stored configuration record, device state and vmdesc, sent verbatim. */
  readonly verbatim: VerbatimState;
  readonly machine: string;
  readonly targetPageSize: number;
  /** Releases the memory holding the RAM. */
  close(): void;
}

/**
 * Loads a stored migration's RAM into guest memory and wraps it as a migration source: the
 * outgoing driver then sends it like a live VM — precopy passes under the rate limit, the switch
 * to postcopy, page requests, recovery — with the stored device state in the package (or after
 * END in precopy). Nothing dirties the memory, so precopy converges after one pass unless the
 * switch to postcopy comes first.
 */
export async function openStoreSource(store: StoredMigration, opts: StoreSourceOptions = {}): Promise<StoreSource> {
  const m = store.manifest;
  const memories: GuestMemory[] = [];
  try {
    const blocks = [];
    for (const [i, b] of m.blocks.entries()) {
      const hps = opts.hostPageSizes?.[b.idstr] ?? b.pageSize;
      if (!Number.isInteger(Math.log2(hps)) || hps < m.targetPageSize || b.usedLength % hps !== 0) {
        throw new PostcopySourceError(
          'E_BAD_ARGUMENT',
          `stored RAM block "${b.idstr}": host page size ${hps} is not a power of two ≥ ${m.targetPageSize} dividing ${b.usedLength}`,
          { block: b.idstr },
        );
      }
      const mem = createGuestMemory({ size: b.usedLength, kind: 'anonymous', name: `store-${b.idstr}` });
      memories.push(mem);
      await readInto(store.blockPaths[i] as string, mem);
      blocks.push({ idstr: b.idstr, size: b.usedLength, memory: mem, pageSize: hps });
    }
    const ram = new RamSaveHandler(blocks, { targetPageSize: m.targetPageSize, tracking: 'software' });
    const postcopy = new PostcopyRamSource(ram, { breakHuge: opts.breakHuge ?? true });
    const handlers = new SaveVmHandlers();
    handlers.registerLive({
      idstr: 'ram',
      instanceId: m.ramSection.instanceId,
      save: ram,
      postcopy,
      sectionId: m.ramSection.sectionId,
    });
    let runState = 'running';
    const vm: MigrationVm = {
      get runState() {
        return runState;
      },
      async stopForMigration() {
        runState = 'finish-migrate';
      },
      setRunState(s) {
        runState = s;
      },
      async start() {
        runState = 'running';
      },
      setThrottle() {},
    };
    return {
      handlers,
      ram,
      postcopy,
      vm,
      verbatim: {
        configuration: store.configuration,
        devices: store.devices,
        ...(store.vmdesc ? { vmdesc: store.vmdesc } : {}),
      },
      machine: m.machine,
      targetPageSize: m.targetPageSize,
      close() {
        for (const mem of memories) mem.close();
      },
    };
  } catch (err) {
    for (const mem of memories) mem.close();
    throw err;
  }
}

/** Reads a block file straight into the memory's views. */
async function readInto(path: string, mem: GuestMemory): Promise<void> {
  const fh = await open(path, 'r');
  try {
    let pos = 0;
    for (const view of mem.views()) {
      let got = 0;
      while (got < view.length) {
        const { bytesRead } = await fh.read(view, got, Math.min(view.length - got, 16 << 20), pos + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      pos += view.length;
    }
  } finally {
    await fh.close();
  }
}
