import { mkdir, open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { MigrationStreamError } from '../errors.js';
import type { RamImage } from './ram-image.js';

/** One extracted RAM block file. */
export interface ExtractedBlock {
  block: string;
  file: string;
  bytes: number;
  /** Bytes actually written (the rest are holes). */
  dataBytes: number;
  sha256: string;
}

/**
 * Maps a RAMBlock idstr to a relative path the way analyze-migration.py lays files out
 * (`/rom@etc/acpi/tables` → `rom@etc/acpi/tables`), but never outside the directory:
 * `.`/`..` components and NUL bytes are escaped.
 */
export function blockFileName(block: string): string {
  const parts = block
    .split('/')
    .filter((p) => p.length > 0)
    .map((p) => (p === '..' ? '%2E%2E' : p === '.' ? '%2E' : p.replaceAll('%', '%25').replaceAll('\u0000', '%00')));
  return parts.length ? parts.join('/') : '%2F';
}

/**
 * Writes every reconstructed block to `dir` as a sparse file: the file is sized to the block's
 * used_length and only non-zero pages are written, so zero pages stay holes.
 */
export async function extractRam(image: RamImage, dir: string): Promise<ExtractedBlock[]> {
  const out: ExtractedBlock[] = [];
  const page = image.pageSize;
  const zero = new Uint8Array(page);
  for (const ram of image.blockList) {
    const rel = blockFileName(ram.name);
    const file = join(dir, rel);
    let data = 0;
    try {
      await mkdir(dirname(file), { recursive: true });
      const fh = await open(file, 'w');
      try {
        await fh.truncate(ram.size);
        for (const { offset, bytes } of ram.allocated()) {
          let run = -1;
          for (let p = 0; p <= bytes.length; p += page) {
            const isZero =
              p >= bytes.length ||
              Buffer.compare(
                bytes.subarray(p, Math.min(p + page, bytes.length)),
                zero.subarray(0, Math.min(page, bytes.length - p)),
              ) === 0;
            if (!isZero && run < 0) run = p;
            if (isZero && run >= 0) {
              await fh.write(bytes, run, p - run, offset + run);
              data += p - run;
              run = -1;
            }
          }
        }
      } finally {
        await fh.close();
      }
    } catch (err) {
      throw new MigrationStreamError('E_IO', `writing RAM block "${ram.name}" to ${file}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    out.push({ block: ram.name, file, bytes: ram.size, dataBytes: data, sha256: ram.sha256() });
  }
  return out;
}
