import { readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { receiveMigration } from '@e2k-migrate/migration';
import { readFixture, readFixtureJson } from '@e2k-migrate/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mutate, Rng } from '../../tools/src/fuzz/mutate.js';
import { receiveCase } from '../../tools/src/fuzz/receive.js';
import { buildStreamCorpus } from '../../tools/src/fuzz/stream-corpus.js';
import { e2k, e2kBuilt } from '../../tools/src/qemu/index.js';
import {
  fixtureBlockShas,
  fixtureCatCommand,
  fixtureRecords,
  fixtureSha,
  PRECOPY_FIXTURES,
  readManifest,
  receiveFixture,
  sha256,
  storedBlock,
  tempDir,
} from './helpers.js';

/**
 * The receiver against every single-channel precopy fixture QEMU 7.2 wrote (plain, live, XBZRLE,
 * -M none, -M pc): the RAM it rebuilds equals QEMU's pmemsave (and the reference parser's blocks),
 * and the device state and vmdesc it keeps are the stream's own bytes. No QEMU needed.
 */
describe('receiving the QEMU 7.2 precopy fixtures', () => {
  for (const name of PRECOPY_FIXTURES) {
    it(`${name}: RAM, device bytes and vmdesc`, async () => {
      const m = await receiveFixture(name);
      try {
        const stream = readFixture(`${name}/${name}.mig`);
        const main = m.blocks[0];
        expect(main?.name).toBe(name.startsWith('none') ? 'ram' : 'pc.ram');
        const shas = Object.fromEntries(m.blocks.map((b) => [b.name, sha256(b.memory.pageView(0, b.size / 4096))]));
        expect(shas).toEqual(fixtureBlockShas(name));
        expect(shas[main?.name ?? '']).toBe(fixtureSha(`${name}/${name}.ram`));

        const recs = fixtureRecords(name);
        const firstFull = recs.find((r) => r.type === 'SECTION_FULL');
        const eof = recs.find((r) => r.type === 'EOF');
        const vmdesc = recs.find((r) => r.type === 'VMDESCRIPTION');
        if (!firstFull || !eof || !vmdesc) throw new Error('fixture summary lacks records');
        expect(sha256(m.devices)).toBe(sha256(stream.subarray(firstFull.off, eof.off + 1)));
        expect(m.deviceSections.map((s) => s.idstr)).toEqual(
          recs.filter((r) => r.type === 'SECTION_FULL').map((r) => r.idstr),
        );
        expect(sha256(m.vmdesc ?? new Uint8Array())).toBe(sha256(stream.subarray(vmdesc.off + 5)));
        expect(m.bytes).toBe(stream.length);

        const stats = readFixtureJson<{ ram_stats: Record<string, number> }>(`${name}/${name}.summary.json`).ram_stats;
        expect(m.counts).toMatchObject({
          normal: stats.page ?? 0,
          duplicate: stats.zero ?? 0,
          xbzrle: stats.xbzrle ?? 0,
          eos: stats.eos ?? 0,
        });
      } finally {
        m.close();
      }
    });
  }

  it('a corrupted fixture stream is a typed error naming the offset and section', async () => {
    const stream = readFixture('bootblock-xbzrle/bootblock-xbzrle.mig');
    // The first XBZRLE record of the fixture: flip its encoding byte (must be 0x01).
    const first = fixtureRecords('bootblock-xbzrle').filter((r) => r.type === 'SECTION_PART')[1];
    if (!first) throw new Error('no PART');
    const bad = new Uint8Array(stream);
    const at = findXbzrleRecord(bad, first.off);
    bad[at + 8] = 0x02;
    const err = await receiveMigration({ input: bad }).then(
      () => undefined,
      (e: unknown) => e as { code: string; offset: number; section: string },
    );
    expect(err?.code).toBe('E_XBZRLE');
    // The record at `at`: be64 word, then the encoding byte that is now wrong.
    expect(err?.offset).toBeGreaterThanOrEqual(at);
    expect(err?.offset).toBeLessThanOrEqual(at + 8);
    expect(err?.section).toBe('ram (2)');
  });
});

describe('the receiver on mutated streams', () => {
  it('400 truncated / flipped / spliced streams: a received migration or a typed error with an offset', async () => {
    const corpus = (await buildStreamCorpus()).filter((c) => !c.name.startsWith('postcopy') && !c.multifd);
    const rng = new Rng(5150);
    const codes = new Set<string>();
    for (let i = 0; i < 400; i++) {
      let bytes = rng.pick(corpus).main;
      for (let k = 1 + rng.int(3); k > 0; k--) bytes = mutate(rng, bytes, rng.pick(corpus).main).bytes;
      codes.add(await receiveCase(bytes));
    }
    expect(codes.has('E_TRUNCATED')).toBe(true);
    expect(codes.size).toBeGreaterThan(4);
  }, 120_000);
});

/** Offset of the first XBZRLE|CONTINUE record word (flags 0x60) at or after `from`. */
function findXbzrleRecord(b: Uint8Array, from: number): number {
  for (let i = from; i + 9 < b.length; i++) {
    if (b[i + 7] === 0x60 && b[i + 8] === 0x01 && (b[i + 6] as number) % 16 === 0) return i;
  }
  throw new Error('no XBZRLE record found');
}

describe.runIf(e2kBuilt())('e2k-migrate incoming / send: bad input (no QEMU needed)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir('badinput');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a truncated stream: exit 1, typed JSON error with offset and section, nothing stored', async () => {
    const stream = readFixture('none-32M-pattern/none-32M-pattern.mig');
    const file = join(dir, 'cut.mig');
    await writeFile(file, stream.subarray(0, 2_000_000));
    const store = join(dir, 'cut');
    const r = await e2k(['incoming', `exec:cat ${file}`, '--store', store, '--json']);
    expect(r.code).toBe(1);
    const { error } = JSON.parse(r.stdout) as { error: { code: string; offset: number; section: string } };
    expect(error.code).toBe('E_TRUNCATED');
    expect(error.offset).toBeGreaterThan(67);
    expect(error.offset).toBeLessThanOrEqual(2_000_000);
    expect(error.section).toBe('ram (2)');
    await expect(readManifest(store)).rejects.toThrow();
  });

  it('a corrupted section footer: E_FOOTER_MISMATCH naming the section', async () => {
    const stream = new Uint8Array(readFixture('none-32M/none-32M.mig'));
    const end = fixtureRecords('none-32M').find((r) => r.type === 'SECTION_END');
    if (!end) throw new Error('no END');
    // END section: 03 <id> EOS(8) 7e <id>: break the footer's id.
    const at = end.off + 5 + 8 + 4;
    stream[at] = (stream[at] as number) ^ 0xff;
    const file = join(dir, 'footer.mig');
    await writeFile(file, stream);
    const r = await e2k(['incoming', `exec:cat ${file}`, '--store', join(dir, 'footer'), '--json']);
    expect(r.code).toBe(1);
    const { error } = JSON.parse(r.stdout) as { error: { code: string; offset: number; section: string } };
    expect(error.code).toBe('E_FOOTER_MISMATCH');
    expect(error.section).toBe('ram (2)');
    expect(error.offset).toBe(end.off + 5 + 8);
  });

  it('bad URIs and unknown capabilities say what is wrong and list the valid ones', async () => {
    const bad = await e2k(['incoming', 'tcp:127.0.0.1', '--store', join(dir, 'x'), '--json']);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout).error.code).toBe('E_BAD_URI');
    expect(bad.stderr).toMatch(/tcp:HOST:PORT/);
    const scheme = await e2k(['send', dir, 'http://example', '--json']);
    expect(JSON.parse(scheme.stdout).error.code).toBe('E_BAD_URI');
    const cap = await e2k(['incoming', 'tcp:127.0.0.1:0', '--store', join(dir, 'y'), '--caps', 'xbzrle,turbo']);
    expect(cap.code).toBe(1);
    expect(cap.stderr).toContain('E_UNKNOWN_CAPABILITY');
    expect(cap.stderr).toContain('"turbo"');
    expect(cap.stderr).toContain('postcopy-ram');
    const ns = await e2k(['send', dir, 'tcp:127.0.0.1:9', '--caps', 'multifd']);
    expect(ns.code).toBe(1);
    expect(ns.stderr).toContain('E_NOT_SUPPORTED');
    expect(ns.stderr).toContain('supported: xbzrle, return-path');
    const usage = await e2k(['incoming', 'tcp:127.0.0.1:0']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--store DIR is required');
  });

  it('send of a damaged store fails before connecting; send of a good one to nothing is E_CONNECT', async () => {
    const store = join(dir, 'good');
    const ok = await e2k(['incoming', `exec:${fixtureCatCommand('none-32M-pattern')}`, '--store', store, '--json']);
    expect(ok.code).toBe(0);
    const m = await readManifest(store);
    expect(m.blocks[0]?.sha256).toBe(fixtureSha('none-32M-pattern/none-32M-pattern.ram'));
    expect(sha256(await storedBlock(store, 'ram'))).toBe(m.blocks[0]?.sha256);

    let connections = 0;
    const server = createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const ramFile = join(store, m.blocks[0]?.file ?? '');
      const good = readFixture('none-32M-pattern/none-32M-pattern.ram');
      const damaged = new Uint8Array(good);
      damaged[123_456] = (damaged[123_456] as number) ^ 0x40;
      await writeFile(ramFile, damaged);
      const r = await e2k(['send', store, `tcp:127.0.0.1:${port}`, '--json']);
      expect(r.code).toBe(1);
      const { error } = JSON.parse(r.stdout) as { error: { code: string; message: string } };
      expect(error.code).toBe('E_STORE_INVALID');
      expect(error.message).toContain('RAM block "ram"');
      expect(connections).toBe(0);
      await writeFile(ramFile, good);
      const devices = await readFile(join(store, 'devices.bin'));
      await writeFile(join(store, 'devices.bin'), new Uint8Array([4, 0]));
      const r2 = await e2k(['send', store, `tcp:127.0.0.1:${port}`, '--json']);
      expect(JSON.parse(r2.stdout).error.code).toBe('E_STORE_INVALID');
      expect(connections).toBe(0);
      await writeFile(join(store, 'devices.bin'), devices);
    } finally {
      await new Promise((r) => server.close(r));
    }
    const closed = await e2k(['send', store, `tcp:127.0.0.1:${port}`, '--json']);
    expect(closed.code).toBe(1);
    expect(JSON.parse(closed.stdout).error.code).toBe('E_CONNECT');
    const none = await e2k(['send', join(dir, 'nothing-here'), `tcp:127.0.0.1:${port}`, '--json']);
    expect(JSON.parse(none.stdout).error.code).toBe('E_STORE_INVALID');
  });
});
