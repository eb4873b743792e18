import type { Vmdesc } from '@e2k-migrate/vmstate';
import { type InputSpec, type OpenedInput, openInput, readFileTail } from '../stream/input.js';
import { findVmdescTrailer, MAX_VMDESC_LENGTH } from '../wire/vmdesc-trailer.js';
import type { DeviceSection } from './device-loader.js';
import { MultifdChannel, MultifdSet } from './multifd-channels.js';
import type { RamImage } from './ram-image.js';
import { readReturnPath } from './return-path-reader.js';
import { StreamAnalysis } from './stream-analysis.js';
import type { Summary } from './summary.js';
import type { StateMap } from './vmdesc-decode.js';
import type { VmdescOrigin, VmdescProvider } from './vmdesc-provider.js';

export interface AnalyzeOptions {
  /** The main stream: a path (`-` = stdin, gzip detected by magic), bytes, or chunks. */
  input: InputSpec;
  /** Multifd channel streams (any order: the init packet numbers them). */
  multifd?: InputSpec[];
  /** The postcopy-preempt channel stream. */
  preempt?: InputSpec;
  /** The destination → source stream of the main connection. */
  returnPath?: InputSpec;
  /** vmdesc JSON to decode device sections with (e.g. from an identically configured VM). */
  vmdesc?: Uint8Array;
  /** Rebuild RAM (needed for --extract-ram and RAM sha256). Default true. */
  reconstructRam?: boolean;
  /** Put the sha256 of every reconstructed block in the summary. Default true. */
  hashRam?: boolean;
  /** Bound on reconstructed RAM. Default: the machine's free memory. */
  maxRam?: number;
  /** Target page size when the stream does not say (default 4096, or the vmdesc's page_size). */
  pageSize?: number;
  /** Called as the main input is read, with the bytes read so far. */
  onProgress?: (bytesRead: number) => void;
  /** Read size for files and gunzip. */
  chunkSize?: number;
}

export interface Analysis {
  summary: Summary;
  /** analyze-migration.py `-d state`: `"idstr (section_id)"` → decoded value. */
  state: StateMap;
  vmdesc: { json: Uint8Array; parsed: Vmdesc; origin: VmdescOrigin } | undefined;
  ram: RamImage;
  devices: DeviceSection[];
}

/** Tail sizes tried, in turn, to find a plain file's vmdesc before parsing it. */
const TAIL_STEPS = [256 << 10, 4 << 20, MAX_VMDESC_LENGTH + 16];

/**
 * A seekable file can be read from its end first: the vmdesc JSON ends the file (so its last
 * byte is `}`) and its `06 <be32 len>` header sits `len + 5` bytes before the end. Reads a
 * growing tail until the trailer is found (or cannot be there).
 */
async function readVmdescFromTail(provider: VmdescProvider, path: string): Promise<void> {
  for (const step of TAIL_STEPS) {
    const tail = await readFileTail(path, step);
    if (tail.bytes.at(-1) !== 0x7d) return;
    const loc = findVmdescTrailer(tail.bytes);
    if (loc) {
      provider.set(
        tail.bytes.slice(loc.jsonStart, loc.jsonStart + loc.jsonLength),
        'file-tail',
        tail.offset + loc.index,
      );
      return;
    }
    if (tail.offset === 0) return;
  }
}

/**
 * Reads a QEMU 7.2 migration (main stream plus optional multifd, preempt and return-path
 * channels) and produces the summary, the device state and the reconstructed RAM.
 */
export async function analyzeStream(opts: AnalyzeOptions): Promise<Analysis> {
  const opened: OpenedInput[] = [];
  try {
    const main = await openInput(opts.input, {
      channel: 'main',
      onProgress: opts.onProgress,
      chunkSize: opts.chunkSize,
    });
    opened.push(main);
    const a = new StreamAnalysis(main, opts);
    if (opts.vmdesc) a.provider.set(opts.vmdesc, 'option');
    else if (main.seekablePath) await readVmdescFromTail(a.provider, main.seekablePath);
    if (a.provider.vmdesc && opts.pageSize === undefined) a.state.pageSize = a.provider.vmdesc.page_size;
    if (opts.multifd?.length) {
      const channels: MultifdChannel[] = [];
      for (const [i, spec] of opts.multifd.entries()) {
        const o = await openInput(spec, { channel: `multifd:${i}`, chunkSize: opts.chunkSize });
        opened.push(o);
        channels.push(new MultifdChannel(o.source, o.name));
      }
      a.multifd = new MultifdSet(channels);
      await a.multifd.open();
    }
    await a.readMain();
    if (a.multifd) await a.finishMultifd();
    if (opts.preempt !== undefined) {
      const o = await openInput(opts.preempt, { channel: 'preempt', chunkSize: opts.chunkSize });
      opened.push(o);
      await a.readPreempt(o);
    }
    if (opts.returnPath !== undefined) {
      const o = await openInput(opts.returnPath, { channel: 'return-path', chunkSize: opts.chunkSize });
      opened.push(o);
      const msgs = await readReturnPath(o.source);
      a.summary.returnPath(o.name, o.source.offset, msgs);
    }
    return a.finish();
  } finally {
    for (const o of opened) await o.source.close();
  }
}
