/**
 * A small postcopy destination for testing the SOURCE side at the library level, without QEMU:
 * it speaks QEMU 7.2's destination protocol on real sockets — PONG for every PING, the
 * discards, LISTEN/RUN, page requests it is told to make (REQ_PAGES_ID, then REQ_PAGES), one
 * PostcopyTmpPage per channel that rejects a record of another host page before the current one
 * is complete (spec §9.3), the preempt channel's bare records and final EOS, SHUT 0 after EOF,
 * and the recovery side (RECV_BITMAP replies from its received bitmap, RESUME_ACK, outstanding
 * requests re-sent). It logs everything it saw so tests can assert the wire behaviour.
 * Real QEMU 7.2 is the peer of the interop tests (test/postcopy-source/qemu-*.test.ts).
 */
import {
  ByteSource,
  encodeRpMessage,
  FooterScanLoader,
  LoaderRegistry,
  loadRamBody,
  type MemSizeList,
  type MigCommand,
  RAM_CHANNEL_PREEMPT,
  RAM_SAVE_FLAG_CONTINUE,
  type RamBlockInfo,
  type RamRecordInfo,
  RamSectionLoader,
  type RamSink,
  RamState,
  type RpMessage,
  recvBitmapSet,
  recvBitmapSize,
  StreamReader,
} from '@e2k-migrate/migration';
import { type Channel, type Listener, listen } from '@e2k-migrate/transports';

export interface RecordLog {
  channel: number;
  block: string;
  offset: number;
  kind: 'PAGE' | 'ZERO';
  named: boolean;
  /** The destination was listening (postcopy) when the record arrived. */
  postcopy: boolean;
}

interface TmpPage {
  block: string;
  hostStart: number;
  count: number;
  data: Uint8Array;
}

interface Pending {
  block: string;
  start: number;
  length: number;
  resolve: (channel: number) => void;
  channel: number;
}

export class TestDestination {
  readonly ram = new Map<string, Uint8Array>();
  /** Per block: RECV_BITMAP layout (bit i = target page i placed). */
  readonly received = new Map<string, Uint8Array>();
  readonly hostPageSize = new Map<string, number>();
  readonly discards: { block: string; start: number; length: number }[] = [];
  readonly commands: string[] = [];
  readonly records: RecordLog[] = [];
  readonly pongsSent: number[] = [];
  readonly violations: string[] = [];
  readonly requestsSent: { block: string; start: number; length: number; withId: boolean }[] = [];
  memSize: MemSizeList | undefined;
  /** RAM and received bitmaps as they were when the first discard (or LISTEN) arrived. */
  beforeDiscards: { ram: Map<string, Uint8Array>; received: Map<string, Uint8Array> } | undefined;
  advise: { summary: number; tps: number } | undefined;
  /** Bytes after the main stream's EOF on the preempt channel: the count of EOS records seen there. */
  preemptEos = 0;
  listening = false;
  running = false;
  state: 'loading' | 'paused' | 'done' | 'failed' = 'loading';
  error: Error | undefined;
  uri = '';
  readonly tps: number;
  private readonly preempt: boolean;
  private listener: Listener | undefined;
  private main: Channel | undefined;
  private pre: Channel | undefined;
  private readonly ramState = new RamState();
  private reader: StreamReader | undefined;
  private readonly tmp: (TmpPage | undefined)[] = [undefined, undefined];
  private pending: Pending[] = [];
  private lastReqBlock: string | undefined;
  private finishedResolve: () => void = () => {};
  private pausedResolve: () => void = () => {};
  /** Resolves when SHUT 0 was sent after a complete stream. */
  readonly finished: Promise<void>;
  private paused: Promise<void>;
  onListen: (() => void) | undefined;

  private constructor(opts: { preempt: boolean; tps: number }) {
    this.preempt = opts.preempt;
    this.tps = opts.tps;
    this.finished = new Promise((r) => {
      this.finishedResolve = r;
    });
    this.paused = this.newPaused();
  }

  static async start(opts: { preempt?: boolean; tps?: number } = {}): Promise<TestDestination> {
    const d = new TestDestination({ preempt: opts.preempt ?? false, tps: opts.tps ?? 4096 });
    await d.accept(true);
    return d;
  }

  /** Connections for a recovery (QMP migrate-recover): resolves with the URI to resume to. */
  async recover(): Promise<string> {
    if (this.state !== 'paused') throw new Error(`test destination: recover while ${this.state}`);
    await this.accept(false);
    return this.uri;
  }

  /** Drops the connections (both sides pause). */
  cut(): void {
    this.main?.cancel('test: connection cut');
    this.pre?.cancel('test: connection cut');
  }

  /** Sends a page request like a faulting vCPU; resolves with the channel that delivered the page. */
  request(block: string, start: number, length: number): Promise<number> {
    return new Promise<number>((resolve) => {
      const p: Pending = { block, start, length, resolve, channel: -1 };
      this.pending.push(p);
      this.sendRequest(p);
      this.settle();
    });
  }

  /** Whether every target page of [start, start+length) of `block` was placed. */
  has(block: string, start: number, length: number): boolean {
    const bm = this.received.get(block);
    if (!bm) return false;
    for (let p = start / this.tps; p < (start + length) / this.tps; p++) {
      if ((((bm[p >>> 3] as number) >>> (p & 7)) & 1) === 0) return false;
    }
    return true;
  }

  /** Resolves once the destination lost its connections in postcopy (state `paused`). */
  async waitPaused(): Promise<void> {
    if (this.state !== 'paused') await this.paused;
  }

  async close(): Promise<void> {
    this.cut();
    await this.listener?.close();
  }

  private newPaused(): Promise<void> {
    return new Promise((r) => {
      this.pausedResolve = r;
    });
  }

  private async accept(first: boolean): Promise<void> {
    this.listener = await listen('tcp:127.0.0.1:0');
    this.uri = this.listener.uri;
    const l = this.listener;
    void (async () => {
      try {
        this.main = await l.accept();
        if (this.preempt) this.pre = await l.accept();
        await l.close();
        await this.load(first);
      } catch (err) {
        this.fail(err as Error);
      }
    })();
  }

  private async load(first: boolean): Promise<void> {
    const main = this.main as Channel;
    if (!first) {
      this.ramState.resetLast();
      this.tmp[0] = undefined;
      this.tmp[1] = undefined;
      this.state = 'loading';
    }
    const registry = new LoaderRegistry(new FooterScanLoader()).register(
      'ram',
      new RamSectionLoader(this.ramState, this.sink()),
    );
    const reader = new StreamReader(new ByteSource(main.chunks(), { channel: 'main' }), {
      resolver: registry,
      liveSource: true,
      visitor: { command: (c) => this.command(c) },
      ...(first ? {} : { header: false, continueFrom: this.reader as StreamReader }),
    });
    this.reader = reader;
    // QEMU 7.2's fast-load thread: bare records until the one EOS the source sends after EOF.
    const preemptDone = this.pre
      ? loadRamBody(
          new ByteSource(this.pre.chunks(), { channel: 'preempt' }),
          this.ramState,
          reader.state,
          this.sink(),
          {
            channel: RAM_CHANNEL_PREEMPT,
            allowEndWithoutEos: true,
          },
        ).then(
          (eos) => {
            if (eos) this.preemptEos++;
          },
          (err: unknown) => {
            if (this.listening) throw err;
          },
        )
      : Promise.resolve();
    try {
      await reader.read();
      // A migration that completed in precopy leaves the preempt channel unused (no EOS).
      if (this.listening) await preemptDone;
      else this.pre?.cancel('test: precopy completed');
    } catch (err) {
      this.pre?.cancel('test: main failed');
      await preemptDone.catch(() => undefined);
      if (this.listening) {
        this.state = 'paused';
        this.error = err as Error;
        const r = this.pausedResolve;
        this.paused = this.newPaused();
        r();
        return;
      }
      throw err;
    }
    for (const p of this.pending) this.violations.push(`request ${p.block}@0x${p.start.toString(16)} never served`);
    this.rp({ type: 'SHUT', value: 0 });
    this.state = 'done';
    await main.close();
    await this.pre?.close();
    this.finishedResolve();
  }

  private fail(err: Error): void {
    this.state = 'failed';
    this.error = err;
    this.main?.cancel(err);
    this.pre?.cancel(err);
    this.finishedResolve();
    this.pausedResolve();
  }

  private rp(m: RpMessage): void {
    void this.main?.write(encodeRpMessage(m).written()).catch(() => undefined);
  }

  private sendRequest(p: Pending): void {
    const withId = this.lastReqBlock !== p.block;
    this.lastReqBlock = p.block;
    this.requestsSent.push({ block: p.block, start: p.start, length: p.length, withId });
    this.rp(
      withId
        ? { type: 'REQ_PAGES_ID', start: p.start, length: p.length, block: p.block }
        : { type: 'REQ_PAGES', start: p.start, length: p.length },
    );
  }

  private command(c: MigCommand): void {
    if (!this.beforeDiscards && (c.cmd === 'POSTCOPY_RAM_DISCARD' || c.cmd === 'POSTCOPY_LISTEN')) {
      this.beforeDiscards = {
        ram: new Map([...this.ram].map(([k, v]) => [k, Uint8Array.from(v)])),
        received: new Map([...this.received].map(([k, v]) => [k, Uint8Array.from(v)])),
      };
    }
    this.commands.push(
      c.cmd === 'PING' ? `PING ${c.value}` : c.cmd === 'POSTCOPY_RAM_DISCARD' ? `DISCARD ${c.ranges.length}` : c.cmd,
    );
    switch (c.cmd) {
      case 'PING':
        this.pongsSent.push(c.value);
        this.rp({ type: 'PONG', value: c.value });
        return;
      case 'POSTCOPY_ADVISE':
        this.advise = { summary: c.pageSizeSummary ?? 0, tps: c.targetPageSize ?? 0 };
        return;
      case 'POSTCOPY_RAM_DISCARD':
        for (const r of c.ranges) {
          this.discards.push({ block: c.block, start: r.start, length: r.length });
          this.ram.get(c.block)?.fill(0, r.start, r.start + r.length);
          const bm = this.received.get(c.block);
          if (bm) for (let p = r.start / this.tps; p < (r.start + r.length) / this.tps; p++) clearBit(bm, p);
        }
        return;
      case 'POSTCOPY_LISTEN':
        this.listening = true;
        this.onListen?.();
        return;
      case 'POSTCOPY_RUN':
        this.running = true;
        return;
      case 'RECV_BITMAP': {
        const bm = this.received.get(c.block) ?? new Uint8Array(0);
        this.rp({ type: 'RECV_BITMAP', block: c.block, bitmap: bm });
        return;
      }
      case 'POSTCOPY_RESUME':
        this.rp({ type: 'RESUME_ACK', value: 1 });
        this.lastReqBlock = undefined;
        for (const p of this.pending) this.sendRequest(p);
        return;
      default:
        return;
    }
  }

  private sink(): RamSink {
    return {
      memSize: (list) => {
        this.memSize = list;
        for (const b of list.blocks) {
          if (!this.ram.has(b.name)) {
            this.ram.set(b.name, new Uint8Array(b.usedLength));
            this.received.set(b.name, new Uint8Array(recvBitmapSize(b.usedLength / this.tps)));
          }
          this.hostPageSize.set(b.name, b.pageSize ?? this.tps);
        }
      },
      page: (block, offset, data, info) => this.record(block, offset, data, info, 'PAGE'),
      zero: (block, offset, _fill, info) => this.record(block, offset, undefined, info, 'ZERO'),
    };
  }

  private record(
    block: RamBlockInfo,
    offset: number,
    data: Uint8Array | undefined,
    info: RamRecordInfo,
    kind: 'PAGE' | 'ZERO',
  ): void {
    const ch = info.channel;
    this.records.push({
      channel: ch,
      block: block.name,
      offset,
      kind,
      named: (info.flags & RAM_SAVE_FLAG_CONTINUE) === 0,
      postcopy: this.listening,
    });
    const ram = this.ram.get(block.name) as Uint8Array;
    const bm = this.received.get(block.name) as Uint8Array;
    const hps = this.hostPageSize.get(block.name) ?? this.tps;
    if (!this.listening) {
      if (data) ram.set(data, offset);
      else ram.fill(0, offset, offset + this.tps);
      recvBitmapSet(bm, offset / this.tps);
      return;
    }
    // PostcopyTmpPage: one host page at a time per channel, placed when complete.
    const hostStart = offset - (offset % hps);
    let t = this.tmp[ch];
    if (t && (t.block !== block.name || t.hostStart !== hostStart)) {
      this.violations.push(
        `channel ${ch}: record ${block.name}@0x${offset.toString(16)} before host page 0x${t.hostStart.toString(16)} was complete`,
      );
      t = undefined;
    }
    if (!t) {
      t = { block: block.name, hostStart, count: 0, data: new Uint8Array(hps) };
      this.tmp[ch] = t;
    }
    if (data) t.data.set(data, offset - hostStart);
    t.count++;
    if (t.count === hps / this.tps) {
      const placedAlready = this.has(block.name, hostStart, hps);
      if (placedAlready) this.violations.push(`${block.name}@0x${hostStart.toString(16)} placed twice`);
      ram.set(t.data, hostStart);
      for (let p = hostStart / this.tps; p < (hostStart + hps) / this.tps; p++) recvBitmapSet(bm, p);
      this.tmp[ch] = undefined;
      for (const p of this.pending)
        if (p.block === block.name && p.channel < 0 && hostStart === p.start) p.channel = ch;
      this.settle();
    }
  }

  private settle(): void {
    const done = this.pending.filter((p) => this.has(p.block, p.start, p.length));
    if (done.length === 0) return;
    this.pending = this.pending.filter((p) => !done.includes(p));
    for (const p of done) p.resolve(p.channel);
  }
}

function clearBit(bm: Uint8Array, page: number): void {
  const i = page >>> 3;
  bm[i] = (bm[i] as number) & ~(1 << (page & 7));
}
