import { existsSync, readFileSync, writeFileSync } from 'node:fs';

/** The huge page size of hugetlb guest RAM (`--ram-kind hugetlb`). */
export const HUGE_PAGE_BYTES = 2 << 20;

const MEMINFO = '/proc/meminfo';
/** The pool of the default huge page size (2 MiB on x86-64). */
const NR_DEFAULT = '/proc/sys/vm/nr_hugepages';
/** The 2 MiB pool when the default huge page size is another one. */
const SYSFS_2M = '/sys/kernel/mm/hugepages/hugepages-2048kB';

/** Not enough 2 MiB huge pages, and they could not be reserved here. */
export class HugePageError extends Error {
  readonly code = 'E_HUGEPAGES';
  /** Free 2 MiB pages needed. */
  readonly needed: number;
  /** Free 2 MiB pages there were (after any attempt to reserve more). */
  readonly free: number;
  readonly pool: string;
  constructor(message: string, fields: { needed: number; free: number; pool: string }) {
    super(message);
    this.name = 'HugePageError';
    this.needed = fields.needed;
    this.free = fields.free;
    this.pool = fields.pool;
  }
}

/** What {@link reserveHugePages} did, and how to undo it. */
export interface HugePageReservation {
  needed: number;
  /** Pages added to the pool (0 when not root: existing free pages are used). */
  reserved: number;
  /** The pool file written, and its value before and after the reservation. */
  pool: string;
  before: number;
  after: number;
  /** Gives the reserved pages back (idempotent); returns the pool's value afterwards. */
  release(): number;
}

/** Where the 2 MiB pool is counted: /proc/sys/vm/nr_hugepages, or sysfs if 2 MiB is not the default size. */
function poolFiles(): { nr: string; free: () => number } {
  const meminfo = () => readFileSync(MEMINFO, 'utf8');
  const defaultKb = Number(/^Hugepagesize:\s+(\d+) kB/m.exec(meminfo())?.[1] ?? 0);
  if (defaultKb === HUGE_PAGE_BYTES / 1024 || !existsSync(SYSFS_2M)) {
    return { nr: NR_DEFAULT, free: () => Number(/^HugePages_Free:\s+(\d+)/m.exec(meminfo())?.[1] ?? 0) };
  }
  return { nr: `${SYSFS_2M}/nr_hugepages`, free: () => Number(readFileSync(`${SYSFS_2M}/free_hugepages`, 'utf8')) };
}

const readNr = (path: string) => Number(readFileSync(path, 'utf8').trim());

/**
 * Makes `needed` free 2 MiB huge pages available. As root it adds them to the pool (writes
 * `nr_hugepages + needed`), checks HugePages_Free, and {@link HugePageReservation.release} takes
 * exactly that many off again; without root it uses pages already free. Throws
 * {@link HugePageError} (`E_HUGEPAGES`) saying how to reserve them when that is not enough.
 */
export function reserveHugePages(needed: number, log: (line: string) => void): HugePageReservation {
  const { nr, free } = poolFiles();
  if (!existsSync(nr)) {
    throw new HugePageError(
      `this kernel has no huge page pool (${nr} does not exist): hugetlb guest RAM is not available`,
      {
        needed,
        free: 0,
        pool: nr,
      },
    );
  }
  const before = readNr(nr);
  const root = process.getuid?.() === 0;
  const howTo =
    `as root: echo $(( $(cat ${nr}) + ${needed} )) > ${nr}` +
    ' (and give them back the same way afterwards), or run the demo as root and it does so itself';
  if (!root) {
    const have = free();
    if (have < needed) {
      throw new HugePageError(
        `--hugepages needs ${needed} free 2 MiB huge pages and HugePages_Free is ${have}; not root, so the demo cannot reserve them: ${howTo}`,
        { needed, free: have, pool: nr },
      );
    }
    log(`using ${needed} of the ${have} free 2 MiB huge pages (not root: nothing reserved)`);
    return { needed, reserved: 0, pool: nr, before, after: before, release: () => readNr(nr) };
  }
  const freeBefore = free();
  writeFileSync(nr, String(before + needed));
  const after = readNr(nr);
  let released = false;
  const reserved = Math.max(0, after - before);
  const reservation: HugePageReservation = {
    needed,
    reserved,
    pool: nr,
    before,
    after,
    release() {
      const now = readNr(nr);
      if (released || reserved === 0) return now;
      released = true;
      writeFileSync(nr, String(Math.max(0, now - reserved)));
      const final = readNr(nr);
      log(`gave back ${reserved} huge pages (${nr} ${now} → ${final})`);
      return final;
    },
  };
  const have = free();
  if (have < needed) {
    reservation.release();
    throw new HugePageError(
      `--hugepages needs ${needed} free 2 MiB huge pages: ${nr} ${before} → ${after} gave ${have} free (were ${freeBefore}); the kernel found too little contiguous memory — free some memory, or reserve them early (e.g. at boot: hugepages=N), ${howTo}`,
      { needed, free: have, pool: nr },
    );
  }
  log(
    `reserved ${reservation.reserved} 2 MiB huge pages for the two VMs (${nr} ${before} → ${after}, HugePages_Free ${have})`,
  );
  return reservation;
}
