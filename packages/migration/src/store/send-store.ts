import { MigrationStreamError } from '../errors.js';
import { type ByteSink, StreamWriter } from '../stream/stream-writer.js';
import { RAM_SAVE_FLAG_EOS } from '../wire/constants.js';
import type { StoredMigration } from './open-store.js';
import { forEachReturnPathMessage } from './return-path-reader.js';
import { StoreRamReader } from './store-ram-reader.js';

export interface SendProgress {
  /** Stream bytes handed to the channel. */
  bytes: number;
  /** RAM pages sent (PAGE + ZERO records) or skipped. */
  pages: number;
  totalPages: number;
}

export interface SendOptions {
  store: StoredMigration;
  /** Where the stream goes (a channel's write: awaited for backpressure). */
  write: ByteSink;
  /**
   * The channel's receiving side. When given, the sender opens the return path as QEMU does with
   * the `return-path` capability (OPEN_RETURN_PATH, PING 1) and waits for the destination's SHUT:
   * 0 = loaded, anything else = a typed E_PEER_FAILED error.
   */
  returnPath?: AsyncIterable<Uint8Array>;
  /** `send` (default): ZERO records for zero pages; `skip`: omit them (fresh destinations only). */
  zeroPages?: 'send' | 'skip';
  /** RAM records per PART section (default 16384: 64 MiB of pages). */
  pagesPerSection?: number;
  /** How long to wait for SHUT after the last byte (default 60 s). */
  shutTimeoutMs?: number;
  onProgress?: (p: SendProgress) => void;
}

export interface SendResult {
  bytes: number;
  records: { normal: number; duplicate: number; skipped: number };
  sections: { start: number; part: number; end: number };
  /** With a return path: the PONG values seen and the SHUT value. */
  returnPath: { pongs: number[]; shut: number } | undefined;
  /**
   * The vmdesc sent: the stored one, a placeholder (a store without one — a postcopy stream has
   * none — sent with a return path, see {@link placeholderVmdesc}), or none.
   */
  vmdesc: 'stored' | 'placeholder' | 'none';
}

/**
 * The vmdesc sent for a store that has none, when the return path is open: QEMU 7.2's destination
 * reads one after the EOF of a precopy stream (spec §2.6) and answers SHUT only after that read —
 * it skips the JSON without parsing it. Without one it would wait for the byte forever (or, if the
 * sender closed instead, take the end of input as an error and answer SHUT 1). It says what is
 * known: the page size, and no device descriptions (a postcopy source sends none).
 */
export function placeholderVmdesc(targetPageSize: number): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ page_size: targetPageSize, devices: [] }));
}

/** Pages read from a block file per step. */
const READ_PAGES = 256;

/**
 * Sends a stored migration as a QEMU 7.2 precopy stream: header, the stored configuration
 * record, [OPEN_RETURN_PATH, PING 1], ram START (the block list), PART sections with every page
 * (ZERO records for zero pages unless skipped; the block name on a block's first record, CONTINUE
 * after), an empty ram END, the stored device state verbatim (FULL sections through EOF) and the
 * vmdesc. QEMU accepts such a stream as a completed migration (fixtures' acceptance.json).
 */
export async function sendStore(opts: SendOptions): Promise<SendResult> {
  const { store } = opts;
  const m = store.manifest;
  const w = new StreamWriter(opts.write);
  const perSection = opts.pagesPerSection ?? 16384;
  const skipZero = opts.zeroPages === 'skip';
  const totalPages = m.blocks.reduce((n, b) => n + b.usedLength / m.targetPageSize, 0);
  const records = { normal: 0, duplicate: 0, skipped: 0 };
  const sections = { start: 0, part: 0, end: 0 };
  const rp = opts.returnPath ? watchReturnPath(opts.returnPath) : undefined;
  const id = m.ramSection.sectionId;
  let done = 0;
  const progress = () => opts.onProgress?.({ bytes: w.bytesWritten, pages: done, totalPages });

  const ram = await StoreRamReader.open(store);
  try {
    w.header().raw(store.configuration);
    if (rp) w.command({ cmd: 'OPEN_RETURN_PATH' }).command({ cmd: 'PING', value: 1 });
    w.sectionHeader({
      kind: 'START',
      sectionId: id,
      idstr: 'ram',
      instanceId: m.ramSection.instanceId,
      versionId: m.ramSection.versionId,
    });
    w.ramMemSize({
      total: m.blocks.reduce((n, b) => n + b.usedLength, 0),
      blocks: m.blocks.map((b) => ({
        name: b.idstr,
        usedLength: b.usedLength,
        ...(b.mrAddr !== undefined ? { mrAddr: b.mrAddr } : {}),
      })),
    });
    w.ramEos(RAM_SAVE_FLAG_EOS).footer(id);
    sections.start++;
    await w.flush();

    const tps = m.targetPageSize;
    const zero = new Uint8Array(tps);
    const buf = new Uint8Array(READ_PAGES * tps);
    let inSection = 0;
    for (const [index, block] of m.blocks.entries()) {
      let named = false;
      const pages = ram.pages(index);
      for (let first = 0; first < pages; first += READ_PAGES) {
        rp?.check();
        const count = Math.min(READ_PAGES, pages - first);
        const data = await ram.read(index, first, count, buf);
        for (let p = 0; p < count; p++) {
          const page = data.subarray(p * tps, (p + 1) * tps);
          const isZero = Buffer.compare(page, zero) === 0;
          done++;
          if (isZero && skipZero) {
            records.skipped++;
            continue;
          }
          if (inSection === 0) w.sectionHeader({ kind: 'PART', sectionId: id });
          const name = named ? undefined : block.idstr;
          named = true;
          if (isZero) {
            w.ramZero((first + p) * tps, name);
            records.duplicate++;
          } else {
            w.ramPage((first + p) * tps, name, page);
            records.normal++;
          }
          if (++inSection === perSection) {
            w.ramEos().footer(id);
            sections.part++;
            inSection = 0;
          }
        }
        await w.maybeFlush();
        progress();
      }
    }
    if (inSection > 0) {
      w.ramEos().footer(id);
      sections.part++;
    }
    w.sectionHeader({ kind: 'END', sectionId: id }).ramEos().footer(id);
    sections.end++;
    w.raw(store.devices);
    if (store.vmdesc) w.vmdesc(store.vmdesc);
    else if (rp) w.vmdesc(placeholderVmdesc(m.targetPageSize));
    await w.flush();
    progress();
  } finally {
    await ram.close();
  }
  const returnPath = rp ? await rp.shut(opts.shutTimeoutMs ?? 60_000) : undefined;
  const vmdesc = store.vmdesc ? 'stored' : rp ? 'placeholder' : 'none';
  return { bytes: w.bytesWritten, records, sections, returnPath, vmdesc };
}

interface ReturnPathWatch {
  /** Throws the return path's failure, if it failed already. */
  check(): void;
  /** Waits for SHUT; rejects unless it is 0. */
  shut(timeoutMs: number): Promise<{ pongs: number[]; shut: number }>;
}

/** Reads the return path in the background: PONGs are collected, SHUT ends the wait. */
function watchReturnPath(input: AsyncIterable<Uint8Array>): ReturnPathWatch {
  const pongs: number[] = [];
  let shutValue: number | undefined;
  let failure: unknown;
  let onShut: () => void = () => {};
  const shutSeen = new Promise<'shut'>((resolve) => {
    onShut = () => resolve('shut');
  });
  const finished = forEachReturnPathMessage(input, (msg, at) => {
    if (msg.type === 'PONG') pongs.push(msg.value);
    else if (msg.type === 'SHUT') {
      shutValue = msg.value;
      onShut();
    } else {
      throw new MigrationStreamError(
        'E_BAD_RP_MESSAGE',
        `return-path ${msg.type} at byte offset ${at}: a precopy destination only sends PONG and SHUT`,
        { offset: at, channel: 'return-path', record: `return-path ${msg.type}` },
      );
    }
  }).then(
    () => 'ended' as const,
    (err: unknown) => {
      failure = err;
      return 'failed' as const;
    },
  );
  return {
    check() {
      if (failure !== undefined) throw failure;
    },
    async shut(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      const r = await Promise.race([shutSeen, finished, timeout]);
      clearTimeout(timer);
      if (shutValue === undefined) {
        if (failure !== undefined) throw failure;
        throw new MigrationStreamError(
          'E_PEER_FAILED',
          r === 'timeout'
            ? `the destination sent no SHUT within ${timeoutMs} ms after the end of the stream`
            : 'the destination closed the return path without SHUT (it failed to load the stream)',
          { channel: 'return-path', record: 'return-path SHUT' },
        );
      }
      if (shutValue !== 0) {
        throw new MigrationStreamError(
          'E_PEER_FAILED',
          `the destination reported failure on the return path (SHUT ${shutValue})`,
          { channel: 'return-path', record: 'return-path SHUT' },
        );
      }
      return { pongs, shut: shutValue };
    },
  };
}
