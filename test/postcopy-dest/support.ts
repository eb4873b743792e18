import { createHash } from 'node:crypto';
import { forEachReturnPathMessage, type RpMessage } from '@e2k-migrate/migration';
import { backendInfo, createGuestMemory, createUserfault, HUGE_PAGE } from '@e2k-migrate/native';
import { fixturePath, readFixture, readFixtureJson } from '@e2k-migrate/test-support';
import { type Channel, connect } from '@e2k-migrate/transports';

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Whether a real userfaultfd can be created here (with the reason when not). */
export function uffdAvailable(): { ok: boolean; reason: string } {
  if (backendInfo().name !== 'native') return { ok: false, reason: `native addon not loaded: ${backendInfo().reason}` };
  try {
    createUserfault({ mode: 'uffd' }).close();
    return { ok: true, reason: '' };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

/** Whether 2 MiB hugetlb regions can be created (the test setup reserves them). */
export function hugetlbAvailable(): { ok: boolean; reason: string } {
  try {
    createGuestMemory({ size: HUGE_PAGE, kind: 'hugetlb' }).close();
    return { ok: true, reason: '' };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

/** The byte offset just after the main-channel PING(4) of a postcopy fixture (the first postcopy page follows). */
export function afterPing4(name: string): number {
  const s = readFixtureJson<{ records: { off: number; depth?: number; cmd?: string; value?: number }[] }>(
    `${name}/${name}.summary.json`,
  );
  const ping = s.records.find((r) => r.cmd === 'PING' && r.value === 4 && r.depth === 0);
  if (!ping) throw new Error(`${name}: no PING(4) on the main channel`);
  return ping.off + 9;
}

/** Collects every return-path message a destination sends on `ch`, and lets a test wait for one. */
export class RpCollector {
  readonly messages: RpMessage[] = [];
  readonly done: Promise<void>;
  private waiters: { pred: (m: RpMessage) => boolean; resolve: () => void }[] = [];

  constructor(ch: Channel) {
    this.done = forEachReturnPathMessage(ch.chunks(), (m) => {
      this.messages.push(m);
      for (const w of [...this.waiters]) {
        if (w.pred(m)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    }).catch(() => undefined);
  }

  /** Resolves when a message matching `pred` arrived (now or later). */
  waitFor(pred: (m: RpMessage) => boolean): Promise<void> {
    if (this.messages.some(pred)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ pred, resolve }));
  }

  types(): string[] {
    return this.messages.map((m) => m.type);
  }
}

/**
 * A "dumb" QEMU source: replays a postcopy fixture's captured connections over real TCP —
 * conn0 (main) first, then conn1 (preempt) — writing the bytes verbatim and never answering
 * requests. `holdAt` pauses the main channel at that byte until `release()` (e.g. right after
 * PING(4), so the destination's vCPU stand-in faults before any postcopy page arrives).
 */
export async function replayFixture(
  name: string,
  uri: string,
  opts: { preempt?: boolean; holdAt?: number } = {},
): Promise<{ main: Channel; rp: RpCollector; release(): void; sent: Promise<void> }> {
  const stream = readFixture(`${name}/conn0.src2dst.bin`);
  const main = await connect(uri, { timeoutMs: 5000 });
  const rp = new RpCollector(main);
  let preempt: Channel | undefined;
  if (opts.preempt) preempt = await connect(uri, { timeoutMs: 5000 });
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const hold = opts.holdAt ?? stream.length;
  const sent = (async () => {
    if (preempt) {
      await preempt.write(readFixture(`${name}/conn1.src2dst.bin`));
      await preempt.flush();
    }
    await writeChunks(main, stream.subarray(0, hold));
    await main.flush();
    if (hold < stream.length) {
      await gate;
      await writeChunks(main, stream.subarray(hold));
      await main.flush();
    }
  })();
  return { main, rp, release, sent };
}

async function writeChunks(ch: Channel, bytes: Uint8Array): Promise<void> {
  for (let o = 0; o < bytes.length; o += 1 << 20)
    await ch.write(bytes.subarray(o, Math.min(bytes.length, o + (1 << 20))));
}

/** The fixture's reference RAM (`pc.ram`) and the sha256 of every block the reference parser rebuilt. */
export function fixtureReference(name: string): { ram: Uint8Array; blocks: Record<string, string> } {
  return {
    ram: readFixture(`${name}/${name}.ram`),
    blocks: readFixtureJson<{ ram_sha256: Record<string, string> }>(`${name}/${name}.summary.json`).ram_sha256,
  };
}

export { fixturePath };

/**
 * A TCP forwarder for every connection a source opens (main, then postcopy-preempt), upstream
 * connections made in arrival order (QEMU assigns channels by accept order); `cutAll()` resets
 * every forwarded connection at once, as a network failure would.
 */
export async function startCutProxy(target: { host: string; port: number }): Promise<{
  uri: string;
  connections: number;
  cutAll(): void;
  close(): Promise<void>;
}> {
  const { createServer, connect: tcpConnect } = await import('node:net');
  const pairs: { a: import('node:net').Socket; b: import('node:net').Socket }[] = [];
  const server = createServer({ noDelay: true }, (a) => {
    const b = tcpConnect({ host: target.host, port: target.port, noDelay: true });
    a.pipe(b);
    b.pipe(a);
    a.on('error', () => b.resetAndDestroy());
    b.on('error', () => a.resetAndDestroy());
    pairs.push({ a, b });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    uri: `tcp:127.0.0.1:${port}`,
    get connections() {
      return pairs.length;
    },
    cutAll() {
      for (const { a, b } of pairs) {
        a.resetAndDestroy();
        b.resetAndDestroy();
      }
    },
    async close() {
      for (const { a, b } of pairs) {
        a.destroy();
        b.destroy();
      }
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
