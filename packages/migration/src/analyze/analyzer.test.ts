import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { ByteWriter } from '@e2k-migrate/vmstate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnsupportedFeatureError } from '../errors.js';
import { rejectsStreamError } from '../test-util/catch.js';
import { chunks, memoryWriter, PAGE_A, PAGE_B, SYNTH_VMDESC, synthPostcopy, synthPrecopy } from '../test-util/synth.js';
import { MULTIFD_FLAG_SYNC, MULTIFD_FLAG_ZLIB } from '../wire/constants.js';
import { encodeMultifdInit, encodeMultifdPacketHeader, type MultifdPacketHeader } from '../wire/multifd.js';
import { analyzeStream } from './analyzer.js';
import { pyJsonDumps, toPlainJson } from './py-json.js';

const TIMER_STATE = {
  cpu_ticks_offset: '0xfffffffffffffffe (-2)',
  unused: '00 00 00 00 00 00 00 00',
  cpu_clock_offset: '0x0000000000001234',
};

async function* pipe(data: Uint8Array, size = 1000): AsyncGenerator<Uint8Array> {
  for (const c of chunks(data, [size])) yield c;
}

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

describe('analyzeStream', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'e2k-analyze-test-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a pipe: finds the vmdesc by looking ahead, decodes devices, rebuilds RAM', async () => {
    const a = await analyzeStream({ input: pipe(await synthPrecopy()) });
    expect(a.vmdesc?.origin).toBe('look-ahead');
    expect(toPlainJson(a.state)).toEqual({
      'ram (2)': { 'section sizes': { ram: '0x0000000000010000' } },
      'timer (0)': TIMER_STATE,
    });
    const dense = new Uint8Array(0x10000);
    dense.set(PAGE_A, 0);
    dense.set([1, 2], 0);
    dense.set(PAGE_B, 0xf000);
    expect(a.summary.ram_sha256).toEqual({ ram: sha(dense) });
    expect(a.summary.iterations.map((i) => [i.kind, i.pages, i.zero, i.xbzrle, i.xbzrle_bytes])).toEqual([
      ['START', 0, 0, 0, 0],
      ['PART', 2, 1, 1, 7],
      ['END', 0, 1, 0, 0],
    ]);
    expect(a.summary.records.find((r) => r.idstr === 'timer')).toMatchObject({ type: 'SECTION_FULL', length: 24 });
    expect(a.summary.records.find((r) => r.idstr === 'timer')?.length_guessed).toBeUndefined();
  });

  it('recognises gzip by its magic bytes in a pipe (as for stdin) and in memory', async () => {
    const data = await synthPrecopy();
    const gz = new Uint8Array(zlib.gzipSync(data));
    for (const input of [pipe(gz, 10), gz]) {
      const a = await analyzeStream({ input });
      expect(toPlainJson(a.state)).toMatchObject({ 'timer (0)': TIMER_STATE });
      expect(a.summary.input.bytes).toBe(data.length);
    }
  });

  it('reads a seekable file with the vmdesc taken from its tail first', async () => {
    const f = join(dir, 'pre.mig');
    await writeFile(f, await synthPrecopy());
    const a = await analyzeStream({ input: f, reconstructRam: false });
    expect(a.vmdesc?.origin).toBe('file-tail');
    expect(toPlainJson(a.state)).toMatchObject({ 'timer (0)': TIMER_STATE });
    expect(a.summary.ram_sha256).toBeNull();
  });

  it('without any vmdesc lists device sections with guessed lengths and raw bytes; --vmdesc decodes them', async () => {
    const data = await synthPrecopy({ vmdesc: false });
    const a = await analyzeStream({ input: data });
    expect(toPlainJson(a.state)).toMatchObject({
      'timer (0)': {
        length: '0x00000018',
        length_guessed: true,
        data: expect.stringMatching(/^ff ff ff ff ff ff ff fe 00/),
      },
    });
    const b = await analyzeStream({ input: data, vmdesc: new TextEncoder().encode(JSON.stringify(SYNTH_VMDESC)) });
    expect(toPlainJson(b.state)).toMatchObject({ 'timer (0)': TIMER_STATE });
  });

  it('decodes devices read by footer scan once the vmdesc arrives at the end', async () => {
    const pkg = memoryWriter();
    pkg.w.sectionHeader({ kind: 'FULL', sectionId: 0, idstr: 'timer', instanceId: 0, versionId: 2 });
    pkg.w
      .raw(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, ...new Uint8Array(14), 0x12, 0x34]))
      .footer(0);
    pkg.w.command({ cmd: 'POSTCOPY_RUN' });
    const { w, bytes } = memoryWriter();
    w.header()
      .packaged(await pkg.bytes())
      .eof()
      .vmdesc(new TextEncoder().encode(JSON.stringify(SYNTH_VMDESC)));
    const a = await analyzeStream({ input: pipe(await bytes(), 7) });
    expect(toPlainJson(a.state)).toEqual({ 'timer (0)': TIMER_STATE });
    expect(a.summary.records.find((r) => r.idstr === 'timer')?.length_guessed).toBeUndefined();
    expect(a.vmdesc?.origin).toBe('stream');
  });

  it('reads a postcopy migration: commands, discard, package, preempt channel, return path', async () => {
    const { main, preempt, rp } = await synthPostcopy();
    const a = await analyzeStream({ input: main, preempt, returnPath: rp });
    const s = a.summary;
    expect(s.commands.map((c) => c.cmd)).toEqual([
      'OPEN_RETURN_PATH',
      'PING',
      'POSTCOPY_ADVISE',
      'POSTCOPY_RAM_DISCARD',
      'PING',
      'PACKAGED',
      'POSTCOPY_LISTEN',
      'PING',
      'POSTCOPY_RUN',
      'PING',
    ]);
    expect(s.discards).toEqual([{ block: 'ram', start: 0x1000, length: 0x2000 }]);
    expect(s.package?.contents).toEqual(['POSTCOPY_LISTEN', 'FULL timer (0)', 'PING 3', 'POSTCOPY_RUN']);
    expect(s.return_path?.counts).toEqual({ PONG: 4, REQ_PAGES_ID: 1, REQ_PAGES: 1, SHUT: 1 });
    expect(s.return_path?.messages[4]).toMatchObject({
      type: 'REQ_PAGES_ID',
      start: 0x5000,
      length: 0x1000,
      block: 'ram',
      offset: 32,
    });
    expect(s.preempt).toMatchObject({ pages: 1, eos: 1 });
    expect(s.ram_totals).toMatchObject({ pages: 4, discard_ranges: 1, discard_bytes: 0x2000, preempt_pages: 1 });
    const dense = new Uint8Array(0x10000);
    dense.set(PAGE_A, 0); // page 0x1000 was discarded, 0x2000 re-sent in postcopy
    dense.set(PAGE_B, 0x2000);
    dense.set(PAGE_B, 0x5000);
    expect(s.ram_sha256).toEqual({ ram: sha(dense) });
    // No vmdesc in postcopy: the packaged timer is raw with a guessed length.
    expect(toPlainJson(a.state)).toMatchObject({ 'timer (0)': { length_guessed: true } });
  });

  it('applies multifd channels by epoch, numbering channels by their init packet', async () => {
    const { main, channels } = await synthMultifd(false);
    const a = await analyzeStream({ input: main, multifd: [channels[1] as Uint8Array, channels[0] as Uint8Array] });
    const m = a.summary.multifd;
    expect(m?.epochs).toBe(3);
    expect(m?.channels.map((c) => [c.id, c.packets, c.sync_packets, c.pages, c.sync_packets_with_pages])).toEqual([
      [0, 5, 3, 3, 0],
      [1, 5, 3, 3, 1],
    ]);
    expect(a.summary.iterations.map((i) => i.multifd_pages)).toEqual([0, 5, 1]);
    expect(a.summary.ram_sha256?.ram).toBe(sha(expectedMultifdRam()));
  });

  it('decodes zlib-compressed multifd channels (one deflate stream per channel, sync-flushed)', async () => {
    const { main, channels } = await synthMultifd(true);
    const a = await analyzeStream({ input: main, multifd: channels });
    expect(a.summary.multifd?.channels.map((c) => c.compression)).toEqual(['zlib', 'zlib']);
    expect(a.summary.ram_sha256?.ram).toBe(sha(expectedMultifdRam()));
  });

  it('multifd errors are typed: a channel that ends early, two channels with one id', async () => {
    const { main, channels } = await synthMultifd(false);
    const short = await rejectsStreamError(
      analyzeStream({
        input: main,
        multifd: [channels[0] as Uint8Array, (channels[1] as Uint8Array).subarray(0, 64 + 1344)],
      }),
    );
    expect(short.code).toBe('E_MULTIFD');
    expect(short.message).toMatch(/ends before its SYNC packet for epoch 1/);
    const dup = await rejectsStreamError(
      analyzeStream({ input: main, multifd: [channels[0] as Uint8Array, channels[0] as Uint8Array] }),
    );
    expect(dup.code).toBe('E_MULTIFD');
  });

  it('bounds reconstructed RAM by maxRam with a typed error', async () => {
    const e = await rejectsStreamError(analyzeStream({ input: await synthPrecopy(), maxRam: 0x8000 }));
    expect(e.code).toBe('E_RAM_LIMIT');
    expect(typeof e.offset).toBe('number');
  });

  it('names 8.0+ features and their offset', async () => {
    const { w, bytes } = memoryWriter();
    w.header().configuration({ machine: 'none', subsections: [] });
    w.sectionHeader({ kind: 'START', sectionId: 2, idstr: 'ram', instanceId: 0, versionId: 4 });
    w.ramMemSize({ total: 0x1000, blocks: [{ name: 'ram', usedLength: 0x1000 }] });
    const at = w.bytesWritten;
    w.raw(new ByteWriter().u64be(0x200).written()).ramEos().footer(2).eof();
    const e = await rejectsStreamError(analyzeStream({ input: await bytes() }));
    expect(e).toBeInstanceOf(UnsupportedFeatureError);
    expect(e).toMatchObject({ feature: 'MULTIFD_FLUSH', offset: at, section: 'ram (2)' });
  });

  it('prints state exactly as json.dumps(indent=4) would', async () => {
    const a = await analyzeStream({ input: await synthPrecopy(), reconstructRam: false });
    expect(pyJsonDumps(a.state)).toBe(
      '{\n    "ram (2)": {\n        "section sizes": {\n            "ram": "0x0000000000010000"\n        }\n    },\n' +
        '    "timer (0)": {\n        "cpu_ticks_offset": "0xfffffffffffffffe (-2)",\n        "unused": "00 00 00 00 00 00 00 00",\n' +
        '        "cpu_clock_offset": "0x0000000000001234"\n    }\n}',
    );
  });
});

/** RAM after the synthetic multifd migration: page 0x1000 re-sent in epoch 2, 0x2000 sent twice in epoch 1. */
function expectedMultifdRam(): Uint8Array {
  const r = new Uint8Array(1 << 20);
  r.fill(0x66, 0x1000, 0x2000);
  r.fill(0x33, 0x2000, 0x3000);
  r.fill(0x44, 0x3000, 0x4000);
  r.fill(0x55, 0x5000, 0x6000);
  return r;
}

/** Main stream with 3 EOS and two channels of 3 epochs; optionally zlib-compressed payloads. */
async function synthMultifd(compress: boolean): Promise<{ main: Uint8Array; channels: Uint8Array[] }> {
  const tps = 4096;
  const { w, bytes } = memoryWriter();
  w.header().configuration({ machine: 'none', subsections: [] });
  w.sectionHeader({ kind: 'START', sectionId: 2, idstr: 'ram', instanceId: 0, versionId: 4 });
  w.ramMemSize({ total: 1 << 20, blocks: [{ name: 'ram', usedLength: 1 << 20 }] })
    .ramEos()
    .footer(2);
  w.sectionHeader({ kind: 'PART', sectionId: 2 }).ramZero(0x10000, 'ram').ramEos().footer(2);
  w.sectionHeader({ kind: 'END', sectionId: 2 }).ramEos().footer(2).eof();
  const page = (v: number) => new Uint8Array(tps).fill(v);
  const out = [
    encodeMultifdInit({ uuid: new Uint8Array(16), id: 0 }),
    encodeMultifdInit({ uuid: new Uint8Array(16), id: 1 }),
  ];
  const deflaters = [zlib.createDeflate(), zlib.createDeflate()];
  const packet = async (
    ch: 0 | 1,
    h: Partial<MultifdPacketHeader> & { packetNum: number },
    pages: Uint8Array[] = [],
  ) => {
    let payload = new Uint8Array(Buffer.concat(pages));
    if (compress && pages.length) {
      const d = deflaters[ch] as zlib.Deflate;
      const parts: Buffer[] = [];
      const onData = (c: Buffer) => parts.push(c);
      d.on('data', onData);
      d.write(payload);
      await new Promise<void>((r) => d.flush(zlib.constants.Z_SYNC_FLUSH, () => r()));
      await new Promise<void>((r) => setImmediate(r));
      d.off('data', onData);
      payload = new Uint8Array(Buffer.concat(parts));
    }
    const flags = (h.flags ?? 0) | (compress ? MULTIFD_FLAG_ZLIB : 0);
    const full: MultifdPacketHeader = {
      pagesAlloc: 128,
      normalPages: pages.length,
      nextPacketSize: payload.length,
      block: 'ram',
      offsets: [],
      ...h,
      flags,
    };
    encodeMultifdPacketHeader(full, tps, out[ch]);
    out[ch]?.bytes(payload);
  };
  await packet(0, { packetNum: 0, flags: MULTIFD_FLAG_SYNC, block: '' });
  await packet(1, { packetNum: 1, flags: MULTIFD_FLAG_SYNC, block: '' });
  await packet(0, { packetNum: 2, offsets: [0x1000, 0x2000] }, [page(0x11), page(0x22)]);
  await packet(1, { packetNum: 3, offsets: [0x2000, 0x3000] }, [page(0x33), page(0x44)]);
  await packet(0, { packetNum: 4, flags: MULTIFD_FLAG_SYNC, block: '' });
  await packet(1, { packetNum: 4, flags: MULTIFD_FLAG_SYNC, offsets: [0x5000] }, [page(0x55)]);
  await packet(1, { packetNum: 4 });
  await packet(0, { packetNum: 6, offsets: [0x1000] }, [page(0x66)]);
  await packet(0, { packetNum: 7, flags: MULTIFD_FLAG_SYNC, block: '' });
  await packet(1, { packetNum: 8, flags: MULTIFD_FLAG_SYNC, block: '' });
  for (const d of deflaters) d.destroy();
  return { main: await bytes(), channels: out.map((c) => c.finish()) };
}
