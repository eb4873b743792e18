import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * 2 MiB huge pages for a benchmark, reserved through /proc/sys/vm/nr_hugepages and given back.
 * Uses the same holder file as the test setup (test/support/hugepages-setup.ts): a JSON list of
 * the live processes using a reservation and the value before the first one, so a vitest run and
 * a bench sharing the machine never shrink the pool under each other; the last holder to finish
 * restores the original value.
 */
const NR = '/proc/sys/vm/nr_hugepages';
const HOLDERS = join(tmpdir(), 'e2k-migrate-hugepages.json');
const LOCK = `${HOLDERS}.lock`;
/** Free huge pages another holder (a vitest run) expects to keep. */
const OTHER_HOLDER_WANTS = 64;

export interface HugePageReservation {
  /** False when the pages could not be reserved (then `reason` says why). */
  ok: boolean;
  reason: string;
  /** Gives the pages back (restores nr_hugepages when this was the last holder). */
  release(): void;
}

function freeHugePages(): number {
  const m = /^HugePages_Free:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'));
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

function readHolders(): { original: number; pids: number[] } | undefined {
  if (!existsSync(HOLDERS)) return undefined;
  try {
    const h = JSON.parse(readFileSync(HOLDERS, 'utf8')) as { original: number; pids: number[] };
    return { original: h.original, pids: h.pids.filter(alive) };
  } catch {
    return undefined;
  }
}

/** Makes `pages` free 2 MiB huge pages available to this process's children (on top of what other holders keep). */
export function reserveHugePages(pages: number): HugePageReservation {
  if (!existsSync(NR)) return { ok: false, reason: `${NR} does not exist`, release: () => {} };
  let reason = '';
  let raised = 0;
  withLock(() => {
    const holders = readHolders();
    const others = holders?.pids.filter((p) => p !== process.pid) ?? [];
    const current = Number(readFileSync(NR, 'utf8').trim());
    const original = others.length > 0 ? (holders?.original ?? current) : current;
    const want = pages + (others.length > 0 ? OTHER_HOLDER_WANTS : 0);
    const free = freeHugePages();
    if (free < want) {
      try {
        writeFileSync(NR, String(current + (want - free)));
        raised = Number(readFileSync(NR, 'utf8').trim()) - current;
      } catch (err) {
        reason = `cannot raise ${NR}: ${(err as Error).message}`;
      }
    }
    const after = freeHugePages();
    if (!reason && after < want) reason = `HugePages_Free=${after} after raising ${NR}, wanted ${want}`;
    writeFileSync(HOLDERS, JSON.stringify({ original, pids: [...others, process.pid] }));
  });
  let released = false;
  return {
    ok: reason === '',
    reason,
    release() {
      if (released) return;
      released = true;
      withLock(() => {
        const holders = readHolders();
        const others = (holders?.pids ?? []).filter((p) => p !== process.pid);
        if (others.length > 0) {
          writeFileSync(HOLDERS, JSON.stringify({ original: holders?.original ?? 0, pids: others }));
          // give back what this process added; the others keep theirs
          const current = Number(readFileSync(NR, 'utf8').trim());
          if (raised > 0) writeFileSync(NR, String(Math.max(0, current - raised)));
          return;
        }
        try {
          writeFileSync(NR, String(holders?.original ?? 0));
        } catch {
          // not writable: nothing was raised
        }
        rmSync(HOLDERS, { force: true });
      });
    },
  };
}
