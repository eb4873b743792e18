import {
  MAX_DISCARDS_PER_COMMAND,
  MIG_CMD_POSTCOPY_RAM_DISCARD,
  type MigrationFile,
  POSTCOPY_RAM_DISCARD_VERSION,
  QEMU_VM_COMMAND,
} from '@e2k-migrate/migration';
import type { PageBitmap } from '@e2k-migrate/migration-ram';

/**
 * Host-page canonicalisation (QEMU's postcopy_chunk_hostpages_pass): any host page of which some
 * target page is dirty becomes wholly dirty, so that the destination discards — and later gets —
 * whole host pages. Returns the number of bits set. Works a 32-bit word at a time.
 */
export function canonicalizeHostPages(bitmap: PageBitmap, hostPages: number): number {
  if (hostPages <= 1) return 0;
  const n = bitmap.pages;
  let added = 0;
  let p = bitmap.nextSet(0);
  while (p >= 0) {
    const first = p - (p % hostPages);
    const end = Math.min(first + hostPages, n);
    if (nextClear(bitmap, first) < end) {
      for (let i = first; i < end; i++) if (!bitmap.get(i)) added++;
      bitmap.setRange(first, end);
    }
    p = end < n ? bitmap.nextSet(end) : -1;
  }
  return added;
}

/** Index of the first clear bit ≥ `from` (or `bitmap.pages` when there is none). */
export function nextClear(bitmap: PageBitmap, from: number): number {
  const w = bitmap.words;
  const n = bitmap.pages;
  if (from >= n) return n;
  let wi = from >>> 5;
  let inv = (~(w[wi] as number) & (0xffff_ffff << (from & 31))) >>> 0;
  for (;;) {
    if (inv !== 0) return Math.min((wi << 5) + (31 - Math.clz32(inv & -inv)), n);
    wi++;
    if (wi >= w.length) return n;
    inv = ~(w[wi] as number) >>> 0;
  }
}

/** The runs of set bits as [first page, page count], in order. */
export function* dirtyRuns(bitmap: PageBitmap): Generator<[number, number]> {
  let p = bitmap.nextSet(0);
  while (p >= 0) {
    const end = nextClear(bitmap, p);
    yield [p, end - p];
    p = end < bitmap.pages ? bitmap.nextSet(end) : -1;
  }
}

/** Bytes of a POSTCOPY_RAM_DISCARD command before its ranges: type, cmd, len, version, idstr, NUL. */
const DISCARD_HEAD = 1 + 2 + 2 + 1 + 1 + 1;

/**
 * Writes POSTCOPY_RAM_DISCARD commands for every dirty run of a block: byte ranges, at most
 * MAX_DISCARDS_PER_COMMAND (12) per command, as QEMU 7.2 sends them. Returns the number of ranges.
 * This runs while the VM is stopped, so it writes straight into the file's buffer (one reserve
 * per command, no object per range): ~15k ranges of a 1 GiB guest take well under a millisecond.
 */
export function writeDiscards(f: MigrationFile, block: string, bitmap: PageBitmap, targetPageSize: number): number {
  const name = Buffer.from(block, 'latin1');
  const most = MAX_DISCARDS_PER_COMMAND;
  let total = 0;
  let lenAt = -1;
  let inCmd = 0;
  const close = () => {
    f.view.setUint16(lenAt, 3 + name.length + 16 * inCmd);
    inCmd = 0;
  };
  let p = bitmap.nextSet(0);
  while (p >= 0) {
    const end = nextClear(bitmap, p);
    if (inCmd === 0) {
      f.reserve(DISCARD_HEAD + name.length + 16 * most);
      const b = f.buf;
      let at = f.pos;
      b[at++] = QEMU_VM_COMMAND;
      f.view.setUint16(at, MIG_CMD_POSTCOPY_RAM_DISCARD);
      lenAt = at + 2;
      at += 4;
      b[at++] = POSTCOPY_RAM_DISCARD_VERSION;
      b[at++] = name.length;
      name.copy(b, at);
      at += name.length;
      b[at++] = 0;
      f.pos = at;
    }
    putBe64(f, p * targetPageSize);
    putBe64(f, (end - p) * targetPageSize);
    inCmd++;
    total++;
    if (inCmd === most) close();
    p = end < bitmap.pages ? bitmap.nextSet(end) : -1;
  }
  if (inCmd > 0) close();
  return total;
}

function putBe64(f: MigrationFile, v: number): void {
  f.view.setUint32(f.pos, Math.floor(v / 0x1_0000_0000));
  f.view.setUint32(f.pos + 4, v >>> 0);
  f.pos += 8;
}
