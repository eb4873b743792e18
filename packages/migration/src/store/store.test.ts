import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rejectsStreamError } from '../test-util/catch.js';
import {
  chunks,
  memoryWriter,
  PAGE_A,
  PAGE_B,
  SYNTH_VMDESC,
  synthPostcopy,
  synthPrecopy,
  TIMER_BODY,
} from '../test-util/synth.js';
import { openStore } from './open-store.js';
import { type ReceivedMigration, receiveMigration } from './receive-migration.js';
import { sendStore } from './send-store.js';
import { prepareStoreDir, writeStore } from './write-store.js';

/** An in-memory one-way byte pipe: `write` side and an async-iterable read side. */
function pipe(): { write: (b: Uint8Array) => Promise<void>; end: () => void; input: AsyncIterable<Uint8Array> } {
  const queue: Uint8Array[] = [];
  let ended = false;
  let wake: (() => void) | undefined;
  return {
    write: async (b) => {
      queue.push(b.slice());
      wake?.();
    },
    end: () => {
      ended = true;
      wake?.();
    },
    input: {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          while (queue.length) yield queue.shift() as Uint8Array;
          if (ended) return;
          await new Promise<void>((r) => {
            wake = r;
          });
          wake = undefined;
        }
      },
    },
  };
}

/** The RAM the synthetic precopy stream leaves: page 0 = PAGE_A patched by XBZRLE, page 15 = PAGE_B. */
function expectedSynthRam(): Uint8Array {
  const ram = new Uint8Array(0x10000);
  ram.set(PAGE_A, 0);
  ram.set([1, 2], 0);
  ram.set(PAGE_B, 0xf000);
  return ram;
}

function blockBytes(m: ReceivedMigration, i = 0): Uint8Array {
  const b = m.blocks[i];
  if (!b) throw new Error('no block');
  return b.memory.pageView(0, b.size / 4096).slice();
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('receiveMigration', () => {
  it('applies PAGE/ZERO/XBZRLE records and keeps device state and vmdesc verbatim', async () => {
    const stream = await synthPrecopy();
    const m = await receiveMigration({ input: chunks(stream, [1, 7, 100, 4096, 3]) });
    expect(m.configuration.machine).toBe('none');
    expect(m.ramSection).toEqual({ sectionId: 2, instanceId: 0, versionId: 4 });
    expect(blockBytes(m)).toEqual(expectedSynthRam());
    expect(m.counts).toMatchObject({ normal: 2, duplicate: 2, xbzrle: 1, eos: 3 });
    expect(m.ramSections).toEqual({ start: 1, part: 1, end: 1 });
    // FULL timer section (header 1+4+1+5+4+4, body, footer 5) + EOF.
    const timerAt = stream.length - (JSON.stringify(SYNTH_VMDESC).length + 5) - 1 - (19 + TIMER_BODY.length + 5);
    expect(m.devices).toEqual(stream.subarray(timerAt, timerAt + 19 + TIMER_BODY.length + 5 + 1));
    expect(m.deviceSections).toEqual([
      { idstr: 'timer', instanceId: 0, versionId: 2, sectionId: 0, offset: 0, length: 19 + TIMER_BODY.length + 5 },
    ]);
    expect(JSON.parse(new TextDecoder().decode(m.vmdesc))).toEqual(SYNTH_VMDESC);
    expect(m.bytes).toBe(stream.length);
    expect(m.returnPath).toBe(false);
  });

  it('a truncated stream is a typed error naming the offset', async () => {
    const stream = await synthPrecopy();
    const err = await rejectsStreamError(receiveMigration({ input: stream.subarray(0, 4200) }));
    expect(err.code).toBe('E_TRUNCATED');
    expect(err.offset).toBeLessThanOrEqual(4200);
    expect(err.section).toBe('ram (2)');
  });

  it('a stream without a ram END is not a completed migration', async () => {
    const { w, bytes } = memoryWriter();
    w.header().configuration({ machine: 'none', subsections: [] });
    w.sectionHeader({ kind: 'START', sectionId: 2, idstr: 'ram', instanceId: 0, versionId: 4 });
    w.ramMemSize({ total: 0x1000, blocks: [{ name: 'ram', usedLength: 0x1000 }] })
      .ramEos()
      .footer(2)
      .eof();
    const err = await rejectsStreamError(receiveMigration({ input: await bytes() }));
    expect(err.code).toBe('E_STORE_LAYOUT');
  });

  it('device sections before a ram section are a layout error', async () => {
    const { w, bytes } = memoryWriter();
    w.header().configuration({ machine: 'none', subsections: [] });
    w.sectionHeader({ kind: 'START', sectionId: 2, idstr: 'ram', instanceId: 0, versionId: 4 });
    w.ramMemSize({ total: 0x1000, blocks: [{ name: 'ram', usedLength: 0x1000 }] })
      .ramEos()
      .footer(2);
    w.sectionHeader({ kind: 'FULL', sectionId: 0, idstr: 'timer', instanceId: 0, versionId: 2 })
      .raw(TIMER_BODY)
      .footer(0);
    w.sectionHeader({ kind: 'END', sectionId: 2 }).ramEos().footer(2).eof();
    const err = await rejectsStreamError(receiveMigration({ input: await bytes() }));
    expect(err.code).toBe('E_STORE_LAYOUT');
    expect(err.section).toBe('ram (2)');
  });

  it('a return path cannot be opened on a one-way input; postcopy is refused with a typed error', async () => {
    const { main } = await synthPostcopy();
    const oneWay = await rejectsStreamError(receiveMigration({ input: main }));
    expect(oneWay.code).toBe('E_UNSUPPORTED_FEATURE');
    expect(oneWay.record).toBe('command OPEN_RETURN_PATH');
    const sent: Uint8Array[] = [];
    const pc = await rejectsStreamError(
      receiveMigration({ input: main, returnPath: async (b) => void sent.push(b.slice()) }),
    );
    expect(pc.code).toBe('E_UNSUPPORTED_FEATURE');
    // PONG 1 was answered, then SHUT 1 reported the failure to the source.
    expect(Buffer.concat(sent).toString('hex')).toBe('0002000400000001' + '0001000400000001');
  });
});

describe('stored migration', () => {
  let dir: string;
  let stream: Uint8Array;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'e2k-store-'));
    stream = await synthPrecopy();
    await prepareStoreDir(join(dir, 'a'));
    const m = await receiveMigration({ input: stream });
    await writeStore(join(dir, 'a'), m, { capabilities: ['xbzrle'], seconds: 0.1 });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes sparse block files, device state, vmdesc and a manifest that opens and verifies', async () => {
    const s = await openStore(join(dir, 'a'));
    const b = s.manifest.blocks[0];
    expect(b).toMatchObject({ idstr: 'ram', usedLength: 0x10000, pageSize: 4096, dataPages: 2 });
    expect(b?.sha256).toBe(sha(expectedSynthRam()));
    const file = await readFile(join(dir, 'a', b?.file ?? ''));
    expect(new Uint8Array(file)).toEqual(expectedSynthRam());
    const st = await stat(join(dir, 'a', b?.file ?? ''));
    expect(st.blocks * 512).toBeLessThan(0x10000);
    expect(s.manifest.machine).toBe('none');
    expect(s.manifest.capabilities).toEqual(['xbzrle']);
    expect(s.manifest.received.records).toEqual({ normal: 2, duplicate: 2, xbzrle: 1, compressed: 0 });
    expect(s.devices[s.devices.length - 1]).toBe(0);
    await expect(prepareStoreDir(join(dir, 'a'))).rejects.toMatchObject({ code: 'E_STORE_INVALID' });
  });

  it('sends a stream that receives back to the same RAM, device state and vmdesc', async () => {
    const s = await openStore(join(dir, 'a'));
    const out: Uint8Array[] = [];
    const r = await sendStore({ store: s, write: (c) => void out.push(c.slice()), pagesPerSection: 5 });
    const sent = new Uint8Array(Buffer.concat(out));
    expect(r.bytes).toBe(sent.length);
    expect(r.records).toEqual({ normal: 2, duplicate: 14, skipped: 0 });
    expect(r.sections).toEqual({ start: 1, part: 4, end: 1 });
    const back = await receiveMigration({ input: chunks(sent, [13, 5000]) });
    expect(blockBytes(back)).toEqual(expectedSynthRam());
    expect(back.devices).toEqual(s.devices);
    expect(back.vmdesc).toEqual(s.vmdesc);
    expect(back.configurationBytes).toEqual(s.configuration);
    const skipped: Uint8Array[] = [];
    const r2 = await sendStore({ store: s, write: (c) => void skipped.push(c.slice()), zeroPages: 'skip' });
    expect(r2.records).toEqual({ normal: 2, duplicate: 0, skipped: 14 });
    const back2 = await receiveMigration({ input: new Uint8Array(Buffer.concat(skipped)) });
    expect(blockBytes(back2)).toEqual(expectedSynthRam());
  });

  it('with a return path: PING 1 is answered and SHUT 0 ends the send', async () => {
    const s = await openStore(join(dir, 'a'));
    const toDst = pipe();
    const toSrc = pipe();
    const receiving = receiveMigration({ input: toDst.input, returnPath: toSrc.write });
    const sending = sendStore({ store: s, write: toDst.write, returnPath: toSrc.input }).then((r) => {
      toDst.end();
      toSrc.end();
      return r;
    });
    const [m, r] = await Promise.all([receiving, sending]);
    expect(r.returnPath).toEqual({ pongs: [1], shut: 0 });
    expect(m.returnPath).toBe(true);
    expect(blockBytes(m)).toEqual(expectedSynthRam());
  });

  it('a destination that answers SHUT 1 fails the send with E_PEER_FAILED', async () => {
    const s = await openStore(join(dir, 'a'));
    const rp = pipe();
    await rp.write(Uint8Array.from([0, 2, 0, 4, 0, 0, 0, 1, 0, 1, 0, 4, 0, 0, 0, 1]));
    rp.end();
    const err = await rejectsStreamError(sendStore({ store: s, write: () => {}, returnPath: rp.input }));
    expect(err.code).toBe('E_PEER_FAILED');
  });

  it('a damaged store fails to open, naming the file', async () => {
    const a = join(dir, 'a');
    const s = await openStore(a);
    const file = join(a, s.manifest.blocks[0]?.file ?? '');
    const good = await readFile(file);
    const bad = Buffer.from(good);
    bad[0x20] = (bad[0x20] as number) ^ 1;
    await writeFile(file, bad);
    try {
      const err = await rejectsStreamError(openStore(a));
      expect(err.code).toBe('E_STORE_INVALID');
      expect(err.message).toContain('RAM block "ram"');
      expect(err.message).toContain('sha256');
    } finally {
      await writeFile(file, good);
    }
    await writeFile(join(dir, 'bad-manifest.json'), '{');
    await prepareStoreDir(join(dir, 'b'));
    await writeFile(join(dir, 'b', 'manifest.json'), JSON.stringify({ ...s.manifest, blocks: [{ idstr: 'ram' }] }));
    const err2 = await rejectsStreamError(openStore(join(dir, 'b')));
    expect(err2.code).toBe('E_STORE_INVALID');
    expect(err2.message).toContain('blocks[0].usedLength');
    const err3 = await rejectsStreamError(openStore(join(dir, 'missing')));
    expect(err3.code).toBe('E_STORE_INVALID');
  });
});
