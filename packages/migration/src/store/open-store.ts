import { createHash } from 'node:crypto';
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MigrationStreamError } from '../errors.js';
import { QEMU_VM_EOF } from '../wire/constants.js';
import { STORE_MANIFEST, type StoreManifest, validateManifest } from './manifest.js';

/** A stored migration opened for sending. */
export interface StoredMigration {
  dir: string;
  manifest: StoreManifest;
  /** The configuration record bytes (07 …). */
  configuration: Uint8Array;
  /** Device state: FULL sections through EOF. */
  devices: Uint8Array;
  vmdesc: Uint8Array | undefined;
  /** Absolute path of each block's file, in block-list order. */
  blockPaths: string[];
}

export interface OpenStoreOptions {
  /** Re-hash every file against the manifest before use (default true). */
  verify?: boolean;
}

const READ_CHUNK = 1 << 20;

/**
 * Opens a store directory: validates the manifest, checks that every file exists with the size
 * the manifest gives and (by default) that its sha256 matches, so a damaged store fails before a
 * single byte is sent.
 * @throws MigrationStreamError E_STORE_INVALID naming the file and what differs.
 */
export async function openStore(dir: string, opts: OpenStoreOptions = {}): Promise<StoredMigration> {
  const verify = opts.verify ?? true;
  const manifestPath = join(dir, STORE_MANIFEST);
  let text: string;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch (err) {
    throw invalid(`${dir} is not a stored migration: cannot read ${STORE_MANIFEST} (${(err as Error).message})`, err);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw invalid(`${manifestPath} is not valid JSON: ${(err as Error).message}`, err);
  }
  const manifest = validateManifest(parsed, manifestPath);
  const blockPaths: string[] = [];
  for (const b of manifest.blocks) {
    const path = join(dir, b.file);
    await checkSize(path, b.usedLength, `RAM block "${b.idstr}"`);
    if (verify) await checkSha(path, b.sha256, `RAM block "${b.idstr}"`);
    blockPaths.push(path);
  }
  const devices = await readChecked(join(dir, manifest.devices.file), manifest.devices, 'device state', verify);
  if (devices.length === 0 || devices[devices.length - 1] !== QEMU_VM_EOF) {
    throw invalid(`${join(dir, manifest.devices.file)}: device state must end with the EOF byte 0x00`);
  }
  const vmdesc = manifest.vmdesc
    ? await readChecked(join(dir, manifest.vmdesc.file), manifest.vmdesc, 'vmdesc', verify)
    : undefined;
  return {
    dir,
    manifest,
    configuration: Uint8Array.from(Buffer.from(manifest.configuration, 'hex')),
    devices,
    vmdesc,
    blockPaths,
  };
}

async function checkSize(path: string, size: number, what: string): Promise<void> {
  let actual: number;
  try {
    actual = (await stat(path)).size;
  } catch (err) {
    throw invalid(`${what}: cannot read ${path} (${(err as Error).message})`, err);
  }
  if (actual !== size) throw invalid(`${what}: ${path} is ${actual} bytes, the manifest says ${size}`);
}

async function checkSha(path: string, expected: string, what: string): Promise<void> {
  const h = createHash('sha256');
  const fh = await open(path, 'r');
  try {
    const buf = new Uint8Array(READ_CHUNK);
    let pos = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  } finally {
    await fh.close();
  }
  const actual = h.digest('hex');
  if (actual !== expected) throw invalid(`${what}: ${path} has sha256 ${actual}, the manifest says ${expected}`);
}

async function readChecked(
  path: string,
  f: { bytes: number; sha256: string },
  what: string,
  verify: boolean,
): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (err) {
    throw invalid(`${what}: cannot read ${path} (${(err as Error).message})`, err);
  }
  if (bytes.length !== f.bytes)
    throw invalid(`${what}: ${path} is ${bytes.length} bytes, the manifest says ${f.bytes}`);
  if (verify) {
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== f.sha256) throw invalid(`${what}: ${path} has sha256 ${actual}, the manifest says ${f.sha256}`);
  }
  return bytes;
}

function invalid(message: string, cause?: unknown): MigrationStreamError {
  return new MigrationStreamError('E_STORE_INVALID', message, { record: 'stored migration', cause });
}
