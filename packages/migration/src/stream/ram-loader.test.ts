import { ByteWriter } from '@e2k-migrate/vmstate';
import { describe, expect, it } from 'vitest';
import { UnsupportedFeatureError } from '../errors.js';
import { rejectsStreamError } from '../test-util/catch.js';
import { hex } from '../test-util/hex.js';
import { chunks } from '../test-util/synth.js';
import { encodeMemSizeList } from '../wire/mem-size.js';
import { encodeRamEos, encodeRamPage, encodeRamZero } from '../wire/ram-record.js';
import { ByteSource } from './byte-source.js';
import { loadRamBody, type RamSink } from './ram-loader.js';
import { RAM_CHANNEL_MAIN, RAM_CHANNEL_PREEMPT, RamState } from './ram-state.js';
import { StreamState } from './stream-state.js';

function ramWith(blocks: [string, number][]): RamState {
  const ram = new RamState();
  ram.setBlocks({
    total: blocks.reduce((s, [, n]) => s + n, 0),
    blocks: blocks.map(([name, usedLength]) => ({ name, usedLength })),
  });
  return ram;
}

function logSink(log: string[]): RamSink {
  return {
    page: (b, o) => void log.push(`page ${b.name}@${o.toString(16)}`),
    zero: (b, o) => void log.push(`zero ${b.name}@${o.toString(16)}`),
    eos: () => void log.push('eos'),
  };
}

describe('RAM body loader', () => {
  const page = new Uint8Array(4096).fill(3);

  it('keeps the CONTINUE block per channel and across bodies', async () => {
    const ram = ramWith([
      ['pc.ram', 0x10000],
      ['pc.rom', 0x2000],
    ]);
    const w = new ByteWriter();
    encodeRamPage(w, 0, 'pc.ram', page);
    encodeRamEos(w);
    encodeRamZero(w, 0x1000, undefined); // still pc.ram in the next body
    encodeRamZero(w, 0x1000, 'pc.rom');
    encodeRamZero(w, 0x0, undefined);
    encodeRamEos(w);
    const src = new ByteSource(chunks(w.written(), [13]));
    const log: string[] = [];
    const state = new StreamState();
    await loadRamBody(src, ram, state, logSink(log), { channel: RAM_CHANNEL_MAIN });
    await loadRamBody(src, ram, state, logSink(log), { channel: RAM_CHANNEL_MAIN });
    expect(log).toEqual(['page pc.ram@0', 'eos', 'zero pc.ram@1000', 'zero pc.rom@1000', 'zero pc.rom@0', 'eos']);
    // The preempt channel has its own memory: CONTINUE there without a name is an error.
    const e = await rejectsStreamError(
      loadRamBody(new ByteSource(hex('0000000000000022 00')), ram, state, {}, { channel: RAM_CHANNEL_PREEMPT }),
    );
    expect(e).toMatchObject({ code: 'E_BAD_RAM_BLOCK', offset: 0 });
  });

  it('rejects unknown blocks and offsets outside the block', async () => {
    const ram = ramWith([['ram', 0x2000]]);
    const state = new StreamState();
    const unknown = await rejectsStreamError(
      loadRamBody(new ByteSource(hex('0000000000000002 06 "pc.ram" 00')), ram, state, {}, { channel: 0 }),
    );
    expect(unknown).toMatchObject({ code: 'E_BAD_RAM_BLOCK', offset: 0 });
    const outside = await rejectsStreamError(
      loadRamBody(new ByteSource(hex('0000000000002002 03 "ram" 00')), ram, state, {}, { channel: 0 }),
    );
    expect(outside).toMatchObject({ code: 'E_BAD_RAM_OFFSET', offset: 0 });
  });

  it('parses the MEM_SIZE list, honouring x-ignore-shared from the configuration', async () => {
    const state = new StreamState();
    state.applyConfiguration({
      machine: 'pc',
      subsections: [{ name: 'configuration/capabilities', version: 1, capabilities: ['x-ignore-shared'] }],
    });
    const w = encodeMemSizeList({
      total: 0x3000,
      blocks: [
        { name: 'a', usedLength: 0x1000, mrAddr: 5 },
        { name: 'b', usedLength: 0x2000, mrAddr: 6 },
      ],
    });
    encodeRamEos(w);
    const ram = new RamState();
    const seen: string[] = [];
    await loadRamBody(
      new ByteSource(chunks(w.written(), [3])),
      ram,
      state,
      { memSize: (l, i) => void seen.push(`${JSON.stringify(l)} len=${i.length}`) },
      { channel: 0 },
    );
    expect(seen).toEqual([
      `${JSON.stringify({
        total: 0x3000,
        blocks: [
          { name: 'a', usedLength: 0x1000, mrAddr: 5 },
          { name: 'b', usedLength: 0x2000, mrAddr: 6 },
        ],
      })} len=44`,
    ]);
    expect(ram.get('b')).toMatchObject({ usedLength: 0x2000, index: 1 });
  });

  it('rejects XBZRLE once postcopy is listening, and MULTIFD_FLUSH always', async () => {
    const ram = ramWith([['ram', 0x2000]]);
    const state = new StreamState();
    state.postcopyListening = true;
    const x = await rejectsStreamError(
      loadRamBody(new ByteSource(hex('0000000000000040 03 "ram" 01 0002 00 01 aa')), ram, state, {}, { channel: 0 }),
    );
    expect(x.code).toBe('E_BAD_RAM_FLAGS');
    const f = await rejectsStreamError(
      loadRamBody(new ByteSource(hex('0000000000000200')), ram, new StreamState(), {}, { channel: 0 }),
    );
    expect(f).toBeInstanceOf(UnsupportedFeatureError);
    expect(f.offset).toBe(0);
  });

  it('reports a body cut short as truncation at the record', async () => {
    const ram = ramWith([['ram', 0x2000]]);
    const w = encodeRamPage(new ByteWriter(), 0, 'ram', page).written();
    const e = await rejectsStreamError(
      loadRamBody(new ByteSource(chunks(w.subarray(0, 2000), [100])), ram, new StreamState(), {}, { channel: 0 }),
    );
    expect(e).toMatchObject({ code: 'E_TRUNCATED', offset: 0 });
  });
});
