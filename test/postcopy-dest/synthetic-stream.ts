import type { DiscardRange, MigCommand } from '@e2k-migrate/migration';
import { StreamWriter } from '@e2k-migrate/migration';
import { type Channel, connect, listen } from '@e2k-migrate/transports';
import { RpCollector } from './support.js';

/** One RAM record of a synthetic stream: a page with data, or a ZERO record. */
export type SynthRecord =
  | { block: string; offset: number; data: Uint8Array }
  | { block: string; offset: number; zero: number };

export interface SynthBlock {
  name: string;
  size: number;
  /** Host page size (sent in MEM_SIZE when it is not 4 KiB). */
  pageSize?: number;
}

const RAM_ID = 2;

/**
 * Builds QEMU 7.2-shaped postcopy streams for tests, with the project's own StreamWriter:
 * header, configuration, OPEN_RETURN_PATH, PING 1, POSTCOPY_ADVISE, ram START (block list),
 * precopy PARTs, discards, PING 2, PACKAGED (LISTEN, [extra], PING 3, RUN), PING 4, postcopy
 * PARTs, ram END, EOF — each step overridable so tests can break the rules on purpose.
 */
export class SynthStream {
  private readonly chunks: Uint8Array[] = [];
  private readonly w = new StreamWriter((c) => {
    this.chunks.push(c);
  });
  private last: string | undefined;

  start(opts: { blocks: SynthBlock[]; advise?: { summary: number; tps: number } | null; machine?: string }): this {
    const summary = opts.blocks.reduce((s, b) => s | (b.pageSize ?? 4096), 0);
    this.w.header().configuration({ machine: opts.machine ?? 'none', subsections: [] });
    this.w.command({ cmd: 'OPEN_RETURN_PATH' }).command({ cmd: 'PING', value: 1 });
    if (opts.advise !== null) {
      const a = opts.advise ?? { summary, tps: 4096 };
      this.w.command({ cmd: 'POSTCOPY_ADVISE', pageSizeSummary: a.summary, targetPageSize: a.tps });
    }
    this.w.sectionHeader({ kind: 'START', sectionId: RAM_ID, idstr: 'ram', instanceId: 0, versionId: 4 });
    this.w.ramMemSize({
      total: opts.blocks.reduce((n, b) => n + b.size, 0),
      blocks: opts.blocks.map((b) => ({
        name: b.name,
        usedLength: b.size,
        ...(b.pageSize && b.pageSize !== 4096 ? { pageSize: b.pageSize } : {}),
      })),
    });
    this.w.ramEos().footer(RAM_ID);
    return this;
  }

  /** A ram PART section with these records (block named when it changes, else CONTINUE). */
  part(records: readonly SynthRecord[]): this {
    this.w.sectionHeader({ kind: 'PART', sectionId: RAM_ID });
    this.records(records);
    this.w.ramEos().footer(RAM_ID);
    return this;
  }

  discard(block: string, ranges: DiscardRange[]): this {
    this.w.command({ cmd: 'POSTCOPY_RAM_DISCARD', version: 0, block, ranges });
    this.last = undefined;
    return this;
  }

  command(c: MigCommand): this {
    this.w.command(c);
    return this;
  }

  /** PING 2, then the package: LISTEN, `inside` (raw records, e.g. a ram PART), PING 3, RUN; then PING 4. */
  switchover(inside?: (pkg: SynthStream) => void): this {
    this.w.command({ cmd: 'PING', value: 2 });
    const pkg = new SynthStream();
    pkg.w.command({ cmd: 'POSTCOPY_LISTEN' });
    inside?.(pkg);
    pkg.w.command({ cmd: 'PING', value: 3 }).command({ cmd: 'POSTCOPY_RUN' });
    this.w.packaged(pkg.bytes());
    this.w.command({ cmd: 'PING', value: 4 });
    this.last = undefined;
    return this;
  }

  end(): this {
    this.w.sectionHeader({ kind: 'END', sectionId: RAM_ID });
    this.w.ramEos().footer(RAM_ID).eof();
    return this;
  }

  /** Bare records + EOS (a postcopy-preempt channel). */
  preempt(records: readonly SynthRecord[]): Uint8Array {
    this.records(records);
    this.w.ramEos();
    return this.bytes();
  }

  bytes(): Uint8Array {
    void this.w.flush();
    const n = this.chunks.reduce((a, c) => a + c.length, 0);
    const out = new Uint8Array(n);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }

  private records(records: readonly SynthRecord[]): void {
    for (const r of records) {
      const name = r.block === this.last ? undefined : r.block;
      this.last = r.block;
      if ('data' in r) this.w.ramPage(r.offset, name, r.data);
      else this.w.ramZero(r.offset, name, r.zero);
      void this.w.maybeFlush();
    }
  }
}

/** A page of 4 KiB filled with `byte` (and its offset in the first word, so pages differ). */
export function page(byte: number, tag = 0): Uint8Array {
  const p = new Uint8Array(4096).fill(byte);
  new DataView(p.buffer).setUint32(0, tag, true);
  return p;
}

/**
 * Serves `main` (and `preempt`) as a source would over real TCP to a destination listening on a
 * fresh port: `accept` gets the destination-side channels. The main bytes can be split at `holdAt`
 * until `release()`.
 */
export async function serveOverTcp(
  main: Uint8Array,
  opts: { preempt?: Uint8Array; holdAt?: number } = {},
): Promise<{
  dst: { main: Channel; preempt?: Channel };
  src: Channel;
  rp: RpCollector;
  release(): void;
  sent: Promise<void>;
}> {
  const listener = await listen('tcp:127.0.0.1:0');
  const src = await connect(listener.uri, { timeoutMs: 5000 });
  const dstMain = await listener.accept({ timeoutMs: 5000 });
  let srcPre: Channel | undefined;
  let dstPre: Channel | undefined;
  if (opts.preempt) {
    srcPre = await connect(listener.uri, { timeoutMs: 5000 });
    dstPre = await listener.accept({ timeoutMs: 5000 });
  }
  await listener.close();
  const rp = new RpCollector(src);
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const hold = opts.holdAt ?? main.length;
  const sent = (async () => {
    if (srcPre && opts.preempt) {
      await srcPre.write(opts.preempt);
      await srcPre.flush();
    }
    await src.write(main.subarray(0, hold));
    await src.flush();
    if (hold < main.length) {
      await gate;
      await src.write(main.subarray(hold));
      await src.flush();
    }
  })();
  sent.catch(() => undefined);
  return { dst: dstPre ? { main: dstMain, preempt: dstPre } : { main: dstMain }, src, rp, release, sent };
}
