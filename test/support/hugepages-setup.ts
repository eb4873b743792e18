import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requiredCapabilities } from './capabilities.js';

/**
 * Vitest global setup: reserves 2 MiB huge pages for the whole run through
 * /proc/sys/vm/nr_hugepages, checks HugePages_Free, and gives them back at the end.
 *
 * - Wants HUGEPAGES_WANTED free pages (the hugetlb suites plus headroom for later ones).
 * - Short (not root, no memory): fails loudly when E2K_REQUIRE lists `hugetlb`; otherwise prints
 *   a loud line; the hugetlb suites then find no free huge page and skip through
 *   `needs('hugetlb', ...)`.
 * - Several vitest runs may share the machine: a holder file in the temp directory lists the live
 *   runs and the value before the first one; the last run to finish restores it.
 */
export const HUGEPAGES_WANTED = 64;
const NR = '/proc/sys/vm/nr_hugepages';
const HOLDERS = join(tmpdir(), 'e2k-migrate-hugepages.json');
const LOCK = `${HOLDERS}.lock`;

interface Holders {
  original: number;
  pids: number[];
}

function meminfo(key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) : 0;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function withLock<T>(fn: () => T): T {
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      closeSync(openSync(LOCK, 'wx'));
      break;
    } catch {
      if (Date.now() > deadline) rmSync(LOCK, { force: true }); // stale lock of a killed run
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(LOCK, { force: true });
  }
}

function readHolders(): Holders | undefined {
  if (!existsSync(HOLDERS)) return undefined;
  try {
    const h = JSON.parse(readFileSync(HOLDERS, 'utf8')) as Holders;
    return { original: h.original, pids: h.pids.filter(alive) };
  } catch {
    return undefined;
  }
}

let reported = false;

function unavailable(reason: string): void {
  reported = true;
  const msg = `huge pages: ${reason}`;
  if (requiredCapabilities().has('hugetlb')) {
    throw new Error(`${msg} (required by E2K_REQUIRE=${process.env.E2K_REQUIRE})`);
  }
  process.stderr.write(
    `\n*** HUGE PAGES UNAVAILABLE: ${reason}. hugetlb tests will skip; set E2K_REQUIRE=hugetlb to fail. ***\n`,
  );
}

export default function setup(): () => void {
  if (process.platform !== 'linux' || !existsSync(NR)) {
    unavailable(`${NR} does not exist (not Linux, or a kernel without hugetlb)`);
    return () => {};
  }
  let joined = false;
  withLock(() => {
    const holders = readHolders();
    const current = Number(readFileSync(NR, 'utf8').trim());
    const original = holders && holders.pids.length > 0 ? holders.original : current;
    const free = meminfo('HugePages_Free');
    if (free < HUGEPAGES_WANTED) {
      try {
        writeFileSync(NR, String(current + (HUGEPAGES_WANTED - free)));
      } catch (err) {
        unavailable(
          `cannot raise ${NR} (${(err as Error).message}); HugePages_Free=${free}, wanted ${HUGEPAGES_WANTED}`,
        );
      }
    }
    const after = meminfo('HugePages_Free');
    if (after < HUGEPAGES_WANTED && !reported) {
      unavailable(
        `HugePages_Free=${after} after raising ${NR}, wanted ${HUGEPAGES_WANTED} (not enough contiguous memory?)`,
      );
    }
    writeFileSync(HOLDERS, JSON.stringify({ original, pids: [...(holders?.pids ?? []), process.pid] }));
    joined = true;
  });
  return () => {
    if (!joined) return;
    withLock(() => {
      const holders = readHolders();
      const others = (holders?.pids ?? []).filter((p) => p !== process.pid);
      if (others.length > 0) {
        writeFileSync(HOLDERS, JSON.stringify({ original: holders?.original ?? 0, pids: others }));
        return;
      }
      try {
        writeFileSync(NR, String(holders?.original ?? 0));
      } catch {
        // not writable: nothing was raised
      }
      rmSync(HOLDERS, { force: true });
    });
  };
}
