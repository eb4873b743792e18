import type { SectionInfo } from '../stream/section-loader.js';
import type { MigCommand } from '../wire/command.js';
import type { Configuration } from '../wire/configuration.js';
import type { MemSizeList } from '../wire/mem-size.js';
import type { RpMessage } from '../wire/return-path.js';

/** RAM record counts of one `ram` section (one iteration) or of a whole channel. */
export interface RamCounts {
  pages: number;
  zero: number;
  xbzrle: number;
  /** Bytes of XBZRLE records after the header word: 3-byte prefix + delta (QEMU's xbzrle-cache.bytes). */
  xbzrle_bytes: number;
  compressed: number;
  /** Pages carried by multifd packets applied at this section's EOS. */
  multifd_pages: number;
  multifd_packets: number;
  /** Body bytes of the section (records + EOS). */
  bytes: number;
}

export function newRamCounts(): RamCounts {
  return {
    pages: 0,
    zero: 0,
    xbzrle: 0,
    xbzrle_bytes: 0,
    compressed: 0,
    multifd_pages: 0,
    multifd_packets: 0,
    bytes: 0,
  };
}

/** One top-level or packaged record, in stream order. */
export interface SummaryRecord {
  offset: number;
  depth: number;
  type: string;
  [field: string]: unknown;
}

export interface MultifdChannelSummary {
  file: string;
  id: number;
  uuid: string;
  compression: string;
  packets: number;
  sync_packets: number;
  pages: number;
  sync_packets_with_pages: number;
  /** Packets after the channel's last SYNC (7.2 may send empty ones). */
  trailing_packets: number;
  bytes: number;
}

/** `--format summary`: everything about the stream except device contents. */
export interface Summary {
  input: { name: string; bytes: number; gzip: boolean };
  page_size: number;
  configuration: { machine: string; target_page_bits?: number; capabilities?: string[]; uuid?: string } | null;
  ram_blocks: { name: string; used_length: number; page_size?: number; mr_addr?: number }[];
  records: SummaryRecord[];
  /** One row per `ram` section (START, each PART, END). */
  iterations: ({ index: number; kind: string; offset: number; depth: number } & RamCounts)[];
  ram_totals: RamCounts & { eos: number; discard_ranges: number; discard_bytes: number; preempt_pages: number };
  commands: { offset: number; depth: number; cmd: string; [field: string]: unknown }[];
  discards: { block: string; start: number; length: number }[];
  package: { offset: number; length: number; contents: string[] } | null;
  return_path: {
    name: string;
    bytes: number;
    counts: Record<string, number>;
    messages: ({ offset: number } & Record<string, unknown>)[];
  } | null;
  multifd: { channels: MultifdChannelSummary[]; epochs: number } | null;
  preempt: ({ name: string; bytes: number; eos: number } & RamCounts) | null;
  vmdesc: { source: string; offset: number | null; length: number; devices: number } | null;
  ram_sha256: Record<string, string> | null;
  warnings: string[];
}

/** Collects the summary while the analyzer walks the stream. */
export class SummaryBuilder {
  readonly s: Summary;
  private current: RamCounts | undefined;
  private currentRecord: SummaryRecord | undefined;
  private packageDepth = 0;

  constructor(input: { name: string; gzip: boolean }, pageSize: number) {
    this.s = {
      input: { name: input.name, bytes: 0, gzip: input.gzip },
      page_size: pageSize,
      configuration: null,
      ram_blocks: [],
      records: [],
      iterations: [],
      ram_totals: { ...newRamCounts(), eos: 0, discard_ranges: 0, discard_bytes: 0, preempt_pages: 0 },
      commands: [],
      discards: [],
      package: null,
      return_path: null,
      multifd: null,
      preempt: null,
      vmdesc: null,
      ram_sha256: null,
      warnings: [],
    };
  }

  /** Counters of the `ram` section being read (undefined outside one). */
  get ram(): RamCounts | undefined {
    return this.current;
  }

  header(offset: number, version: number): void {
    this.s.records.push({ offset, depth: 0, type: 'HEADER', magic: 'QEVM', version });
  }

  configuration(cfg: Configuration, offset: number, length: number): void {
    const c: NonNullable<Summary['configuration']> = { machine: cfg.machine };
    for (const sub of cfg.subsections) {
      if (sub.name === 'configuration/target-page-bits') c.target_page_bits = sub.targetPageBits;
      if (sub.name === 'configuration/capabilities') c.capabilities = sub.capabilities;
      if (sub.name === 'configuration/uuid') c.uuid = Buffer.from(sub.uuid).toString('hex');
    }
    this.s.configuration = c;
    this.s.records.push({
      offset,
      depth: 0,
      type: 'CONFIGURATION',
      length,
      machine: cfg.machine,
      subsections: cfg.subsections.map((x) => x.name),
    });
  }

  sectionBegin(info: SectionInfo, isRam: boolean): void {
    const rec: SummaryRecord = {
      offset: info.offset,
      depth: info.depth,
      type: `SECTION_${info.kind}`,
      section_id: info.sectionId,
      idstr: info.idstr,
    };
    if (info.kind === 'START' || info.kind === 'FULL') {
      rec.instance_id = info.instanceId;
      rec.version_id = info.versionId;
    }
    this.s.records.push(rec);
    this.currentRecord = rec;
    this.current = isRam ? newRamCounts() : undefined;
    if (this.packageDepth > 0 && this.s.package) this.s.package.contents.push(`${info.kind} ${info.label}`);
  }

  sectionEnd(info: SectionInfo, bodyLength: number, guessed: boolean): void {
    const rec = this.currentRecord;
    if (rec) {
      rec.length = bodyLength;
      if (guessed) rec.length_guessed = true;
    }
    const c = this.current;
    if (c && rec) {
      c.bytes = bodyLength;
      const nz: Record<string, number> = {};
      for (const [k, v] of Object.entries(c)) if (v !== 0 && k !== 'bytes') nz[k] = v;
      rec.ram = nz;
      this.s.iterations.push({
        index: this.s.iterations.length,
        kind: info.kind,
        offset: info.offset,
        depth: info.depth,
        ...c,
      });
      const t = this.s.ram_totals;
      t.pages += c.pages;
      t.zero += c.zero;
      t.xbzrle += c.xbzrle;
      t.xbzrle_bytes += c.xbzrle_bytes;
      t.compressed += c.compressed;
      t.multifd_pages += c.multifd_pages;
      t.multifd_packets += c.multifd_packets;
      t.bytes += c.bytes;
    }
    this.current = undefined;
    this.currentRecord = undefined;
  }

  memSize(list: MemSizeList): void {
    this.s.ram_blocks = list.blocks.map((b) => ({
      name: b.name,
      used_length: b.usedLength,
      ...(b.pageSize !== undefined ? { page_size: b.pageSize } : {}),
      ...(b.mrAddr !== undefined ? { mr_addr: b.mrAddr } : {}),
    }));
    if (this.currentRecord) this.currentRecord.blocks = list.blocks.map((b) => [b.name, b.usedLength]);
  }

  eos(): void {
    this.s.ram_totals.eos++;
  }

  command(c: MigCommand, offset: number, depth: number, length: number): void {
    const { cmd } = c;
    const fields = commandFields(c);
    this.s.commands.push({ offset, depth, cmd, ...fields });
    this.s.records.push({ offset, depth, type: 'COMMAND', cmd, length, ...fields });
    if (this.packageDepth > 0 && this.s.package) {
      this.s.package.contents.push(c.cmd === 'PING' ? `PING ${c.value}` : c.cmd);
    }
    if (c.cmd === 'POSTCOPY_RAM_DISCARD') {
      for (const r of c.ranges) {
        this.s.discards.push({ block: c.block, start: r.start, length: r.length });
        this.s.ram_totals.discard_ranges++;
        this.s.ram_totals.discard_bytes += r.length;
      }
    }
    if (c.cmd === 'PACKAGED') {
      this.s.package = { offset: offset + length, length: c.length, contents: [] };
      this.packageDepth++;
    }
  }

  packageEnd(): void {
    this.packageDepth = Math.max(0, this.packageDepth - 1);
  }

  eof(offset: number, depth: number): void {
    this.s.records.push({ offset, depth, type: 'EOF' });
  }

  vmdesc(offset: number, length: number, devices: number): void {
    this.s.records.push({ offset, depth: 0, type: 'VMDESCRIPTION', length, devices });
  }

  returnPath(name: string, bytes: number, messages: (RpMessage & { offset: number })[]): void {
    const counts: Record<string, number> = {};
    for (const m of messages) counts[m.type] = (counts[m.type] ?? 0) + 1;
    this.s.return_path = {
      name,
      bytes,
      counts,
      messages: messages.map((m) =>
        m.type === 'RECV_BITMAP'
          ? { offset: m.offset, type: m.type, block: m.block, bitmap_bytes: m.bitmap.length }
          : { ...m },
      ),
    };
  }

  warn(message: string): void {
    this.s.warnings.push(message);
  }
}

/** A command's payload fields under snake_case names (QEMU's wording). */
export function commandFields(c: MigCommand): Record<string, unknown> {
  switch (c.cmd) {
    case 'PING':
      return { value: c.value };
    case 'POSTCOPY_ADVISE':
      return c.pageSizeSummary === undefined
        ? {}
        : { page_size_summary: c.pageSizeSummary, target_page_size: c.targetPageSize };
    case 'POSTCOPY_RAM_DISCARD':
      return {
        version: c.version,
        block: c.block,
        ranges: c.ranges.map((r) => ({ start: r.start, length: r.length })),
      };
    case 'PACKAGED':
      return { package_length: c.length };
    case 'RECV_BITMAP':
      return { block: c.block };
    default:
      return {};
  }
}
