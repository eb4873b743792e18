import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { MigrationStreamError } from '../errors.js';
import { ByteSource } from './byte-source.js';

/** An input: a path (`-` = stdin), bytes, or any async sequence of byte chunks. */
export type InputSpec = string | Uint8Array | AsyncIterable<Uint8Array>;

export interface OpenedInput {
  source: ByteSource;
  /** Display name: the path, `-`, or `<memory>`. */
  name: string;
  /** The input was gzip (detected by its magic bytes 1f 8b) and is being decompressed. */
  gzip: boolean;
  /** A plain (uncompressed) regular file: its tail can be read before the stream is parsed. */
  seekablePath: string | undefined;
  /** Size on disk (compressed size for .gz), when it is a file. */
  fileSize: number | undefined;
}

export interface OpenOptions {
  channel?: string;
  onProgress?: (bytesRead: number) => void;
  /** Read size for files and the gunzip output chunk size. Default 1 MiB. */
  chunkSize?: number;
}

const GZIP_MAGIC_0 = 0x1f;
const GZIP_MAGIC_1 = 0x8b;

/**
 * Opens an input as a {@link ByteSource}. Gzip is recognised by its magic bytes (not the file
 * name) and decompressed on the fly; nothing is loaded whole into memory.
 */
export async function openInput(spec: InputSpec, opts: OpenOptions = {}): Promise<OpenedInput> {
  const chunkSize = opts.chunkSize ?? 1 << 20;
  const channel = opts.channel ?? 'main';
  if (spec instanceof Uint8Array) {
    if (isGzip(spec)) {
      return {
        source: new ByteSource(gunzipChunks(oneChunk(spec), chunkSize), { channel, onProgress: opts.onProgress }),
        name: '<memory>',
        gzip: true,
        seekablePath: undefined,
        fileSize: undefined,
      };
    }
    return {
      source: new ByteSource(spec, { channel }),
      name: '<memory>',
      gzip: false,
      seekablePath: undefined,
      fileSize: undefined,
    };
  }
  if (typeof spec !== 'string') {
    return {
      source: new ByteSource(sniffGzip(spec, chunkSize), { channel, onProgress: opts.onProgress }),
      name: '<stream>',
      gzip: false,
      seekablePath: undefined,
      fileSize: undefined,
    };
  }
  if (spec === '-') {
    return {
      source: new ByteSource(sniffGzip(process.stdin, chunkSize), { channel, onProgress: opts.onProgress }),
      name: '-',
      gzip: false,
      seekablePath: undefined,
      fileSize: undefined,
    };
  }
  let size: number;
  let regular: boolean;
  const head = new Uint8Array(2);
  try {
    const st = await stat(spec);
    size = st.size;
    regular = st.isFile();
    const fh = await open(spec, 'r');
    try {
      await fh.read(head, 0, 2, 0);
    } finally {
      await fh.close();
    }
  } catch (err) {
    throw new MigrationStreamError('E_IO', `cannot open ${channel} input ${spec}: ${(err as Error).message}`, {
      channel,
      offset: 0,
      cause: err,
    });
  }
  const file = createReadStream(spec, { highWaterMark: chunkSize });
  if (isGzip(head)) {
    return {
      source: new ByteSource(gunzipChunks(file, chunkSize), { channel, onProgress: opts.onProgress }),
      name: spec,
      gzip: true,
      seekablePath: undefined,
      fileSize: size,
    };
  }
  return {
    source: new ByteSource(file, { channel, onProgress: opts.onProgress, totalLength: regular ? size : undefined }),
    name: spec,
    gzip: false,
    seekablePath: regular ? spec : undefined,
    fileSize: size,
  };
}

/** Reads the last `maxBytes` bytes of a regular file. */
export async function readFileTail(path: string, maxBytes: number): Promise<{ bytes: Uint8Array; offset: number }> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const n = Math.min(size, maxBytes);
    const bytes = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const { bytesRead } = await fh.read(bytes, got, n - got, size - n + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return { bytes: bytes.subarray(0, got), offset: size - n };
  } finally {
    await fh.close();
  }
}

function isGzip(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === GZIP_MAGIC_0 && b[1] === GZIP_MAGIC_1;
}

async function* oneChunk(b: Uint8Array): AsyncGenerator<Uint8Array> {
  yield b;
}

/** Decompresses a gzip byte sequence (multi-member files included) chunk by chunk. */
async function* gunzipChunks(input: AsyncIterable<Uint8Array>, chunkSize: number): AsyncGenerator<Uint8Array> {
  const gunzip = createGunzip({ chunkSize });
  const feeder = Readable.from(input, { objectMode: false });
  feeder.on('error', (err) => gunzip.destroy(err));
  feeder.pipe(gunzip);
  try {
    for await (const chunk of gunzip) yield chunk as Uint8Array;
  } finally {
    feeder.unpipe(gunzip);
    feeder.destroy();
    gunzip.destroy();
  }
}

/** Passes a byte sequence through, gunzipping it when its first bytes are the gzip magic. */
async function* sniffGzip(input: AsyncIterable<Uint8Array>, chunkSize: number): AsyncGenerator<Uint8Array> {
  const it = input[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  let headLen = 0;
  let ended = false;
  while (headLen < 2) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    head.push(r.value);
    headLen += r.value.length;
  }
  const first = head.length === 1 ? (head[0] as Uint8Array) : concat(head);
  async function* rest(): AsyncGenerator<Uint8Array> {
    if (first.length) yield first;
    if (ended) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  if (isGzip(first)) yield* gunzipChunks(rest(), chunkSize);
  else yield* rest();
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
