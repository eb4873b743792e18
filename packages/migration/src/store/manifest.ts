import { MigrationStreamError } from '../errors.js';

/** Name of the manifest inside a store directory. */
export const STORE_MANIFEST = 'manifest.json';
/** Value of `format` in every manifest. */
export const STORE_FORMAT = 'e2k-migrate/qemu-migration-store';
export const STORE_VERSION = 1;

/** One RAM block of a stored migration. */
export interface StoreBlock {
  /** RAMBlock idstr, e.g. `pc.ram`, `/rom@etc/acpi/tables`. */
  idstr: string;
  /** used_length in bytes (also the file's size). */
  usedLength: number;
  /** Host page size of the block (4096 unless the block is on huge pages). */
  pageSize: number;
  /** x-ignore-shared: the MemoryRegion addr sent in the block list. */
  mrAddr?: number;
  /** File name relative to the store directory (sparse: zero pages are holes). */
  file: string;
  /** sha256 of the whole block (= of the file). */
  sha256: string;
  /** Pages with non-zero content. */
  dataPages: number;
}

/** A stored file other than RAM. */
export interface StoreFile {
  file: string;
  bytes: number;
  sha256: string;
}

/** The manifest of a stored migration directory (`manifest.json`). */
export interface StoreManifest {
  format: typeof STORE_FORMAT;
  version: typeof STORE_VERSION;
  /** Machine type from the configuration record, e.g. `pc-i440fx-7.2`, `none`. */
  machine: string;
  /** The configuration record exactly as received (hex of `07 …`). */
  configuration: string;
  /** Capabilities the receiving side ran with. */
  capabilities: string[];
  /** Target page size. */
  targetPageSize: number;
  /** Header fields of the `ram` section, re-used when sending. */
  ramSection: { sectionId: number; instanceId: number; versionId: number };
  blocks: StoreBlock[];
  /** Device state: the bytes after the last ram section through EOF (opaque FULL sections). */
  devices: StoreFile & {
    sections: {
      idstr: string;
      instanceId: number;
      versionId: number;
      sectionId: number;
      offset: number;
      length: number;
    }[];
  };
  /** The vmdesc JSON, when the stream had one. */
  vmdesc: StoreFile | null;
  /** How the migration was received. */
  received: {
    bytes: number;
    records: { normal: number; duplicate: number; xbzrle: number; compressed: number };
    sections: { start: number; part: number; end: number };
    returnPath: boolean;
    seconds: number;
    completedAt: string;
  };
}

/**
 * The file name of block `index`: its position, then its idstr with every character outside
 * `[A-Za-z0-9._@:+-]` replaced by `_` (idstrs hold `/`), so any idstr maps inside `ram/`.
 */
export function storeBlockFileName(index: number, idstr: string): string {
  const safe = idstr.replace(/[^A-Za-z0-9._@:+-]/g, '_').replace(/^\.+/, '_');
  return `ram/${String(index).padStart(2, '0')}-${safe}.bin`;
}

/**
 * Checks a parsed manifest's shape and the values a sender relies on.
 * @throws MigrationStreamError E_STORE_INVALID naming the field.
 */
export function validateManifest(v: unknown, where: string): StoreManifest {
  const fail = (what: string): never => {
    throw new MigrationStreamError('E_STORE_INVALID', `${where}: ${what}`, { record: 'store manifest' });
  };
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return fail('not a JSON object');
  const m = v as Record<string, unknown>;
  if (m.format !== STORE_FORMAT) fail(`"format" is ${JSON.stringify(m.format)}, expected "${STORE_FORMAT}"`);
  if (m.version !== STORE_VERSION) fail(`"version" is ${JSON.stringify(m.version)}, expected ${STORE_VERSION}`);
  if (typeof m.machine !== 'string' || m.machine === '') fail('"machine" must be a non-empty string');
  if (typeof m.configuration !== 'string' || !/^07([0-9a-f]{2})+$/.test(m.configuration)) {
    fail('"configuration" must be the hex of a configuration record (07 …)');
  }
  if (!Array.isArray(m.capabilities) || m.capabilities.some((c) => typeof c !== 'string')) {
    fail('"capabilities" must be an array of names');
  }
  if (m.targetPageSize !== 4096) fail(`"targetPageSize" is ${JSON.stringify(m.targetPageSize)}, expected 4096`);
  const rs = m.ramSection as Record<string, unknown> | undefined;
  if (!rs || !['sectionId', 'instanceId', 'versionId'].every((k) => isU32(rs[k]))) {
    fail('"ramSection" needs sectionId, instanceId and versionId (u32)');
  }
  if (!Array.isArray(m.blocks) || m.blocks.length === 0) fail('"blocks" must be a non-empty array');
  const names = new Set<string>();
  for (const [i, b] of (m.blocks as Record<string, unknown>[]).entries()) {
    const at = `blocks[${i}]`;
    if (b === null || typeof b !== 'object') fail(`${at} is not an object`);
    if (typeof b.idstr !== 'string' || b.idstr.length === 0 || b.idstr.length > 255) fail(`${at}.idstr is invalid`);
    if (names.has(b.idstr as string)) fail(`${at}.idstr "${b.idstr}" is listed twice`);
    names.add(b.idstr as string);
    if (!isSize(b.usedLength) || (b.usedLength as number) % 4096 !== 0) {
      fail(`${at}.usedLength must be a positive multiple of 4096`);
    }
    if (!isSize(b.pageSize)) fail(`${at}.pageSize is invalid`);
    if (b.mrAddr !== undefined && !(Number.isSafeInteger(b.mrAddr) && (b.mrAddr as number) >= 0)) {
      fail(`${at}.mrAddr is invalid`);
    }
    checkFileName(b.file, `${at}.file`, fail);
    if (!isSha(b.sha256)) fail(`${at}.sha256 is not a sha256 hex digest`);
  }
  checkStoreFile(m.devices, 'devices', fail);
  if (!Array.isArray((m.devices as Record<string, unknown>).sections)) fail('"devices.sections" must be an array');
  if (m.vmdesc !== null) checkStoreFile(m.vmdesc, 'vmdesc', fail);
  return m as unknown as StoreManifest;
}

function checkStoreFile(v: unknown, at: string, fail: (w: string) => never): void {
  if (v === null || typeof v !== 'object') fail(`"${at}" is not an object`);
  const f = v as Record<string, unknown>;
  checkFileName(f.file, `${at}.file`, fail);
  if (!Number.isSafeInteger(f.bytes) || (f.bytes as number) < 0) fail(`${at}.bytes is invalid`);
  if (!isSha(f.sha256)) fail(`${at}.sha256 is not a sha256 hex digest`);
}

/** Relative, inside the directory: no absolute paths, no `..`. */
function checkFileName(v: unknown, at: string, fail: (w: string) => never): void {
  if (typeof v !== 'string' || v === '' || v.startsWith('/') || v.split('/').some((p) => p === '..' || p === '')) {
    fail(`${at} must be a relative path inside the store`);
  }
}

function isU32(v: unknown): boolean {
  return Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;
}

function isSize(v: unknown): boolean {
  return Number.isSafeInteger(v) && (v as number) > 0;
}

function isSha(v: unknown): boolean {
  return typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
}
