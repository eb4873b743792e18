import { createHash } from 'node:crypto';
import {
  ByteSource,
  Capabilities,
  LoaderRegistry,
  MIGRATION_CAPABILITIES,
  MigrationFile,
  MigrationStreamError,
  Parameters,
  type SaveContext,
  StreamReader,
} from '@e2k-migrate/migration';
import { createGuestMemory, type GuestMemory } from '@e2k-migrate/native';
import { needs } from '@e2k-migrate/test-support';
import { afterEach, describe, expect, it } from 'vitest';
import { RamLoadHandler } from './ram-load-handler.js';
import { RamSaveHandler } from './ram-save-handler.js';

const TPS = 4096;
const SIZE = 4 << 20;
const PAGES = SIZE / TPS;
const mems: GuestMemory[] = [];
afterEach(() => {
  for (const m of mems.splice(0)) m.close();
});

function memory(): GuestMemory {
  const m = createGuestMemory({ size: SIZE, name: 'test.ram' });
  mems.push(m);
  return m;
}

/** An in-memory stream: every buffer the file hands over, in order. */
function collector() {
  const chunks: Uint8Array[] = [];
  let accepted = 0;
  const sink = {
    writeBuffered: 0,
    get bytesWritten() {
      return accepted;
    },
    async write(b: Uint8Array) {
      chunks.push(Uint8Array.from(b));
      accepted += b.length;
    },
    async flush() {},
  };
  return { file: new MigrationFile(sink, { bufferBytes: 64 << 10 }), chunks };
}

function context(file: MigrationFile, caps: string[] = [], rateEnd = Number.POSITIVE_INFINITY) {
  const c = new Capabilities(MIGRATION_CAPABILITIES);
  c.set(caps.map((capability) => ({ capability, state: true })));
  const passes: number[] = [];
  const ctx: SaveContext = {
    file,
    caps: c,
    params: new Parameters(),
    now: () => performance.now(),
    rateLimitEnd: () => rateEnd,
    vmRunning: () => true,
    cancelled: () => false,
    onDirtySync: (n) => passes.push(n),
    onSyncPeriod: () => {},
  };
  return { ctx, passes };
}

/** Wraps ram section bodies as START/PART/END sections so the StreamReader can load them. */
async function load(dst: GuestMemory, bodies: Uint8Array[][], zeroed = false): Promise<RamLoadHandler> {
  const out: number[] = [0x51, 0x45, 0x56, 0x4d, 0, 0, 0, 3];
  bodies.forEach((body, i) => {
    const kind = i === 0 ? 1 : i === bodies.length - 1 ? 3 : 2;
    out.push(kind, 0, 0, 0, 0);
    if (kind === 1) out.push(3, 0x72, 0x61, 0x6d, 0, 0, 0, 0, 0, 0, 0, 4);
    for (const c of body) out.push(...c);
    out.push(0x7e, 0, 0, 0, 0);
  });
  out.push(0);
  const loader = new RamLoadHandler([{ idstr: 'test.ram', size: SIZE, memory: dst }], { zeroed });
  const reg = new LoaderRegistry().register('ram', loader, 0);
  await new StreamReader(new ByteSource(Uint8Array.from(out)), { resolver: reg }).read();
  return loader;
}

const sha = (m: GuestMemory) =>
  createHash('sha256')
    .update(m.views()[0] as Uint8Array)
    .digest('hex');

/** Runs setup, `iterations` bounded passes (calling `between` before each) and complete. */
async function migrate(
  src: GuestMemory,
  opts: {
    caps?: string[];
    tracking: 'kernel' | 'software' | 'auto';
    iterations: number;
    between?: (i: number) => void;
  },
) {
  const h = new RamSaveHandler([{ idstr: 'test.ram', size: SIZE, memory: src }], { tracking: opts.tracking });
  const bodies: Uint8Array[][] = [];
  let stats: ReturnType<RamSaveHandler['stats']> = {};
  const section = async (fn: (ctx: SaveContext) => Promise<unknown>) => {
    const { file, chunks } = collector();
    const { ctx } = context(file, opts.caps);
    await fn(ctx);
    await file.flush();
    bodies.push(chunks);
  };
  await section((ctx) => h.setup(ctx));
  for (let i = 0; i < opts.iterations; i++) {
    opts.between?.(i);
    await section(async (ctx) => {
      h.pending(Number.POSITIVE_INFINITY, ctx); // below threshold: re-sync, as QEMU
      while (!(await h.iterate(ctx))) {}
    });
  }
  opts.between?.(opts.iterations);
  await section((ctx) => h.complete(ctx));
  stats = h.stats();
  h.cleanup();
  return { bodies, stats };
}

describe('ram save → load', () => {
  it.each(['kernel', 'software'] as const)(
    'reproduces RAM through iterations (%s dirty tracking)',
    async (tracking) => {
      const src = memory();
      for (let p = 0; p < PAGES; p += 3) src.writeBytes(p * TPS, new Uint8Array(TPS).fill(p & 0xff || 1));
      const { bodies, stats } = await migrate(src, {
        tracking,
        iterations: 3,
        between: (i) => {
          for (let p = i; p < PAGES; p += 97) src.store32(p * TPS + 8 * i, 0xdead0000 + i);
          src.writeBytes(5 * TPS, new Uint8Array(TPS)); // a page becomes zero again
        },
      });
      const dst = memory();
      const loader = await load(dst, bodies);
      expect(sha(dst)).toBe(sha(src));
      const ram = stats.ram as Record<string, number>;
      expect(ram.normal + ram.duplicate).toBe(loader.pagesLoaded);
      expect(ram.normal + ram.duplicate).toBeGreaterThan(PAGES); // dirtied pages were sent again
      expect(ram['dirty-sync-count']).toBe(5); // setup, 3 passes, completion
      expect(ram.remaining).toBe(0);
    },
  );

  it('encodes re-dirtied pages with XBZRLE after the first full pass, and the loader applies them', async () => {
    const src = memory();
    for (let p = 0; p < PAGES; p++) src.writeBytes(p * TPS, new Uint8Array(TPS).fill((p % 250) + 1));
    const { bodies, stats } = await migrate(src, {
      caps: ['xbzrle'],
      tracking: 'kernel',
      iterations: 2,
      between: (i) => {
        for (let p = 0; p < PAGES; p += 8) src.store8(p * TPS + 100 + i, 0);
      },
    });
    const x = stats['xbzrle-cache'] as Record<string, number>;
    expect(x.pages).toBeGreaterThan(0);
    expect(x['cache-miss']).toBeGreaterThan(0);
    expect(x.bytes).toBeLessThan(x.pages * 32);
    const dst = memory();
    await load(dst, bodies);
    expect(sha(dst)).toBe(sha(src));
  });

  it('handles 2 MiB hugetlb memory: dirty host pages expand to target pages, zero pages per page', async () => {
    let src: GuestMemory;
    let dst: GuestMemory;
    try {
      src = createGuestMemory({ size: SIZE, kind: 'hugetlb', name: 'huge.src' });
      mems.push(src);
      dst = createGuestMemory({ size: SIZE, kind: 'hugetlb', name: 'huge.dst' });
      mems.push(dst);
    } catch (e) {
      if (!needs('hugetlb', false, `no 2 MiB huge pages: ${(e as Error).message}`)) return;
      throw e;
    }
    src.store32(3 * TPS + 4, 0x01020304);
    const { bodies, stats } = await migrate(src, {
      tracking: 'auto',
      iterations: 1,
      between: (i) => src.store8((700 + i) * TPS, 9),
    });
    await load(dst, bodies);
    expect(dst.hash(0, SIZE)).toBe(src.hash(0, SIZE));
    const ram = stats.ram as Record<string, number>;
    // the first pass sends 1024 target pages; after it a whole 2 MiB host page (512 pages) is dirty
    expect(ram.normal + ram.duplicate).toBeGreaterThanOrEqual(PAGES + 512);
  });

  it('names the block once, then uses CONTINUE (also across sections)', async () => {
    const src = memory();
    src.store8(0, 1);
    const { bodies } = await migrate(src, { tracking: 'kernel', iterations: 1, between: () => src.store8(TPS, 2) });
    const all = Buffer.concat(bodies.flat());
    const name = Buffer.from('\x08test.ram', 'latin1');
    let count = 0;
    for (let i = all.indexOf(name); i >= 0; i = all.indexOf(name, i + 1)) count++;
    expect(count).toBe(2); // the MEM_SIZE block list and the first page record
  });

  it('stops a bounded pass at the rate-limit end', async () => {
    const src = memory();
    for (let p = 0; p < PAGES; p++) src.store8(p * TPS, 1);
    const h = new RamSaveHandler([{ idstr: 'test.ram', size: SIZE, memory: src }]);
    const { file } = collector();
    await h.setup(context(file).ctx);
    const end = file.bytesWritten + 100 * TPS;
    const done = await h.iterate(context(file, [], end).ctx);
    expect(done).toBe(false);
    expect(file.bytesWritten).toBeGreaterThanOrEqual(end);
    expect(file.bytesWritten).toBeLessThan(end + TPS + 64);
    h.cleanup();
  });
});

describe('ram loader checks', () => {
  const body = (words: number[][]) => [Uint8Array.from(words.flat())];
  const be64 = (hi: number, lo: number) => [
    hi >>> 24,
    (hi >>> 16) & 255,
    (hi >>> 8) & 255,
    hi & 255,
    lo >>> 24,
    (lo >>> 16) & 255,
    (lo >>> 8) & 255,
    lo & 255,
  ];
  const name = (s: string) => [s.length, ...Buffer.from(s, 'latin1')];
  const eos = be64(0, 0x10);

  it('rejects a block list naming an unknown block or another size, with the offset', async () => {
    const dst = memory();
    const e1 = await load(dst, [body([be64(0, SIZE + 4), name('pc.ram'), be64(0, SIZE), eos]), body([eos])]).catch(
      (e) => e,
    );
    expect(e1).toBeInstanceOf(MigrationStreamError);
    expect(e1.code).toBe('E_BAD_RAM_BLOCK');
    expect(e1.offset).toBe(25);
    expect(e1.message).toMatch(/unknown RAM block "pc.ram"/);
    const e2 = await load(dst, [body([be64(0, 8192 + 4), name('test.ram'), be64(0, 8192), eos]), body([eos])]).catch(
      (e) => e,
    );
    expect(e2.code).toBe('E_BAD_LENGTH');
    expect(e2.message).toMatch(/length 0x2000 in the stream and 0x400000 here/);
  });

  it('rejects a bad XBZRLE delta with the record offset', async () => {
    const dst = memory();
    const list = [be64(0, SIZE + 4), name('test.ram'), be64(0, SIZE), eos];
    // XBZRLE for page 1: 01, be16 len 2, a zero run of 0x7f then nothing → input ends inside a run
    const bad = [be64(0, 0x1000 | 0x40), name('test.ram'), [1, 0, 2, 0x7f, 0x05], eos];
    const e = await load(dst, [body(list), body(bad), body([eos])]).catch((x) => x);
    expect(e.code).toBe('E_XBZRLE');
    // header 8, START header 17, block list 8 + 9 + 8, EOS 8, footer 5, PART header 5
    expect(e.offset).toBe(8 + 17 + 25 + 8 + 5 + 5);
    expect(e.section).toBe('ram (0)');
  });

  it('with zeroed memory, skips ZERO records for pages never written and clears written ones', async () => {
    const dst = memory();
    const page = new Uint8Array(TPS).fill(7);
    const list = [be64(0, SIZE + 4), name('test.ram'), be64(0, SIZE), eos];
    const write = [be64(0, 0x2000 | 0x08), name('test.ram'), [...page], eos];
    const zero = [be64(0, 0x2000 | 0x22), [0], be64(0, 0x3000 | 0x22), [0], eos];
    await load(dst, [body(list), body(write), body(zero)], true);
    expect(dst.load8(0x2000)).toBe(0);
    expect(dst.hash(0, SIZE)).toBe(memory().hash(0, SIZE));
  });
});
