import { createHash } from 'node:crypto';
import {
  Capabilities,
  MIGRATION_CAPABILITIES,
  type MigrationCapability,
  type MigrationState,
  type MigrationVm,
  OutgoingMigration,
  Parameters,
  SaveVmHandlers,
} from '@e2k-migrate/migration';
import { RamSaveHandler } from '@e2k-migrate/migration-ram';
import { createGuestMemory, type GuestMemory } from '@e2k-migrate/native';
import { PostcopyRamSource } from '@e2k-migrate/postcopy';
import { connect } from '@e2k-migrate/transports';
import { field, vmsd } from '@e2k-migrate/vmstate';
import type { TestDestination } from './test-destination.js';

export const TPS = 4096;
export const MiB = 1 << 20;

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Seeded xorshift32. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x1_0000_0000;
  };
}

const testDevice = vmsd<{ counter: number; blob: Uint8Array }>({
  name: 'test-dev',
  version: 1,
  fields: [field.uint32('counter'), field.buffer('blob', 64)],
});

export interface TestSource {
  mem: GuestMemory;
  ram: RamSaveHandler;
  pc: PostcopyRamSource;
  out: OutgoingMigration;
  states: MigrationState['status'][];
  /** Target pages the "guest" wrote while it ran. */
  dirtied: Set<number>;
  vm: MigrationVm;
  stop(): void;
}

/**
 * A source VM for library-level tests: one RAM block `pc.ram` (optionally on 2 MiB host pages)
 * filled with a seeded pattern (about 1 page in 8 zero), a "guest" that writes random pages
 * through the memory API (software dirty marking) while the VM runs, one VMState device, and an
 * OutgoingMigration to `dest` with the given capabilities and parameters.
 */
export function startSource(
  dest: TestDestination,
  o: {
    size: number;
    hostPageSize?: number;
    caps: MigrationCapability[];
    params: Record<string, unknown>;
    pagesPerTick?: number;
    seed?: number;
  },
): TestSource {
  const mem = createGuestMemory({ size: o.size, name: 'test-src' });
  const rand = rng(o.seed ?? 1);
  const v = mem.views()[0] as Uint8Array;
  for (let p = 0; p < o.size; p += TPS) {
    if (rand() < 0.125) continue;
    for (let i = 0; i < TPS; i += 256) v[p + i] = 1 + Math.floor(rand() * 255);
  }
  const ram = new RamSaveHandler(
    [{ idstr: 'pc.ram', size: o.size, memory: mem, ...(o.hostPageSize ? { pageSize: o.hostPageSize } : {}) }],
    { tracking: 'software' },
  );
  const pc = new PostcopyRamSource(ram);
  const handlers = new SaveVmHandlers();
  handlers.registerLive({ idstr: 'ram', instanceId: 0, save: ram, postcopy: pc });
  const dev = { counter: 7, blob: new Uint8Array(64).fill(0xab) };
  handlers.registerDevice({
    idstr: 'test-dev',
    instanceId: 0,
    vmsd: testDevice,
    save: () => dev,
    loadTarget: () => dev,
    load: () => {},
  });
  let runState = 'running';
  const dirtied = new Set<number>();
  const pages = o.size / TPS;
  const timer = setInterval(() => {
    if (runState !== 'running') return;
    for (let k = 0; k < (o.pagesPerTick ?? 32); k++) {
      const p = Math.floor(rand() * pages);
      mem.store8(p * TPS + Math.floor(rand() * TPS), 1 + Math.floor(rand() * 255));
      dirtied.add(p);
    }
  }, 2);
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
  const caps = new Capabilities(MIGRATION_CAPABILITIES);
  caps.set(o.caps.map((capability) => ({ capability, state: true })));
  const params = new Parameters();
  params.set(o.params);
  const states: MigrationState['status'][] = [];
  const out = new OutgoingMigration({
    vm,
    handlers,
    caps,
    params,
    machineName: 'pc-test',
    targetPageSize: TPS,
    open: (signal) => connect(dest.uri, { signal }),
    onState: (s) => states.push(s.status),
  });
  return {
    mem,
    ram,
    pc,
    out,
    states,
    dirtied,
    vm,
    stop() {
      clearInterval(timer);
      mem.close();
    },
  };
}

/** Polls until `probe()` is true. */
export async function until(what: string, probe: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Like a faulting guest: after LISTEN, requests `count` host pages that were discarded and not
 * received yet, one after the other; resolves with the channel that delivered each.
 */
export function faultOnDiscarded(dest: TestDestination, block: string, count: number, seed = 3): Promise<number[]> {
  return new Promise((resolve, reject) => {
    dest.onListen = () => {
      void (async () => {
        const rand = rng(seed);
        const hps = dest.hostPageSize.get(block) ?? TPS;
        const channels: number[] = [];
        const candidates: number[] = [];
        for (const d of dest.discards) {
          if (d.block !== block) continue;
          for (let a = d.start; a < d.start + d.length; a += hps) candidates.push(a);
        }
        for (let i = 0; i < count && candidates.length > 0; i++) {
          const at = candidates.splice(Math.floor(rand() * candidates.length), 1)[0] as number;
          if (dest.has(block, at, hps)) continue;
          channels.push(await dest.request(block, at, hps));
        }
        resolve(channels);
      })().catch(reject);
    };
  });
}
