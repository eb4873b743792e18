import { MigrationStreamError, TruncatedStreamError, toStreamError } from '../errors.js';
import { decodeCommandBody, type MigCommand } from '../wire/command.js';
import { type Configuration, decodeConfigurationBody } from '../wire/configuration.js';
import { QEMU_VM_COMMAND, QEMU_VM_CONFIGURATION, QEMU_VM_EOF, QEMU_VM_VMDESCRIPTION } from '../wire/constants.js';
import { decodeHeader, type FileHeader } from '../wire/header.js';
import { decodeFooter, decodeSectionHeaderBody, isSectionType, SECTION_FOOTER_SIZE } from '../wire/section.js';
import { decodeVmdescTrailerBody, MAX_VMDESC_LENGTH } from '../wire/vmdesc-trailer.js';
import type { ByteSource } from './byte-source.js';
import type { LoaderResolver, SectionInfo, SectionLoader } from './section-loader.js';
import { StreamState } from './stream-state.js';

type Awaitable = void | Promise<void>;

/** QEMU's postcopy sends one package holding no other; nesting is accepted only this deep. */
const MAX_PACKAGE_DEPTH = 4;

/** Where a command sits. */
export interface RecordPlace {
  /** Absolute offset of the record's type byte. */
  offset: number;
  /** Record length in bytes (for PACKAGED: the command only, not the package). */
  length: number;
  /** 0 = main stream, 1 = inside a package. */
  depth: number;
}

/** Callbacks for everything the reader meets, in stream order. Any may be async. */
export interface StreamVisitor {
  header?(h: FileHeader, offset: number): Awaitable;
  configuration?(c: Configuration, place: RecordPlace): Awaitable;
  /** After a section header, before its body is loaded. */
  sectionBegin?(s: SectionInfo): Awaitable;
  /** After the footer (or the body, without footers). */
  sectionEnd?(s: SectionInfo, end: { footerOffset: number; bodyLength: number; lengthGuessed: boolean }): Awaitable;
  command?(c: MigCommand, place: RecordPlace): Awaitable;
  /** Bytes of a package after its POSTCOPY_RUN / EOF (QEMU ignores them). */
  packageTrailing?(bytes: Uint8Array, offset: number): Awaitable;
  /** A package has been read to its end; `offset` is its first byte. */
  packageEnd?(place: { offset: number; length: number; depth: number }): Awaitable;
  eof?(place: RecordPlace): Awaitable;
  /** The vmdesc JSON (a view, valid during the call) and the offset of its 0x06 byte. */
  vmdesc?(json: Uint8Array, offset: number): Awaitable;
  /** Bytes after the end of the stream (only with `trailing: 'report'`). */
  trailing?(bytes: Uint8Array, offset: number): Awaitable;
}

export interface StreamReaderOptions {
  resolver: LoaderResolver;
  visitor?: StreamVisitor;
  state?: StreamState;
  /** The stream starts with magic + version (false for a postcopy-recovery stream). Default true. */
  header?: boolean;
  /** Bytes after EOF (+ vmdesc): `error` (default) or `report` them to the visitor. */
  trailing?: 'error' | 'report';
  /** Accept an input that ends at a record boundary without QEMU_VM_EOF. Default false. */
  allowMissingEof?: boolean;
  /**
   * The reader of the earlier part of the same migration (postcopy recovery: a new connection
   * continues the stream without a header): the section ids it learnt stay valid, so PART/END
   * sections resolve to the same loaders. Use with `header: false` and the same `state`.
   */
  continueFrom?: StreamReader;
  /**
   * The input is a live connection: after the EOF of a postcopy stream (no vmdesc follows) stop
   * reading instead of waiting for the connection to end — the source closes it only after the
   * destination's SHUT. Default false (files are checked for trailing bytes).
   */
  liveSource?: boolean;
}

/** How the stream ended. */
export interface StreamEnd {
  eofOffset: number | undefined;
  vmdescOffset: number | undefined;
  /** Absolute offset just past the last byte read. */
  endOffset: number;
}

interface SectionEntry {
  info: SectionInfo;
  loader: SectionLoader;
}

/**
 * Walks a QEMU migration stream record by record (spec §2.9): header, configuration, sections
 * (bodies dispatched to loaders found by idstr/instance, PART/END by section id), commands
 * (PACKAGED read as a nested stream until POSTCOPY_RUN), EOF and the vmdesc trailer.
 */
export class StreamReader {
  readonly source: ByteSource;
  readonly state: StreamState;
  private readonly opts: StreamReaderOptions;
  private readonly visitor: StreamVisitor;
  private readonly sections = new Map<number, SectionEntry>();
  private recordsSeen = 0;

  constructor(source: ByteSource, opts: StreamReaderOptions) {
    this.source = source;
    this.opts = opts;
    this.state = opts.state ?? opts.continueFrom?.state ?? new StreamState();
    this.visitor = opts.visitor ?? {};
    if (opts.continueFrom) {
      for (const [id, entry] of opts.continueFrom.sections) this.sections.set(id, entry);
      this.recordsSeen = 1;
    }
  }

  async read(): Promise<StreamEnd> {
    const src = this.source;
    const v = this.visitor;
    if (this.opts.header !== false) {
      const at = src.offset;
      const h = await src.parse((r) => decodeHeader(r), 'file header', 8, { channel: src.channel });
      await v.header?.(h, at);
    }
    const end = await this.records(0);
    if (end !== 'eof') {
      if (this.opts.allowMissingEof) return { eofOffset: undefined, vmdescOffset: undefined, endOffset: src.offset };
      throw new TruncatedStreamError('record type (the stream ends without QEMU_VM_EOF)', src.offset, 1, 0, {
        channel: src.channel,
      });
    }
    const eofOffset = src.offset - 1;
    if (this.opts.liveSource && this.state.postcopyListening && src.available === 0) {
      return { eofOffset, vmdescOffset: undefined, endOffset: src.offset };
    }
    let vmdescOffset: number | undefined;
    if ((await src.ensure(1)) && src.buf[src.pos] === QEMU_VM_VMDESCRIPTION) {
      vmdescOffset = src.offset;
      src.consume(1);
      // The vmdesc is the last record: buffer exactly its length, never more (a live source
      // with a return path sends nothing else until the destination answers SHUT).
      if (await src.ensure(4)) {
        const len = src.view.getUint32(src.pos);
        if (len <= MAX_VMDESC_LENGTH) await src.ensure(4 + len);
      }
      const json = await src.parse((r) => decodeVmdescTrailerBody(r), 'vmdesc', MAX_VMDESC_LENGTH + 8, {
        channel: src.channel,
      });
      await v.vmdesc?.(json, vmdescOffset);
    }
    if (this.opts.liveSource && src.available === 0) return { eofOffset, vmdescOffset, endOffset: src.offset };
    if (await src.ensure(1)) await this.trailing();
    return { eofOffset, vmdescOffset, endOffset: src.offset };
  }

  /** Reads records until EOF, POSTCOPY_RUN (inside a package) or the end of the input/limit. */
  private async records(depth: number): Promise<'eof' | 'run' | 'end'> {
    const src = this.source;
    for (;;) {
      if (!(await src.ensure(1))) return 'end';
      const at = src.offset;
      const t = src.buf[src.pos] as number;
      const first = this.recordsSeen++ === 0 && depth === 0;
      if (isSectionType(t)) {
        await this.section(t, depth);
      } else if (t === QEMU_VM_COMMAND) {
        if ((await this.command(depth)) === 'run' && depth > 0) return 'run';
      } else if (t === QEMU_VM_EOF) {
        src.consume(1);
        await this.visitor.eof?.({ offset: at, length: 1, depth });
        return 'eof';
      } else if (t === QEMU_VM_CONFIGURATION && first) {
        src.consume(1);
        const cfg = await src.parse((r) => decodeConfigurationBody(r), 'configuration', 1 << 20, {
          channel: src.channel,
        });
        this.state.applyConfiguration(cfg);
        await this.visitor.configuration?.(cfg, { offset: at, length: src.offset - at, depth });
      } else {
        const where = depth > 0 ? ' inside the package' : '';
        throw new MigrationStreamError(
          'E_UNKNOWN_RECORD',
          `unknown record type 0x${t.toString(16).padStart(2, '0')} at byte offset ${at}${where}`,
          { offset: at, record: 'record type', channel: src.channel },
        );
      }
    }
  }

  private async section(t: 1 | 2 | 3 | 4, depth: number): Promise<void> {
    const src = this.source;
    const at = src.offset;
    src.consume(1);
    const h = await src.parse((r) => decodeSectionHeaderBody(t, r), 'section header', 300, { channel: src.channel });
    let entry: SectionEntry;
    if (h.kind === 'START' || h.kind === 'FULL') {
      const info: SectionInfo = {
        kind: h.kind,
        sectionId: h.sectionId,
        idstr: h.idstr,
        instanceId: h.instanceId,
        versionId: h.versionId,
        offset: at,
        bodyOffset: src.offset,
        depth,
        label: `${h.idstr} (${h.sectionId})`,
      };
      const loader = this.opts.resolver.resolve(info);
      if (loader === undefined) {
        throw new MigrationStreamError(
          'E_UNKNOWN_SECTION',
          `unknown section "${h.idstr}" instance ${h.instanceId} (section id ${h.sectionId}) at byte offset ${at}`,
          { offset: at, section: info.label, channel: src.channel },
        );
      }
      entry = { info, loader };
      this.sections.set(h.sectionId, entry);
      this.state.knownSectionIds.add(h.sectionId);
    } else {
      const known = this.sections.get(h.sectionId);
      if (known === undefined) {
        throw new MigrationStreamError(
          'E_UNKNOWN_SECTION',
          `section ${h.kind} at byte offset ${at} names section id ${h.sectionId}, which no START/FULL introduced`,
          { offset: at, section: `? (${h.sectionId})`, channel: src.channel },
        );
      }
      entry = {
        info: { ...known.info, kind: h.kind, offset: at, bodyOffset: src.offset, depth },
        loader: known.loader,
      };
    }
    const info = entry.info;
    await this.visitor.sectionBegin?.(info);
    let guessed = false;
    try {
      const res = await entry.loader.load({ source: src, section: info, state: this.state });
      guessed = res?.lengthGuessed === true;
    } catch (err) {
      throw toStreamError(err, { section: info.label, channel: src.channel, offset: src.offset });
    }
    const footerOffset = src.offset;
    if (this.state.sectionFooters) {
      await src.parse((r) => decodeFooter(r, info.sectionId, info.label), 'section footer', SECTION_FOOTER_SIZE, {
        section: info.label,
        channel: src.channel,
      });
    }
    await this.visitor.sectionEnd?.(info, {
      footerOffset,
      bodyLength: footerOffset - info.bodyOffset,
      lengthGuessed: guessed,
    });
  }

  private async command(depth: number): Promise<'run' | 'other'> {
    const src = this.source;
    const at = src.offset;
    src.consume(1);
    const c = await src.parse((r) => decodeCommandBody(r), 'command', 1 + 4 + 0xffff, { channel: src.channel });
    const place: RecordPlace = { offset: at, length: src.offset - at, depth };
    if (c.cmd === 'POSTCOPY_ADVISE') this.state.postcopyPageSizeSummary = c.pageSizeSummary;
    if (c.cmd === 'POSTCOPY_LISTEN') this.state.postcopyListening = true;
    await this.visitor.command?.(c, place);
    if (c.cmd === 'PACKAGED') await this.packaged(c.length, depth);
    return c.cmd === 'POSTCOPY_RUN' ? 'run' : 'other';
  }

  private async packaged(length: number, depth: number): Promise<void> {
    const src = this.source;
    const start = src.offset;
    if (depth >= MAX_PACKAGE_DEPTH) {
      throw new MigrationStreamError(
        'E_BAD_COMMAND',
        `packages nested deeper than ${MAX_PACKAGE_DEPTH} at byte offset ${start - 9}`,
        {
          offset: start - 9,
          record: 'command PACKAGED',
          channel: src.channel,
        },
      );
    }
    const room = (src.totalLength ?? Number.POSITIVE_INFINITY) - start;
    if (length > room || start + length > src.limitEnd) {
      throw new MigrationStreamError(
        'E_BAD_LENGTH',
        `package of ${length} bytes at byte offset ${start} runs past the end of the input (${Math.min(room, src.limitEnd - start)} bytes left)`,
        { offset: start - 4, record: 'command PACKAGED', channel: src.channel },
      );
    }
    src.pushLimit(start + length);
    try {
      const end = await this.records(depth + 1);
      if (end === 'end' && src.offset < start + length) {
        throw new TruncatedStreamError('package', src.offset, start + length - src.offset, 0, {
          channel: src.channel,
          record: 'command PACKAGED',
        });
      }
      if (end === 'end') {
        throw new MigrationStreamError(
          'E_TRUNCATED',
          `package at byte offset ${start} (${length} bytes) ends without POSTCOPY_RUN`,
          { offset: start + length, record: 'command PACKAGED', channel: src.channel },
        );
      }
      while (await src.ensure(1)) {
        const n = src.available;
        const at = src.offset;
        await this.visitor.packageTrailing?.(src.buf.subarray(src.pos, src.pos + n), at);
        src.consume(n);
      }
    } finally {
      src.popLimit();
    }
    await this.visitor.packageEnd?.({ offset: start, length, depth });
  }

  private async trailing(): Promise<void> {
    const src = this.source;
    if (this.opts.trailing !== 'report') {
      throw new MigrationStreamError(
        'E_TRAILING_DATA',
        `unexpected byte 0x${(src.buf[src.pos] as number).toString(16).padStart(2, '0')} at byte offset ${src.offset} after the end of the stream`,
        { offset: src.offset, record: 'trailing data', channel: src.channel },
      );
    }
    while (await src.ensure(1)) {
      const n = src.available;
      await this.visitor.trailing?.(src.buf.subarray(src.pos, src.pos + n), src.offset);
      src.consume(n);
    }
  }
}
