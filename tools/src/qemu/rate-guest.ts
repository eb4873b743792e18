import { writeFile } from 'node:fs/promises';

/**
 * The boot sector assembled from guest/ratedirty.asm (nasm -f bin), embedded so that no assembler
 * is needed to run it. After one unpaced pass (every page non-zero, then the first `B`) it dirties
 * the pages of [1 MiB, RAM - 1 MiB) in order at a fixed rate paced by the PIT, with dirtyloop.asm's
 * pass counter, serial markers and invariant.
 */
const RATE_GUEST_B64 =
  '+jHAjtiOwI7QvAB85JIMAiT+5pIPARZAfQ8gwAwBDyLAZuopfAAACABmuBAAjtiOwI7gjuiO0LwAfAAAsDXmcORxiMSwNOZw5HEPt9iF23QLweMQgcMAAAAB6xqwMeZw5HGIxLAw5nDkcQ+32MHjCoHDAAAQAIHrAAAQAIkdBAYAADHJiQ0ABgAAZrr4A7BB7rgAABAA/gAFABAAADnYcvXHBQAGAAABAAAAsELusDTmQzDA5kDmQOheAAAAZokNCAYAADH2Mf+9AAAQAOhJAAAAZqEIBgAAZinIZokNCAYAAA+3wAHGifD3JfR9AAAPrNAYOcdz1v5FAEeBxQAQAAA53XLuvQAAEAD/BQAGAABQZrr4A7BC7ljr2LAA5kPkQIjB5ECIxcMAAAAAAAAAAP//AAAAms8A//8AAACSzwAXACh9AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEVEUksAAAAAAAAAAAAAVao=';

/** Offset of the 'EDRK' marker and of the rate dword after it. */
const MARKER_AT = 0x1f0;
const RATE_AT = 0x1f4;
const PIT_HZ = 1_193_182;

/** Largest rate accepted (MiB/s); TCG cannot dirty much faster anyway. */
export const RATE_GUEST_MAX_MBPS = 2048;

/** The boot image dirtying `mibPerSec` MiB/s (4 KiB pages: 256 pages per MiB). */
export function rateGuestImage(mibPerSec: number): Uint8Array {
  if (!(mibPerSec > 0 && mibPerSec <= RATE_GUEST_MAX_MBPS)) {
    throw new RangeError(`dirty rate must be in (0, ${RATE_GUEST_MAX_MBPS}] MiB/s, got ${mibPerSec}`);
  }
  const img = new Uint8Array(Buffer.from(RATE_GUEST_B64, 'base64'));
  const marker = String.fromCharCode(...img.subarray(MARKER_AT, MARKER_AT + 4));
  if (img.length !== 512 || marker !== 'EDRK') throw new Error('embedded rate guest image is damaged');
  const k = Math.round((mibPerSec * 256 * 2 ** 24) / PIT_HZ);
  new DataView(img.buffer).setUint32(RATE_AT, k, true);
  return img;
}

/** Writes {@link rateGuestImage} to `path`. */
export async function writeRateGuestImage(path: string, mibPerSec: number): Promise<void> {
  await writeFile(path, rateGuestImage(mibPerSec));
}
