import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  ByteSource,
  encodeMultifdInit,
  encodeMultifdPacketHeader,
  MULTIFD_FLAG_SYNC,
  type MultifdPacketHeader,
  StreamWriter,
} from '@e2k-migrate/migration';
import type { ByteWriter } from '@e2k-migrate/vmstate';
import { shrinkStream } from './shrink.js';

/** One analyzer input set: a main stream and optional side channels. */
export interface CorpusEntry {
  name: string;
  main: Uint8Array;
  multifd?: Uint8Array[];
  preempt?: Uint8Array;
  returnPath?: Uint8Array;
}

/** The project's copy of the QEMU 7.2 fixtures (tools/src|dist/fuzz → repository root). */
export const FIXTURES = resolve(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'qemu-7.2');

function fixture(rel: string): Uint8Array {
  const p = join(FIXTURES, rel);
  try {
    return plain(readFileSync(p));
  } catch {
    return plain(gunzipSync(readFileSync(`${p}.gz`)));
  }
}

async function shrink(bytes: Uint8Array, keep: number): Promise<Uint8Array> {
  return plain(await shrinkStream(new ByteSource(bytes), keep));
}

/** A copy as a plain Uint8Array (Buffer#slice shares memory, which would let mutations leak). */
function plain(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

/**
 * Small but real inputs for fuzzing and bad-input tests: QEMU fixtures with most RAM pages
 * dropped (structure, commands, packages, device sections, XBZRLE records and vmdesc kept), the
 * real return-path and preempt captures, and a synthetic multifd migration (main + 2 channels).
 */
export async function buildStreamCorpus(): Promise<CorpusEntry[]> {
  const preempt = fixture('postcopy-preempt/conn1.src2dst.bin');
  return [
    { name: 'none-32M', main: fixture('none-32M/none-32M.mig') },
    { name: 'idle-pc-64M', main: await shrink(fixture('idle-pc-64M/idle-pc-64M.mig'), 6) },
    { name: 'bootblock-xbzrle', main: await shrink(fixture('bootblock-xbzrle/bootblock-xbzrle.mig'), 6) },
    {
      name: 'postcopy',
      main: await shrink(fixture('postcopy/conn0.src2dst.bin'), 4),
      returnPath: fixture('postcopy/conn0.dst2src.bin'),
    },
    {
      name: 'postcopy-preempt',
      main: await shrink(fixture('postcopy-preempt/conn0.src2dst.bin'), 4),
      // First three records (8 + 7 + 4096 bytes each) and the final EOS.
      preempt: plain(Buffer.concat([preempt.subarray(0, 3 * 4111), preempt.subarray(preempt.length - 8)])),
      returnPath: fixture('postcopy-preempt/conn0.dst2src.bin'),
    },
    { name: 'multifd-synthetic', ...(await syntheticMultifd()) },
  ];
}

/**
 * A small multifd migration written with the package's own encoders: `-M none`-like main stream
 * (START + PART + END = 3 EOS) and two channels (init, then epochs closed by SYNC packets, one
 * SYNC carrying pages, the same page sent twice in one epoch with the later packet winning).
 */
export async function syntheticMultifd(): Promise<{ main: Uint8Array; multifd: Uint8Array[] }> {
  const tps = 4096;
  const chunks: Uint8Array[] = [];
  const w = new StreamWriter((c) => {
    chunks.push(c);
  });
  w.header().configuration({ machine: 'none', subsections: [] });
  w.sectionHeader({ kind: 'START', sectionId: 2, idstr: 'ram', instanceId: 0, versionId: 4 });
  w.ramMemSize({ total: 1 << 20, blocks: [{ name: 'ram', usedLength: 1 << 20 }] })
    .ramEos()
    .footer(2);
  w.sectionHeader({ kind: 'PART', sectionId: 2 })
    .ramZero(0x10000, 'ram')
    .ramZero(0x11000, undefined)
    .ramEos()
    .footer(2);
  w.sectionHeader({ kind: 'END', sectionId: 2 }).ramEos().footer(2);
  w.sectionHeader({ kind: 'FULL', sectionId: 0, idstr: 'timer', instanceId: 0, versionId: 2 })
    .raw(new Uint8Array(24))
    .footer(0);
  w.eof();
  await w.flush();
  const page = (v: number) => new Uint8Array(tps).fill(v);
  const packet = (
    ch: ByteWriter,
    h: Partial<MultifdPacketHeader> & { packetNum: number },
    pages: Uint8Array[] = [],
  ) => {
    const full: MultifdPacketHeader = {
      flags: 0,
      pagesAlloc: 128,
      normalPages: pages.length,
      nextPacketSize: pages.length * tps,
      block: 'ram',
      offsets: [],
      ...h,
    };
    encodeMultifdPacketHeader(full, tps, ch);
    for (const p of pages) ch.bytes(p);
  };
  const c0 = encodeMultifdInit({ uuid: new Uint8Array(16), id: 0 });
  const c1 = encodeMultifdInit({ uuid: new Uint8Array(16), id: 1 });
  // epoch 0: setup SYNC packets
  packet(c0, { packetNum: 0, flags: MULTIFD_FLAG_SYNC, block: '' });
  packet(c1, { packetNum: 1, flags: MULTIFD_FLAG_SYNC, block: '' });
  // epoch 1: data; page 0x2000 sent twice (packets 2 and 3), the later copy (0x33) wins
  packet(c0, { packetNum: 2, offsets: [0x1000, 0x2000] }, [page(0x11), page(0x22)]);
  packet(c1, { packetNum: 3, offsets: [0x2000, 0x3000] }, [page(0x33), page(0x44)]);
  packet(c0, { packetNum: 4, flags: MULTIFD_FLAG_SYNC, block: '' });
  packet(c1, { packetNum: 4, flags: MULTIFD_FLAG_SYNC, offsets: [0x5000] }, [page(0x55)]);
  packet(c1, { packetNum: 4, block: 'ram', nextPacketSize: tps });
  // epoch 2
  packet(c0, { packetNum: 6, offsets: [0x1000] }, [page(0x66)]);
  packet(c0, { packetNum: 7, flags: MULTIFD_FLAG_SYNC, block: '' });
  packet(c1, { packetNum: 8, flags: MULTIFD_FLAG_SYNC, block: '' });
  return { main: plain(Buffer.concat(chunks)), multifd: [c1.finish(), c0.finish()] };
}
