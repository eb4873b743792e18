import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';

/** Root of the fixtures copied into the project (test/fixtures). */
export const FIXTURES = resolve(import.meta.dirname, '..', 'fixtures');
export const QEMU72 = join(FIXTURES, 'qemu-7.2');

/** Path of a fixture file, with or without its `.gz` suffix (whichever is stored). */
export function fixturePath(rel: string): string {
  const p = join(QEMU72, rel);
  if (existsSync(p)) return p;
  if (existsSync(`${p}.gz`)) return `${p}.gz`;
  throw new Error(`fixture ${rel} not found under ${QEMU72}`);
}

/** Whole fixture, decompressed when stored as .gz. Only for small files and reference RAM. */
export function readFixture(rel: string): Uint8Array {
  const p = fixturePath(rel);
  const raw = readFileSync(p);
  return p.endsWith('.gz') ? new Uint8Array(gunzipSync(raw)) : new Uint8Array(raw);
}

export function readFixtureJson<T = unknown>(rel: string): T {
  return JSON.parse(new TextDecoder().decode(readFixture(rel))) as T;
}

export { createReadStream };
