import { createHash } from 'node:crypto';
import { access, mkdir, open, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { MigrationStreamError } from '../errors.js';
import {
  STORE_FORMAT,
  STORE_MANIFEST,
  STORE_VERSION,
  type StoreBlock,
  type StoreManifest,
  storeBlockFileName,
} from './manifest.js';
import type { ReceivedMigration } from './receive-migration.js';
import type { ReceivedBlock } from './received-ram.js';

/** Pages handled per step when writing a block (1 MiB with 4 KiB pages). */
const PAGES_PER_STEP = 256;

/**
 * Makes sure `dir` can take a new stored migration before anything is received: creates it if
 * needed and refuses one that already holds a manifest.
 * @throws MigrationStreamError E_STORE_INVALID / E_IO.
 */
export async function prepareStoreDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw new MigrationStreamError('E_IO', `cannot create store directory ${dir}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const exists = await access(join(dir, STORE_MANIFEST)).then(
    () => true,
    () => false,
  );
  if (exists) {
    throw new MigrationStreamError(
      'E_STORE_INVALID',
      `${dir} already holds a stored migration (${STORE_MANIFEST}); choose an empty directory`,
      { record: 'store directory' },
    );
  }
}

export interface WriteStoreOptions {
  /** Capabilities the receiving side ran with (recorded in the manifest). */
  capabilities: readonly string[];
  /** Seconds the receive took. */
  seconds: number;
}

/**
 * Writes a received migration into `dir`: one sparse file per RAM block (zero pages are holes),
 * `devices.bin`, `vmdesc.json` (when present) and, last, `manifest.json` (written to a temporary
 * name and renamed, so a directory with a manifest always holds a complete store).
 */
export async function writeStore(dir: string, m: ReceivedMigration, opts: WriteStoreOptions): Promise<StoreManifest> {
  await mkdir(join(dir, 'ram'), { recursive: true });
  const blocks: StoreBlock[] = [];
  for (const [i, b] of m.blocks.entries()) {
    const file = storeBlockFileName(i, b.name);
    const { sha256, dataPages } = await writeBlockFile(join(dir, file), b);
    blocks.push({
      idstr: b.name,
      usedLength: b.size,
      pageSize: b.pageSize,
      ...(b.mrAddr !== undefined ? { mrAddr: b.mrAddr } : {}),
      file,
      sha256,
      dataPages,
    });
  }
  await writeFile(join(dir, 'devices.bin'), m.devices);
  if (m.vmdesc) await writeFile(join(dir, 'vmdesc.json'), m.vmdesc);
  const manifest: StoreManifest = {
    format: STORE_FORMAT,
    version: STORE_VERSION,
    machine: m.configuration.machine,
    configuration: Buffer.from(m.configurationBytes).toString('hex'),
    capabilities: [...opts.capabilities],
    targetPageSize: m.pageSize,
    ramSection: m.ramSection,
    blocks,
    devices: { file: 'devices.bin', bytes: m.devices.length, sha256: sha256Of(m.devices), sections: m.deviceSections },
    vmdesc: m.vmdesc ? { file: 'vmdesc.json', bytes: m.vmdesc.length, sha256: sha256Of(m.vmdesc) } : null,
    received: {
      bytes: m.bytes,
      records: {
        normal: m.counts.normal,
        duplicate: m.counts.duplicate,
        xbzrle: m.counts.xbzrle,
        compressed: m.counts.compressed,
      },
      sections: m.ramSections,
      returnPath: m.returnPath,
      seconds: opts.seconds,
      completedAt: new Date().toISOString(),
    },
  };
  const tmp = join(dir, `${STORE_MANIFEST}.tmp`);
  await writeFile(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
  await rename(tmp, join(dir, STORE_MANIFEST));
  return manifest;
}

/** Writes the non-zero pages of a block at their offsets into a file of the block's size. */
async function writeBlockFile(path: string, b: ReceivedBlock): Promise<{ sha256: string; dataPages: number }> {
  const ps = b.memory.pageSize;
  const pages = b.size / ps;
  const zero = new Uint8Array(ps);
  const hash = createHash('sha256');
  let dataPages = 0;
  await mkdir(dirname(path), { recursive: true });
  const fh = await open(path, 'w');
  try {
    await fh.truncate(b.size);
    for (let first = 0; first < pages; first += PAGES_PER_STEP) {
      const count = Math.min(PAGES_PER_STEP, pages - first);
      const view = b.memory.pageView(first, count);
      hash.update(view);
      let run = -1;
      for (let p = 0; p <= count; p++) {
        const isZero = p === count || Buffer.compare(view.subarray(p * ps, (p + 1) * ps), zero) === 0;
        if (!isZero) dataPages++;
        if (!isZero && run < 0) run = p;
        if (isZero && run >= 0) {
          await fh.write(view, run * ps, (p - run) * ps, (first + run) * ps);
          run = -1;
        }
      }
    }
  } finally {
    await fh.close();
  }
  return { sha256: hash.digest('hex'), dataPages };
}

function sha256Of(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}
