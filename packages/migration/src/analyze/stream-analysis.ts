import { freemem } from 'node:os';
import { MigrationStreamError } from '../errors.js';
import type { OpenedInput } from '../stream/input.js';
import { type RamRecordInfo, RamSectionLoader, type RamSink } from '../stream/ram-loader.js';
import { type RamBlockInfo, RamState } from '../stream/ram-state.js';
import { LoaderRegistry, type SectionInfo } from '../stream/section-loader.js';
import { type RecordPlace, StreamReader, type StreamVisitor } from '../stream/stream-reader.js';
import { StreamState } from '../stream/stream-state.js';
import type { MigCommand } from '../wire/command.js';
import type { Configuration } from '../wire/configuration.js';
import type { FileHeader } from '../wire/header.js';
import type { MemSizeList } from '../wire/mem-size.js';
import type { Analysis, AnalyzeOptions } from './analyzer.js';
import { DeviceLoader, type DeviceSection, decodeStoredBody } from './device-loader.js';
import type { MultifdSet } from './multifd-channels.js';
import { readPreemptChannel } from './preempt-reader.js';
import { RamImage } from './ram-image.js';
import { newRamCounts, type RamCounts, SummaryBuilder } from './summary.js';
import { hexBytes, type StateMap, type StateValue } from './vmdesc-decode.js';
import { VmdescProvider } from './vmdesc-provider.js';

/** The visitor/sink pair that turns reader events into the analysis. */
export class StreamAnalysis implements StreamVisitor {
  readonly main: OpenedInput;
  readonly opts: AnalyzeOptions;
  readonly provider = new VmdescProvider();
  readonly state: StreamState;
  readonly ramState = new RamState();
  readonly summary: SummaryBuilder;
  multifd: MultifdSet | undefined;
  private image: RamImage | undefined;
  private readonly sections = new Map<number, { name: string; value: StateValue }>();
  private readonly devices: DeviceSection[] = [];
  private ramSizes: StateMap | undefined;

  constructor(main: OpenedInput, opts: AnalyzeOptions) {
    this.main = main;
    this.opts = opts;
    this.state = new StreamState(opts.pageSize);
    this.summary = new SummaryBuilder({ name: main.name, gzip: main.gzip }, this.state.pageSize);
  }

  async readMain(): Promise<void> {
    const registry = new LoaderRegistry(new DeviceLoader(this.provider, (d) => this.device(d)));
    registry.register(
      'ram',
      new RamSectionLoader(
        this.ramState,
        this.ramSink(() => this.summary.ram),
      ),
    );
    const reader = new StreamReader(this.main.source, { resolver: registry, visitor: this, state: this.state });
    await reader.read();
    this.summary.s.input.bytes = this.main.source.offset;
  }

  async finishMultifd(): Promise<void> {
    const m = this.multifd as MultifdSet;
    const trailingPages = await m.finish(this.state.pageSize, this.ramState, (b, o, p) => this.ram().page(b, o, p));
    if (trailingPages > 0)
      this.summary.warn(`${trailingPages} multifd page(s) arrived after the last SYNC and were applied last`);
    this.summary.s.multifd = { channels: m.summaries(), epochs: m.epochs };
    this.summary.s.ram_totals.multifd_pages += trailingPages;
  }

  async readPreempt(o: OpenedInput): Promise<void> {
    const counts = { ...newRamCounts(), eos: 0 };
    counts.eos = await readPreemptChannel(
      o.source,
      this.ramState,
      this.state,
      this.ramSink(() => counts),
    );
    counts.bytes = o.source.offset;
    this.summary.s.preempt = { name: o.name, ...counts };
    this.summary.s.ram_totals.preempt_pages += counts.pages;
  }

  finish(): Analysis {
    const ram = this.ram();
    if (ram.reconstruct && this.opts.hashRam !== false) {
      const sha: Record<string, string> = {};
      for (const b of ram.blockList) sha[b.name] = b.sha256();
      this.summary.s.ram_sha256 = sha;
    }
    if (this.provider.vmdesc && this.provider.origin !== 'stream' && this.provider.origin !== 'look-ahead') {
      this.summary.s.vmdesc ??= {
        source: this.provider.origin ?? 'option',
        offset: this.provider.offset ?? null,
        length: this.provider.json?.length ?? 0,
        devices: this.provider.vmdesc.devices.length,
      };
    }
    this.summary.s.page_size = this.state.pageSize;
    const state: StateMap = new Map();
    for (const [id, s] of this.sections) state.set(`${s.name} (${id})`, s.value);
    const v = this.provider;
    return {
      summary: this.summary.s,
      state,
      vmdesc: v.vmdesc && v.json && v.origin ? { json: v.json, parsed: v.vmdesc, origin: v.origin } : undefined,
      ram,
      devices: this.devices,
    };
  }

  // ---- StreamVisitor ----

  header(h: FileHeader, offset: number): void {
    this.summary.header(offset, h.version);
  }

  configuration(c: Configuration, place: RecordPlace): void {
    this.summary.configuration(c, place.offset, place.length);
  }

  sectionBegin(s: SectionInfo): void {
    const isRam = s.idstr === 'ram';
    this.summary.sectionBegin(s, isRam);
    if (isRam && (s.kind === 'START' || s.kind === 'FULL')) {
      // analyze-migration.py shows the ram section as its block sizes only.
      this.ramSizes = new Map();
      this.sections.set(s.sectionId, { name: 'ram', value: new Map([['section sizes', this.ramSizes]]) });
    }
  }

  sectionEnd(s: SectionInfo, end: { bodyLength: number; lengthGuessed: boolean }): void {
    this.summary.sectionEnd(s, end.bodyLength, end.lengthGuessed);
  }

  command(c: MigCommand, place: RecordPlace): void {
    this.summary.command(c, place.offset, place.depth, place.length);
    if (c.cmd === 'POSTCOPY_RAM_DISCARD') {
      const block = this.ramState.get(c.block);
      if (block === undefined) {
        throw new MigrationStreamError(
          'E_BAD_RAM_BLOCK',
          `POSTCOPY_RAM_DISCARD at byte offset ${place.offset} names unknown block "${c.block}"`,
          {
            offset: place.offset,
            record: 'command POSTCOPY_RAM_DISCARD',
          },
        );
      }
      for (const r of c.ranges) this.ram().discard(block, r.start, r.length, place.offset);
    }
  }

  packageEnd(): void {
    this.summary.packageEnd();
  }

  eof(place: RecordPlace): void {
    this.summary.eof(place.offset, place.depth);
  }

  vmdesc(json: Uint8Array, offset: number): void {
    const copy = json.slice();
    const late = this.provider.vmdesc === undefined;
    const parsed = late ? this.provider.set(copy, 'stream', offset) : undefined;
    this.summary.vmdesc(offset, json.length, parsed?.devices.length ?? this.provider.vmdesc?.devices.length ?? 0);
    this.summary.s.vmdesc = {
      source: late ? 'stream' : (this.provider.origin ?? 'stream'),
      offset,
      length: json.length,
      devices: (parsed ?? this.provider.vmdesc)?.devices.length ?? 0,
    };
    if (late) this.decodeLate();
  }

  // ---- RAM ----

  private ram(): RamImage {
    this.image ??= new RamImage({
      reconstruct: this.opts.reconstructRam !== false,
      maxRam: this.opts.maxRam ?? freemem(),
      pageSize: this.state.pageSize,
    });
    return this.image;
  }

  private ramSink(counts: () => RamCounts | undefined): RamSink {
    const tps = this.state.pageSize;
    return {
      memSize: (list: MemSizeList) => {
        this.summary.memSize(list);
        this.ram().setBlocks(list);
        const sizes = this.ramSizes;
        if (sizes) {
          sizes.clear();
          for (const b of list.blocks) sizes.set(b.name, `0x${b.usedLength.toString(16).padStart(16, '0')}`);
        }
      },
      zero: (block: RamBlockInfo, offset: number, fill: number) => {
        const c = counts();
        if (c) c.zero++;
        this.image?.zero(block, offset, fill);
      },
      page: (block: RamBlockInfo, offset: number, data: Uint8Array) => {
        const c = counts();
        if (c) c.pages++;
        this.image?.page(block, offset, data);
      },
      xbzrle: (block: RamBlockInfo, offset: number, delta: Uint8Array, info: RamRecordInfo) => {
        const c = counts();
        if (c) {
          c.xbzrle++;
          c.xbzrle_bytes += delta.length + 3;
        }
        this.ram().xbzrle(block, offset, delta, info.offset, info.section?.label);
      },
      compressed: (block: RamBlockInfo, offset: number, zlib: Uint8Array, info: RamRecordInfo) => {
        const c = counts();
        if (c) c.compressed++;
        this.ram().compressed(block, offset, zlib, info.offset, info.section?.label);
      },
      eos: async (info: RamRecordInfo) => {
        if (info.channel !== 0) return;
        this.summary.eos();
        if (this.multifd) {
          const r = await this.multifd.applyEpoch(
            tps,
            this.ramState,
            (b, o, p) => this.ram().page(b, o, p),
            info.offset,
          );
          const c = counts();
          if (c) {
            c.multifd_pages += r.pages;
            c.multifd_packets += r.packets;
          }
        }
      },
    };
  }

  // ---- devices ----

  private device(d: DeviceSection): void {
    this.devices.push(d);
    const value: StateValue = d.value ?? rawValue(d);
    if (d.decodeError)
      this.summary.warn(`${d.section.label}: vmdesc entry did not decode the body (${d.decodeError}); raw bytes kept`);
    this.sections.set(d.section.sectionId, { name: d.section.idstr, value });
  }

  /** The vmdesc arrived after device sections that were read by footer scan: decode them now. */
  private decodeLate(): void {
    for (const d of this.devices) {
      if (d.value !== undefined || d.raw === undefined || d.section.kind !== 'FULL') continue;
      const desc = this.provider.lookup(d.section);
      if (desc === undefined) continue;
      const v = decodeStoredBody(d.raw, desc, d.section.bodyOffset);
      if (v === undefined) {
        this.summary.warn(
          `${d.section.label}: the stream's vmdesc does not decode the ${d.raw.length}-byte body found by footer scan`,
        );
        continue;
      }
      d.value = v;
      d.lengthGuessed = false;
      this.sections.set(d.section.sectionId, { name: d.section.idstr, value: v });
      const rec = this.summary.s.records.find(
        (r) => r.offset === d.section.offset && r.type === `SECTION_${d.section.kind}`,
      );
      if (rec) delete rec.length_guessed;
    }
  }
}

/** How a section without a description appears in the state output. */
function rawValue(d: DeviceSection): StateMap {
  return new Map<string, StateValue>([
    ['length', `0x${d.length.toString(16).padStart(8, '0')}`],
    ['length_guessed', d.lengthGuessed],
    ['data', hexBytes(d.raw ?? new Uint8Array(0))],
  ]);
}
