import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { type ReceivedMigration, receiveMigration, type StoreManifest } from '@e2k-migrate/migration';
import { fixturePath, readFixtureJson } from '@e2k-migrate/test-support';
import { afterAll, afterEach, beforeAll } from 'vitest';
import {
  checkGuestInvariant,
  e2kBuilt,
  killAllE2k,
  killAllQemu,
  migrate,
  paceUntilSyncs,
  QemuProcess,
  runE2k,
  serialMarkers,
  setParameters,
  waitFor,
  waitForMigration,
} from '../../tools/src/qemu/index.js';

const MiB = 1 << 20;

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** The uncompressed sha256 of a fixture file, from MANIFEST.json. */
export function fixtureSha(rel: string): string {
  const manifest = readFixtureJson<{ file: string; sha256: string; uncompressed_sha256?: string }[]>('MANIFEST.json');
  const e = manifest.find((m) => m.file === rel || m.file === `${rel}.gz`);
  if (!e) throw new Error(`${rel} is not in the fixtures' MANIFEST.json`);
  return e.uncompressed_sha256 ?? e.sha256;
}

/** The fixture streams that are single-channel precopy (the ones `incoming` can receive). */
export const PRECOPY_FIXTURES = [
  'none-32M',
  'none-32M-pattern',
  'idle-pc-64M',
  'bootblock-stopped',
  'bootblock-live',
  'bootblock-xbzrle',
] as const;

/** A fixture's stream as decompressed chunks, read lazily. */
export function fixtureStream(name: string): AsyncIterable<Uint8Array> {
  const path = fixturePath(`${name}/${name}.mig`);
  const file = createReadStream(path, { highWaterMark: 1 << 20 });
  return path.endsWith('.gz') ? file.pipe(createGunzip({ chunkSize: 1 << 20 })) : file;
}

export async function receiveFixture(name: string): Promise<ReceivedMigration> {
  return receiveMigration({ input: fixtureStream(name) });
}

/** `cmd` that writes a fixture stream to stdout (for `exec:` URIs). */
export function fixtureCatCommand(name: string): string {
  const path = fixturePath(`${name}/${name}.mig`);
  return path.endsWith('.gz') ? `gzip -dc '${path}'` : `cat '${path}'`;
}

/** The fixture summary's records (offsets of sections, EOF, vmdesc). */
export function fixtureRecords(name: string): { off: number; type: string; idstr?: string }[] {
  return readFixtureJson<{ records: { off: number; type: string; idstr?: string }[] }>(`${name}/${name}.summary.json`)
    .records;
}

/** sha256 of every RAM block the fixture's reference parser rebuilt. */
export function fixtureBlockShas(name: string): Record<string, string> {
  return readFixtureJson<{ ram_sha256: Record<string, string> }>(`${name}/${name}.summary.json`).ram_sha256;
}

/**
 * `p`, or after `ms` an error whose message `describe()` builds (the state of the parties): for
 * steps that could hang, so a failure says where things stood instead of a bare test timeout.
 */
export async function within<T>(p: Promise<T>, ms: number, describe: () => Promise<string> | string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      Promise.resolve()
        .then(describe)
        .then(
          (m) => reject(new Error(`after ${ms} ms: ${m}`)),
          (e: Error) => reject(new Error(`after ${ms} ms (describing failed: ${e.message})`)),
        );
    }, ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

export async function tempDir(label: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `e2k-${label}-`));
}

/**
 * The lifecycle every live interop suite shares, registered in the calling `describe`: before all,
 * the CLI must be built and a fresh work directory is made (then `setup(dir)` runs, e.g. to record
 * a store); after each test every QEMU and e2k-migrate child is killed by PID; after all, the
 * directory is removed. Returns the directory's getter.
 */
export function liveSuite(
  label: string,
  setup?: (dir: string) => Promise<void>,
  setupTimeoutMs?: number,
): () => string {
  let dir = '';
  beforeAll(async () => {
    if (!e2kBuilt()) throw new Error('the CLI is not built: run `pnpm build` before the interop tests');
    dir = await tempDir(label);
    await setup?.(dir);
  }, setupTimeoutMs);
  afterEach(async () => {
    killAllE2k();
    await killAllQemu();
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return () => dir;
}

export async function readManifest(dir: string): Promise<StoreManifest> {
  return JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as StoreManifest;
}

/** The stored bytes of one RAM block. */
export async function storedBlock(dir: string, idstr: string): Promise<Uint8Array> {
  const m = await readManifest(dir);
  const b = m.blocks.find((x) => x.idstr === idstr);
  if (!b) throw new Error(`no block ${idstr} in ${dir}`);
  return new Uint8Array(await readFile(join(dir, b.file)));
}

/** The machine options of the boot-sector guest, on 4 KiB pages or on a 2 MiB hugetlb memfd. */
export function guestArgs(huge: boolean, memMiB: number): string[] {
  return huge
    ? [
        '-machine',
        'memory-backend=mem',
        '-object',
        `memory-backend-memfd,id=mem,size=${memMiB}M,hugetlb=on,hugetlbsize=2M`,
      ]
    : [];
}

/**
 * A live precopy migration of the running boot-sector guest (32 MiB) out of QEMU, stored by
 * `e2k-migrate incoming --store DIR` and checked against QEMU's pmemsave; returns the guest's
 * pass counter at the end.
 */
export async function recordStore(dir: string, huge: boolean): Promise<number> {
  const src = await QemuProcess.start({
    machine: 'pc',
    memMiB: 32,
    boot: true,
    name: huge ? 'store-src-huge' : 'store-src',
    extraArgs: guestArgs(huge, 32),
  });
  try {
    await waitFor('the guest to print B', async () => (serialMarkers(await src.serial()).b > 0 ? true : undefined));
    const inc = runE2k(['incoming', 'tcp:127.0.0.1:0', '--store', dir, '--json']);
    const uri = (await inc.waitForStderr(/listening on (\S+)/))[1] as string;
    await setParameters(src.qmp, { 'max-bandwidth': 64 * MiB, 'downtime-limit': 1 });
    await migrate(src.qmp, uri);
    await waitForMigration(src.qmp, { onPoll: paceUntilSyncs(src.qmp, 2), timeoutMs: 120_000 });
    if ((await inc.exit) !== 0) throw new Error(`incoming failed: ${inc.stderr()}`);
    const pmem = await src.pmemsave(0, 32 * MiB);
    const m = await readManifest(dir);
    if (m.blocks[0]?.sha256 !== sha256(pmem)) throw new Error('stored RAM differs from the source');
    return checkGuestInvariant(pmem).passes;
  } finally {
    await src.kill();
  }
}
