import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { ByteWriter } from '@e2k-migrate/vmstate';
import { encodeCommand, type MigCommand } from '../wire/command.js';
import { type Configuration, encodeConfiguration } from '../wire/configuration.js';
import {
  ENCODING_FLAG_XBZRLE,
  QEMU_VM_EOF,
  RAM_SAVE_FLAG_COMPRESS_PAGE,
  RAM_SAVE_FLAG_CONTINUE,
  RAM_SAVE_FLAG_EOS,
  RAM_SAVE_FLAG_PAGE,
  RAM_SAVE_FLAG_XBZRLE,
  RAM_SAVE_FLAG_ZERO,
} from '../wire/constants.js';
import { encodeHeader } from '../wire/header.js';
import { encodeMemSizeList, type MemSizeList } from '../wire/mem-size.js';
import { encodeRamRecordHeader } from '../wire/ram-record.js';
import { encodeFooter, encodeSectionHeader, type SectionHeader } from '../wire/section.js';
import { encodeVmdescTrailer } from '../wire/vmdesc-trailer.js';

/** Where written bytes go. The chunk is handed over: the sink may keep it. */
export type ByteSink = (chunk: Uint8Array) => void | Promise<void>;

/** A sink that writes to a Node Writable and waits for 'drain' when it asks to (backpressure). */
export function writableSink(stream: Writable): ByteSink {
  return async (chunk) => {
    if (!stream.write(chunk)) await once(stream, 'drain');
  };
}

export interface StreamWriterOptions {
  /** Buffered bytes that make {@link StreamWriter.maybeFlush} write out. Default 1 MiB. */
  flushBytes?: number;
}

/**
 * Writes a QEMU migration stream record by record into a buffer that is handed to the sink in
 * large chunks. Record methods are synchronous; call `maybeFlush()` at convenient points (it
 * awaits the sink, giving backpressure) and `flush()` at the end.
 *
 * RAM record methods take `block` = the block name, or `undefined` for CONTINUE (same block as
 * the previous record on this channel; the caller tracks that, as QEMU's sender does).
 */
export class StreamWriter {
  private readonly sink: ByteSink;
  private readonly flushBytes: number;
  private w: ByteWriter;
  private flushed = 0;

  constructor(sink: ByteSink, opts: StreamWriterOptions = {}) {
    this.sink = sink;
    this.flushBytes = opts.flushBytes ?? 1 << 20;
    this.w = new ByteWriter(this.flushBytes + 8192);
  }

  /** Bytes written so far (flushed or buffered). */
  get bytesWritten(): number {
    return this.flushed + this.w.length;
  }

  /** Bytes buffered and not yet handed to the sink. */
  get pending(): number {
    return this.w.length;
  }

  header(): this {
    encodeHeader(this.w);
    return this;
  }

  configuration(cfg: Configuration): this {
    encodeConfiguration(cfg, this.w);
    return this;
  }

  sectionHeader(h: SectionHeader): this {
    encodeSectionHeader(h, this.w);
    return this;
  }

  footer(sectionId: number): this {
    encodeFooter(sectionId, this.w);
    return this;
  }

  /** START section's block list record. */
  ramMemSize(list: MemSizeList): this {
    encodeMemSizeList(list, this.w);
    return this;
  }

  ramZero(offset: number, block: string | undefined, fill = 0): this {
    encodeRamRecordHeader(this.w, offset, RAM_SAVE_FLAG_ZERO | cont(block), block).u8(fill);
    return this;
  }

  ramPage(offset: number, block: string | undefined, page: Uint8Array): this {
    encodeRamRecordHeader(this.w, offset, RAM_SAVE_FLAG_PAGE | cont(block), block).bytes(page);
    return this;
  }

  ramXbzrle(offset: number, block: string | undefined, delta: Uint8Array): this {
    encodeRamRecordHeader(this.w, offset, RAM_SAVE_FLAG_XBZRLE | cont(block), block)
      .u8(ENCODING_FLAG_XBZRLE)
      .u16be(delta.length)
      .bytes(delta);
    return this;
  }

  ramCompressed(offset: number, block: string | undefined, zlib: Uint8Array): this {
    encodeRamRecordHeader(this.w, offset, RAM_SAVE_FLAG_COMPRESS_PAGE | cont(block), block)
      .u32be(zlib.length)
      .bytes(zlib);
    return this;
  }

  /** EOS; `flags` may carry extra bits QEMU ignores (CONTINUE) for exact re-encoding. */
  ramEos(flags = RAM_SAVE_FLAG_EOS): this {
    this.w.u64be(flags);
    return this;
  }

  command(c: MigCommand): this {
    encodeCommand(c, this.w);
    return this;
  }

  /** PACKAGED command followed by the package (a header-less nested stream). */
  packaged(pkg: Uint8Array): this {
    encodeCommand({ cmd: 'PACKAGED', length: pkg.length }, this.w).bytes(pkg);
    return this;
  }

  eof(): this {
    this.w.u8(QEMU_VM_EOF);
    return this;
  }

  vmdesc(json: Uint8Array): this {
    encodeVmdescTrailer(json, this.w);
    return this;
  }

  /** Bytes written verbatim (an opaque device body, say). */
  raw(bytes: Uint8Array): this {
    this.w.bytes(bytes);
    return this;
  }

  /** Hands the buffer to the sink if it holds at least `flushBytes`. */
  async maybeFlush(): Promise<void> {
    if (this.w.length >= this.flushBytes) await this.flush();
  }

  /** Hands everything buffered to the sink and waits for it. */
  async flush(): Promise<void> {
    if (this.w.length === 0) return;
    const chunk = this.w.written();
    this.flushed += chunk.length;
    this.w = new ByteWriter(this.flushBytes + 8192);
    await this.sink(chunk);
  }
}

function cont(block: string | undefined): number {
  return block === undefined ? RAM_SAVE_FLAG_CONTINUE : 0;
}
