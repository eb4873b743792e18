import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { type Analysis, analyzeStream, pyJsonDumps } from '@e2k-migrate/migration';
import { readFixture, readFixtureJson } from '@e2k-migrate/test-support';
import { beforeAll, describe, expect, it } from 'vitest';
import { CASES, path } from './fixture-cases.js';

interface MigstreamRecord {
  off: number;
  depth: number;
  type: string;
  section_id?: number;
  idstr?: string;
  payload_len?: number;
  cmd?: string;
  ram?: { page?: number; zero?: number; xbzrle?: number; blocks?: unknown };
}
interface MigstreamSummary {
  ram_sha256: Record<string, string>;
  ram_stats: Record<string, number>;
  records: MigstreamRecord[];
  multifd?: { id: number; packets: number; sync_packets: number; pages: number; sync_packets_with_pages: number }[];
  return_path?: { counts: Record<string, number> };
}

describe.each(CASES)('fixture $name', (c) => {
  let a: Analysis;
  beforeAll(async () => {
    a = await analyzeStream({
      input: path(c.main),
      multifd: c.multifd?.map(path),
      preempt: c.preempt && path(c.preempt),
      returnPath: c.returnPath && path(c.returnPath),
      maxRam: 1 << 30,
    });
  });

  it(`reconstructs ${c.mainBlock} equal to the reference RAM (sha256)`, () => {
    const ref = createHash('sha256').update(readFixture(c.ram)).digest('hex');
    expect(a.summary.ram_sha256?.[c.mainBlock]).toBe(ref);
  });

  if (c.summaryJson)
    it('matches the independent parser: every block hash, every record, every RAM count', () => {
      const ref = readFixtureJson<MigstreamSummary>(c.summaryJson as string);
      expect(a.summary.ram_sha256).toEqual(ref.ram_sha256);
      // Depth-1 (packaged) records are listed relative to the package start by the reference parser.
      const pkgStart = a.summary.package?.offset ?? 0;
      const ours = a.summary.records
        .filter((r) => r.type !== 'HEADER')
        .map((r) => ({
          off: r.depth === 1 ? r.offset - pkgStart : r.offset,
          depth: r.depth,
          type: r.type,
          ...(r.section_id !== undefined ? { section_id: r.section_id } : {}),
          ...(r.cmd !== undefined ? { cmd: r.cmd } : {}),
          ...(r.type === 'SECTION_FULL' ? { payload_len: r.length } : {}),
          ...(r.ram
            ? {
                ram: {
                  page: (r.ram as Record<string, number>).pages ?? 0,
                  zero: (r.ram as Record<string, number>).zero ?? 0,
                  xbzrle: (r.ram as Record<string, number>).xbzrle ?? 0,
                },
              }
            : {}),
        }));
      const theirs = ref.records
        .filter((r) => r.type !== 'HEADER')
        .map((r) => ({
          off: r.off,
          depth: r.depth,
          type: r.type,
          ...(r.section_id !== undefined ? { section_id: r.section_id } : {}),
          ...(r.cmd !== undefined ? { cmd: r.cmd } : {}),
          ...(r.type === 'SECTION_FULL' ? { payload_len: r.payload_len } : {}),
          ...(r.ram ? { ram: { page: r.ram.page ?? 0, zero: r.ram.zero ?? 0, xbzrle: r.ram.xbzrle ?? 0 } } : {}),
        }));
      expect(ours).toEqual(theirs);
      const t = a.summary.ram_totals;
      const s = ref.ram_stats;
      expect(t.pages + t.preempt_pages).toBe(s.page);
      expect(t.zero).toBe(s.zero);
      expect(t.xbzrle).toBe(s.xbzrle);
      expect(t.xbzrle_bytes).toBe((s.xbzrle_bytes ?? 0) + 3 * (s.xbzrle ?? 0));
      expect(t.eos + (a.summary.preempt?.eos ?? 0)).toBe(s.eos);
      expect(t.multifd_pages).toBe(s.multifd_pages);
      expect(t.discard_ranges).toBe(s.discard_ranges);
      expect(t.discard_bytes).toBe(s.discard_bytes ?? 0);
      if (ref.multifd) {
        expect(
          a.summary.multifd?.channels.map(({ id, packets, sync_packets, pages, sync_packets_with_pages }) => ({
            id,
            packets,
            sync_packets,
            pages,
            sync_packets_with_pages,
          })),
        ).toEqual(
          ref.multifd.map(({ id, packets, sync_packets, pages, sync_packets_with_pages }) => ({
            id,
            packets,
            sync_packets,
            pages,
            sync_packets_with_pages,
          })),
        );
      }
      if (ref.return_path) expect(a.summary.return_path?.counts).toEqual(ref.return_path.counts);
    });

  if (c.stats)
    it('agrees with QEMU query-migrate on the source', () => {
      const q = readFixtureJson<{
        source_query_migrate: { ram: Record<string, number>; 'xbzrle-cache'?: { bytes: number } };
      }>(c.stats).source_query_migrate;
      const t = a.summary.ram_totals;
      expect(t.zero).toBe(q.ram.duplicate);
      if (c.multifd) {
        // 7.2 sends the page that fills a batch twice (spec §7.5): 93 duplicates in this capture.
        expect(t.multifd_pages - (q.ram.normal as number)).toBe(93);
      } else expect(t.pages + t.preempt_pages).toBe(q.ram.normal);
      if (q['xbzrle-cache']) expect(t.xbzrle_bytes).toBe(q['xbzrle-cache'].bytes);
    });

  if (c.analyzeJson)
    it('--format state equals analyze-migration.py -d state (structure and text)', () => {
      const text = new TextDecoder().decode(readFixture(c.analyzeJson as string));
      const ours = pyJsonDumps(a.state);
      expect(JSON.parse(ours)).toStrictEqual(JSON.parse(text));
      expect(`${ours}\n`).toBe(text);
    });

  if (c.name.startsWith('postcopy'))
    it('reproduces the postcopy story: commands, discards, package, return path', () => {
      const s = a.summary;
      expect(s.commands.map((x) => x.cmd)).toEqual([
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
      expect(s.commands.filter((x) => x.cmd === 'PING').map((x) => x.value)).toEqual([1, 2, 3, 4]);
      expect(s.discards).toEqual([
        { block: 'pc.ram', start: 0, length: 0x1000 },
        { block: 'pc.ram', start: 0x100000, length: 0x1e00000 },
      ]);
      expect(s.package?.length).toBe(13455);
      expect(s.package?.contents[0]).toBe('POSTCOPY_LISTEN');
      expect(s.package?.contents.filter((x) => x.startsWith('FULL'))).toHaveLength(31);
      expect(s.package?.contents.slice(-2)).toEqual(['PING 3', 'POSTCOPY_RUN']);
      const rp = s.return_path?.messages ?? [];
      expect(rp.slice(0, 4).map((m) => m.value)).toEqual([1, 2, 4, 3]);
      expect(rp[4]).toMatchObject({ type: 'REQ_PAGES_ID', length: 0x1000, block: 'pc.ram' });
      if (c.name === 'postcopy') expect(rp[4]?.start).toBe(0x100000);
      expect(rp.at(-1)).toMatchObject({ type: 'SHUT', value: 0 });
      expect(rp.filter((m) => m.type === 'REQ_PAGES')).toHaveLength(c.name === 'postcopy' ? 252 : 116);
      expect(a.summary.vmdesc).toBeNull();
      if (c.preempt) expect(a.summary.preempt).toMatchObject({ pages: 19, eos: 1, bytes: 78117 });
    });
});

describe('postcopy device state through the vmdesc of an identically configured VM', () => {
  it('decodes all 31 packaged device sections exactly (lengths no longer guessed)', async () => {
    const vmdesc = extractVmdesc(readFileSync(path('bootblock-live/bootblock-live.mig')));
    const a = await analyzeStream({ input: path('postcopy/conn0.src2dst.bin'), vmdesc, reconstructRam: false });
    const devices = a.devices.filter((d) => d.section.depth === 1);
    expect(devices).toHaveLength(31);
    expect(devices.every((d) => d.value !== undefined && !d.lengthGuessed)).toBe(true);
    const state = JSON.parse(pyJsonDumps(a.state));
    expect(state['globalstate (41)'].runstate.startsWith('72 75 6e 6e 69 6e 67 00')).toBe(true);
    expect(Object.keys(state['cpu (5)'])).toContain('cpu/msr_smi_count');
  });
});

function extractVmdesc(gz: Uint8Array): Uint8Array {
  const b = gunzipSync(gz);
  for (let i = b.length - 6; i > 0; i--) {
    if (b[i] === 6 && b.readUInt32BE(i + 1) === b.length - i - 5) return new Uint8Array(b.subarray(i + 5));
  }
  throw new Error('no vmdesc');
}
