import type { MigCommand } from '../wire/command.js';
import type { Configuration } from '../wire/configuration.js';
import { RAM_SAVE_FLAG_CONTINUE } from '../wire/constants.js';
import type { MemSizeList } from '../wire/mem-size.js';
import type { ByteSource } from './byte-source.js';
import { FooterScanLoader } from './footer-scan.js';
import { type RamRecordInfo, RamSectionLoader, type RamSink } from './ram-loader.js';
import { type RamBlockInfo, RamState } from './ram-state.js';
import { LoaderRegistry, type SectionContext, type SectionInfo, type SectionLoader } from './section-loader.js';
import { type RecordPlace, type StreamEnd, StreamReader, type StreamVisitor } from './stream-reader.js';
import { StreamState } from './stream-state.js';
import { StreamWriter } from './stream-writer.js';

/** Measures a device body and returns it (a view valid until the next read), consuming it. */
export type BodyReader = (ctx: SectionContext) => Promise<Uint8Array>;

export interface TranscodeOptions {
  /** How non-RAM section bodies are delimited. Default: footer scan (spec §2.9). */
  readBody?: BodyReader;
  state?: StreamState;
}

/**
 * Decodes a stream record by record and writes every record again with {@link StreamWriter}:
 * RAM records are re-encoded from their decoded fields (same flags, names, pages, deltas),
 * commands and configuration from their decoded values, packages re-assembled, device bodies
 * copied. For a stream QEMU wrote, the output is byte-identical to the input.
 */
export async function transcode(src: ByteSource, out: StreamWriter, opts: TranscodeOptions = {}): Promise<StreamEnd> {
  const t = new Transcoder(out);
  const bodies: SectionLoader = opts.readBody
    ? {
        load: async (ctx) => {
          t.w.raw(await (opts.readBody as BodyReader)(ctx));
          return undefined;
        },
      }
    : new FooterScanLoader((_s, body) => {
        t.w.raw(body);
      });
  const registry = new LoaderRegistry(bodies);
  registry.register('ram', new RamSectionLoader(new RamState(), t.sink));
  const reader = new StreamReader(src, {
    resolver: registry,
    visitor: t,
    state: opts.state ?? new StreamState(),
    trailing: 'report',
  });
  const end = await reader.read();
  await out.flush();
  return end;
}

class Transcoder implements StreamVisitor {
  w: StreamWriter;
  private readonly stack: { outer: StreamWriter; chunks: Uint8Array[] }[] = [];
  readonly sink: RamSink;

  constructor(out: StreamWriter) {
    this.w = out;
    const name = (b: RamBlockInfo, info: RamRecordInfo) => (info.flags & RAM_SAVE_FLAG_CONTINUE ? undefined : b.name);
    this.sink = {
      memSize: (list: MemSizeList) => {
        this.w.ramMemSize(list);
      },
      zero: (b, offset, fill, info) => {
        this.w.ramZero(offset, name(b, info), fill);
      },
      page: (b, offset, data, info) => {
        this.w.ramPage(offset, name(b, info), data);
      },
      xbzrle: (b, offset, delta, info) => {
        this.w.ramXbzrle(offset, name(b, info), delta);
      },
      compressed: (b, offset, zlib, info) => {
        this.w.ramCompressed(offset, name(b, info), zlib);
      },
      eos: (info) => {
        this.w.ramEos(info.flags);
      },
      idle: () => (this.stack.length === 0 ? this.w.maybeFlush() : undefined),
    };
  }

  header(): void {
    this.w.header();
  }

  configuration(c: Configuration): void {
    this.w.configuration(c);
  }

  sectionBegin(s: SectionInfo): void {
    if (s.kind === 'START' || s.kind === 'FULL') {
      this.w.sectionHeader({
        kind: s.kind,
        sectionId: s.sectionId,
        idstr: s.idstr,
        instanceId: s.instanceId,
        versionId: s.versionId,
      });
    } else {
      this.w.sectionHeader({ kind: s.kind, sectionId: s.sectionId });
    }
  }

  async sectionEnd(s: SectionInfo): Promise<void> {
    this.w.footer(s.sectionId);
    if (this.stack.length === 0) await this.w.maybeFlush();
  }

  command(c: MigCommand): void {
    if (c.cmd !== 'PACKAGED') {
      this.w.command(c);
      return;
    }
    const chunks: Uint8Array[] = [];
    this.stack.push({ outer: this.w, chunks });
    this.w = new StreamWriter((chunk) => {
      chunks.push(chunk);
    });
  }

  packageTrailing(bytes: Uint8Array): void {
    this.w.raw(bytes);
  }

  async packageEnd(): Promise<void> {
    await this.w.flush();
    const top = this.stack.pop();
    if (top === undefined) return;
    this.w = top.outer;
    this.w.packaged(Buffer.concat(top.chunks));
  }

  eof(_place: RecordPlace): void {
    this.w.eof();
  }

  vmdesc(json: Uint8Array): void {
    this.w.vmdesc(json);
  }

  trailing(bytes: Uint8Array): void {
    this.w.raw(bytes);
  }
}
