import { type ByteReader, ByteWriter, type Vmdesc } from '@e2k-migrate/vmstate';
import { MigrationStreamError, toStreamError } from '../errors.js';
import { QEMU_VM_EOF, QEMU_VM_VMDESCRIPTION } from './constants.js';

/** Largest vmdesc JSON accepted (QEMU's are ~100 KiB; this bounds hostile length fields). */
export const MAX_VMDESC_LENGTH = 64 << 20;

/** Writes `06, be32 len, JSON bytes` (spec §2.6). */
export function encodeVmdescTrailer(json: Uint8Array, w: ByteWriter = new ByteWriter(json.length + 8)): ByteWriter {
  return w.u8(QEMU_VM_VMDESCRIPTION).u32be(json.length).bytes(json);
}

/** Reads `be32 len` + JSON bytes after the 0x06 byte (a view into the reader's bytes). */
export function decodeVmdescTrailerBody(r: ByteReader): Uint8Array {
  try {
    const at = r.offset;
    const len = r.u32be('vmdesc length');
    if (len > MAX_VMDESC_LENGTH) {
      throw new MigrationStreamError(
        'E_BAD_LENGTH',
        `vmdesc length ${len} at byte offset ${at} exceeds ${MAX_VMDESC_LENGTH}`,
        {
          offset: at,
          record: 'vmdesc',
        },
      );
    }
    return r.bytesView(len, 'vmdesc JSON');
  } catch (err) {
    throw toStreamError(err, { record: 'vmdesc' });
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/**
 * Parses vmdesc JSON and checks its outline (`page_size`, `devices[]` with `name`,
 * `instance_id`, `fields`). Field lists are checked when a device is decoded.
 * @param at offset of the JSON for errors.
 */
export function parseVmdesc(json: Uint8Array, at = 0): Vmdesc {
  let v: unknown;
  try {
    v = JSON.parse(utf8.decode(json));
  } catch (err) {
    throw new MigrationStreamError(
      'E_BAD_VMDESC',
      `vmdesc at byte offset ${at} is not valid JSON: ${(err as Error).message}`,
      {
        offset: at,
        record: 'vmdesc',
        cause: err,
      },
    );
  }
  const o = v as Partial<Vmdesc> | null;
  const fail = (why: string): never => {
    throw new MigrationStreamError('E_BAD_VMDESC', `vmdesc at byte offset ${at}: ${why}`, {
      offset: at,
      record: 'vmdesc',
    });
  };
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return fail('not a JSON object');
  if (typeof o.page_size !== 'number' || !isPageSize(o.page_size))
    return fail(`page_size ${String(o.page_size)} is not a power of two in 512..65536`);
  if (!Array.isArray(o.devices)) return fail('"devices" is not an array');
  for (const [i, d] of o.devices.entries()) {
    if (
      d === null ||
      typeof d !== 'object' ||
      typeof d.name !== 'string' ||
      typeof d.instance_id !== 'number' ||
      !Array.isArray(d.fields)
    ) {
      fail(`device ${i} lacks name/instance_id/fields`);
    }
  }
  return o as Vmdesc;
}

function isPageSize(n: number): boolean {
  return Number.isInteger(n) && n >= 512 && n <= 65536 && (n & (n - 1)) === 0;
}

/** Where a vmdesc trailer sits in a buffer that ends exactly where the stream ends. */
export interface VmdescLocation {
  /** Index of the 0x06 byte in the buffer. */
  index: number;
  jsonStart: number;
  jsonLength: number;
}

/**
 * Finds the `00 06 <be32 len> {…}` trailer that ends exactly at the end of `tail` (the last
 * bytes of a stream). JSON text never contains a raw 0x06, so scanning back from the end for a
 * 0x06 whose length field reaches exactly to the end is unambiguous.
 */
export function findVmdescTrailer(tail: Uint8Array): VmdescLocation | undefined {
  const n = tail.length;
  for (let i = n - 6; i >= 1; i--) {
    if (tail[i] !== QEMU_VM_VMDESCRIPTION) continue;
    const len =
      (tail[i + 1] as number) * 0x1000000 +
      ((tail[i + 2] as number) << 16) +
      ((tail[i + 3] as number) << 8) +
      (tail[i + 4] as number);
    if (i + 5 + len === n && tail[i + 5] === 0x7b && tail[i - 1] === QEMU_VM_EOF) {
      return { index: i, jsonStart: i + 5, jsonLength: len };
    }
    if (i + 5 + len < n) {
    }
  }
  return undefined;
}
