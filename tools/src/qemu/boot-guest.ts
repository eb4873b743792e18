import { randomFillSync } from 'node:crypto';
import { open } from 'node:fs/promises';

/** Where the boot-sector guest (dirtyloop.asm) keeps its pass counter and range end. */
export const PASS_ADDR = 0x600;
export const END_ADDR = 0x604;
/** The first dirtied page. */
export const DIRTY_START = 0x100000;
const PAGE = 4096;

/** Result of {@link checkGuestInvariant}. */
export interface GuestInvariant {
  /** Completed passes: dword [0x600]. */
  passes: number;
  /** Exclusive end of the dirtied range: dword [0x604]. */
  end: number;
  /** First page holding `passes & 0xff` (the end of the `passes + 1` prefix), or `end`. */
  boundary: number;
  ok: boolean;
  /** Pages breaking the invariant (at most 16 listed). */
  violations: { page: number; value: number }[];
}

/**
 * The boot-sector guest's invariant over a RAM image (guest-physical 0..size): with
 * P = dword[0x600], every page in [1 MiB, dword[0x604]) holds (P+1)&0xff or P&0xff at byte 0,
 * and the (P+1) pages form a prefix of the range (exactly one boundary).
 */
export function checkGuestInvariant(ram: Uint8Array): GuestInvariant {
  const dv = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
  const passes = dv.getUint32(PASS_ADDR, true);
  const end = dv.getUint32(END_ADDR, true);
  const violations: { page: number; value: number }[] = [];
  const hi = (passes + 1) & 0xff;
  const lo = passes & 0xff;
  let boundary = end;
  let bad = 0;
  const valid = end > DIRTY_START && end <= ram.length && end % PAGE === 0;
  if (valid) {
    let inPrefix = true;
    for (let page = DIRTY_START; page < end; page += PAGE) {
      const value = ram[page] as number;
      if (inPrefix && value === hi) continue;
      if (inPrefix && value === lo) {
        inPrefix = false;
        boundary = page;
        continue;
      }
      if (!inPrefix && value === lo) continue;
      bad++;
      if (violations.length < 16) violations.push({ page, value });
    }
  }
  return { passes, end, boundary, ok: valid && bad === 0, violations };
}

/** Counts of the guest's serial markers: `A` once at start, `B` per completed pass. */
export function serialMarkers(serial: string): { a: number; b: number } {
  let a = 0;
  let b = 0;
  for (let i = 0; i < serial.length; i++) {
    const c = serial.charCodeAt(i);
    if (c === 0x41) a++;
    else if (c === 0x42) b++;
  }
  return { a, b };
}

/**
 * Writes a RAM pattern file for a `-M none` guest (memory-backend-file): `randomPercent` of the
 * pages (chosen by `seed`) hold random, incompressible bytes; the rest are zero.
 */
export async function writePatternFile(path: string, size: number, randomPercent = 100, seed = 1): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.truncate(size);
    const chunk = new Uint8Array(1 << 20);
    let state = seed >>> 0 || 1;
    for (let off = 0; off < size; off += chunk.length) {
      const n = Math.min(chunk.length, size - off);
      randomFillSync(chunk, 0, n);
      for (let p = 0; p < n; p += PAGE) {
        state = (Math.imul(state, 1103515245) + 12345) >>> 0;
        if ((state >>> 16) % 100 >= randomPercent) chunk.fill(0, p, p + PAGE);
      }
      await fh.write(chunk, 0, n, off);
    }
  } finally {
    await fh.close();
  }
}
