import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NativeError } from './errors.js';

/**
 * The 2 MiB huge page pool, and reservations in it that several processes can hold at once (a
 * vitest run, a benchmark, `e2k-migrate demo --hugepages`).
 *
 * As root a reservation adds exactly the pages it needs to the pool (`nr_hugepages`), so it never
 * counts on pages another holder reserved, and checks `HugePages_Free`; without root it can only
 * use pages already free. Root holders are listed in a file in the temp directory, with the pool's
 * value before the first of them: a holder that leaves while others remain takes back what it
 * added; the last one restores that value, which also returns what a killed holder left behind
 * (a pid that no longer lives is dropped from the list).
 *
 * ```text
 *  reserve(n) ──► lock ──► pool += n ──► holders ∪ {me} ──► unlock ──► free ≥ n? else release, E_HUGEPAGES
 *  release()  ──► lock ──► holders − {me} ──► others left? pool −= what I added : pool = original
 * ```
 */

/** Bytes of a huge page of hugetlb guest RAM. */
export const HUGE_PAGE_BYTES = 2 << 20;

const MEMINFO = '/proc/meminfo';
/** The pool of the default huge page size (2 MiB on x86-64). */
const NR_DEFAULT = '/proc/sys/vm/nr_hugepages';
/** The 2 MiB pool when the default huge page size is another one. */
const SYSFS_2M = '/sys/kernel/mm/hugepages/hugepages-2048kB';
const HOLDERS = join(tmpdir(), 'e2k-migrate-hugepages.json');
const LOCK = `${HOLDERS}.lock`;

/** Not enough free 2 MiB huge pages, and they could not be reserved here. */
export class HugePageError extends NativeError {
  /** Free 2 MiB pages needed. */
  readonly needed: number;
  /** Free 2 MiB pages there were (after any attempt to reserve more). */
  readonly free: number;
  /** The pool file (`nr_hugepages`). */
  readonly pool: string;
  constructor(message: string, fields: { needed: number; free: number; pool: string }) {
    super('E_HUGEPAGES', message);
    this.name = 'HugePageError';
    this.needed = fields.needed;
    this.free = fields.free;
    this.pool = fields.pool;
  }
}

/** Where the 2 MiB pool is counted. */
export interface HugePagePool {
  /** The file to write: /proc/sys/vm/nr_hugepages, or sysfs when 2 MiB is not the default size. */
  readonly path: string;
  size(): number;
  free(): number;
}

export function hugePagePool(): HugePagePool {
  const meminfo = (): string => (existsSync(MEMINFO) ? readFileSync(MEMINFO, 'utf8') : '');
  const defaultKb = Number(/^Hugepagesize:\s+(\d+) kB/m.exec(meminfo())?.[1] ?? 0);
  const size = (path: string) => (): number => Number(readFileSync(path, 'utf8').trim());
  if (defaultKb === HUGE_PAGE_BYTES / 1024 || !existsSync(SYSFS_2M)) {
    return {
      path: NR_DEFAULT,
      size: size(NR_DEFAULT),
      free: () => Number(/^HugePages_Free:\s+(\d+)/m.exec(meminfo())?.[1] ?? 0),
    };
  }
  return {
    path: `${SYSFS_2M}/nr_hugepages`,
    size: size(`${SYSFS_2M}/nr_hugepages`),
    free: size(`${SYSFS_2M}/free_hugepages`),
  };
}

/** What {@link reserveHugePages} did, and how to undo it. */
export interface HugePageReservation {
  needed: number;
  /** Pages this holder added to the pool (0 when not root). */
  reserved: number;
  /** The pool file, and its value before and after this reservation. */
  pool: string;
  before: number;
  after: number;
  /** Free pages after the reservation. */
  free: number;
  /** Gives the pages back (idempotent); returns the pool's value afterwards. */
  release(): number;
}

export interface ReserveOptions {
  /** Progress lines (what was reserved, and given back). */
  log?: (line: string) => void;
  /** Who asks, for the messages: e.g. `--hugepages`. */
  purpose?: string;
}

/**
 * Makes `needed` free 2 MiB huge pages available to this process (on top of what other live
 * holders need). Throws {@link HugePageError} (`E_HUGEPAGES`) saying how to reserve them by hand
 * when that is not possible here.
 */
export function reserveHugePages(needed: number, opts: ReserveOptions = {}): HugePageReservation {
  if (!Number.isSafeInteger(needed) || needed < 0) {
    throw new NativeError('E_INVALID_ARGUMENT', `huge pages: expected a page count, found ${needed}`);
  }
  const log = opts.log ?? (() => {});
  const who = opts.purpose ?? 'this run';
  const pool = hugePagePool();
  if (!existsSync(pool.path)) {
    throw new HugePageError(
      `this kernel has no huge page pool (${pool.path} does not exist): hugetlb memory is not available`,
      {
        needed,
        free: 0,
        pool: pool.path,
      },
    );
  }
  const howTo =
    `as root: echo $(( $(cat ${pool.path}) + ${needed} )) > ${pool.path}` +
    ' (and give them back the same way afterwards)';
  if (process.getuid?.() !== 0) {
    const size = pool.size();
    const have = pool.free();
    if (have < needed) {
      throw new HugePageError(
        `${who} needs ${needed} free 2 MiB huge pages and HugePages_Free is ${have}; not root, so they cannot be reserved here: ${howTo}`,
        { needed, free: have, pool: pool.path },
      );
    }
    log(`using ${needed} of the ${have} free 2 MiB huge pages (not root: nothing reserved)`);
    return { needed, reserved: 0, pool: pool.path, before: size, after: size, free: have, release: () => pool.size() };
  }
  let reserved = 0;
  let freeBefore = 0;
  let sizeBefore = 0;
  const me = `${process.pid}:${randomUUID()}`;
  withLock(() => {
    const file = readFile();
    const others = file.holders;
    sizeBefore = pool.size();
    const original = others.length > 0 && file.original !== undefined ? file.original : sizeBefore;
    freeBefore = pool.free();
    try {
      writeFileSync(pool.path, String(sizeBefore + needed));
    } catch {
      // not writable (a container without CAP_SYS_ADMIN): judged below by what is free
    }
    reserved = Math.max(0, pool.size() - sizeBefore);
    writeHolders(original, [...others, me]);
  });
  let released = false;
  const reservation: HugePageReservation = {
    needed,
    reserved,
    pool: pool.path,
    before: sizeBefore,
    after: pool.size(),
    free: pool.free(),
    release() {
      if (released) return pool.size();
      released = true;
      let now = 0;
      withLock(() => {
        const file = readFile();
        const others = file.holders.filter((h) => h !== me);
        now = pool.size();
        try {
          if (others.length > 0) {
            writeHolders(file.original ?? now - reserved, others);
            if (reserved > 0) writeFileSync(pool.path, String(Math.max(0, now - reserved)));
          } else {
            rmSync(HOLDERS, { force: true });
            const original = file.original ?? now - reserved;
            if (original !== now) writeFileSync(pool.path, String(Math.max(0, original)));
          }
        } catch {
          // not writable: nothing was raised
        }
      });
      const final = pool.size();
      if (reserved > 0) log(`gave back ${reserved} huge pages (${pool.path} ${now} → ${final})`);
      return final;
    },
  };
  if (reservation.free < needed) {
    reservation.release();
    throw new HugePageError(
      `${who} needs ${needed} free 2 MiB huge pages: ${pool.path} ${sizeBefore} → ${reservation.after} left ${reservation.free} free (were ${freeBefore}); the kernel found too little contiguous memory — free some memory, or reserve them early (at boot: hugepages=N), ${howTo}`,
      { needed, free: reservation.free, pool: pool.path },
    );
  }
  log(
    `reserved ${reserved} 2 MiB huge pages (${pool.path} ${sizeBefore} → ${reservation.after}, HugePages_Free ${reservation.free})`,
  );
  return reservation;
}

function alive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The holders file: the pool's value before the first live holder, and the live holders, each
 * `pid:uuid` (a process may hold several reservations).
 */
function readFile(): { original?: number; holders: string[] } {
  if (!existsSync(HOLDERS)) return { holders: [] };
  try {
    const h = JSON.parse(readFileSync(HOLDERS, 'utf8')) as { original?: unknown; holders?: unknown };
    const holders = Array.isArray(h.holders)
      ? h.holders.filter((x): x is string => typeof x === 'string' && alive(Number.parseInt(x, 10)))
      : [];
    const original = typeof h.original === 'number' && holders.length > 0 ? h.original : undefined;
    return { original, holders };
  } catch {
    return { holders: [] }; // unreadable (a torn write of a killed holder): start over
  }
}

function writeHolders(original: number, holders: string[]): void {
  writeFileSync(HOLDERS, JSON.stringify({ original, holders }));
}

function withLock<T>(fn: () => T): T {
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      closeSync(openSync(LOCK, 'wx'));
      break;
    } catch {
      if (Date.now() > deadline) rmSync(LOCK, { force: true }); // stale lock of a killed process
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(LOCK, { force: true });
  }
}
