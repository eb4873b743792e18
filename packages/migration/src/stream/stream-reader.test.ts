import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rejectsStreamError } from '../test-util/catch.js';
import { hex } from '../test-util/hex.js';
import { chunks, memoryWriter, synthPrecopy, TIMER_BODY } from '../test-util/synth.js';
import { ByteSource } from './byte-source.js';
import { FooterScanLoader } from './footer-scan.js';
import { RamSectionLoader } from './ram-loader.js';
import { RamState } from './ram-state.js';
import { LoaderRegistry } from './section-loader.js';
import { StreamReader, type StreamVisitor } from './stream-reader.js';

/** Reads a stream and logs every event as a string. */
async function readLog(input: Uint8Array | Uint8Array[]): Promise<string[]> {
  const log: string[] = [];
  const registry = new LoaderRegistry(
    new FooterScanLoader((s, body) => void log.push(`body ${s.label} ${Buffer.from(body).toString('hex')}`)),
  );
  registry.register(
    'ram',
    new RamSectionLoader(new RamState(), {
      memSize: (l) => void log.push(`memsize ${l.total} ${l.blocks.map((b) => `${b.name}=${b.usedLength}`).join(',')}`),
      page: (b, o, d, i) => void log.push(`page ${b.name} ${o} ${d[0]}/${d[4095]} flags=${i.flags} @${i.offset}`),
      zero: (b, o, f, i) => void log.push(`zero ${b.name} ${o} fill=${f} flags=${i.flags}`),
      xbzrle: (b, o, d) => void log.push(`xbzrle ${b.name} ${o} ${Buffer.from(d).toString('hex')}`),
      eos: (i) => void log.push(`eos @${i.offset}`),
    }),
  );
  const visitor: StreamVisitor = {
    header: (h, at) => void log.push(`header v${h.version} @${at}`),
    configuration: (c, p) => void log.push(`config ${c.machine} @${p.offset}+${p.length}`),
    sectionBegin: (s) => void log.push(`begin ${s.kind} ${s.label} @${s.offset} body@${s.bodyOffset} d${s.depth}`),
    sectionEnd: (s, e) =>
      void log.push(`end ${s.label} footer@${e.footerOffset} len=${e.bodyLength} guessed=${e.lengthGuessed}`),
    command: (c, p) => void log.push(`cmd ${JSON.stringify(c)} @${p.offset} d${p.depth}`),
    packageEnd: (p) => void log.push(`package-end @${p.offset}+${p.length}`),
    eof: (p) => void log.push(`eof @${p.offset} d${p.depth}`),
    vmdesc: (j, at) => void log.push(`vmdesc ${j.length} @${at}`),
  };
  await new StreamReader(new ByteSource(input), { resolver: registry, visitor }).read();
  return log;
}

describe('StreamReader', () => {
  it('walks a precopy stream record by record', async () => {
    const log = await readLog(await synthPrecopy());
    expect(log.slice(0, 6)).toEqual([
      'header v3 @0',
      'config none @8+9',
      'begin START ram (2) @17 body@34 d0',
      'memsize 65536 ram=65536',
      'eos @54',
      'end ram (2) footer@62 len=28 guessed=false',
    ]);
    expect(log).toContain('page ram 0 170/170 flags=8 @72');
    expect(log).toContain('zero ram 4096 fill=0 flags=34');
    expect(log).toContain('xbzrle ram 0 00020102');
    expect(log).toContain(`body timer (0) ${Buffer.from(TIMER_BODY).toString('hex')}`);
    expect(log.filter((l) => l.startsWith('eos'))).toHaveLength(3);
    expect(log.at(-2)).toMatch(/^eof @\d+ d0$/);
    expect(log.at(-1)).toMatch(/^vmdesc \d+ @\d+$/);
  });

  it('property: the events do not depend on how the input is chunked', async () => {
    const data = await synthPrecopy();
    const whole = await readLog(data);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 10 }), async (sizes) => {
        expect(await readLog(chunks(data, sizes))).toEqual(whole);
      }),
      { numRuns: 40 },
    );
  });

  it('reads configuration subsections across chunk boundaries (look-ahead is never guessed)', async () => {
    const { w, bytes } = memoryWriter();
    w.header().configuration({
      machine: 'pc-i440fx-7.2',
      subsections: [
        { name: 'configuration/capabilities', version: 1, capabilities: ['x-ignore-shared'] },
        { name: 'configuration/uuid', version: 1, uuid: new Uint8Array(16).fill(0x12) },
      ],
    });
    w.sectionHeader({ kind: 'START', sectionId: 2, idstr: 'ram', instanceId: 0, versionId: 4 });
    w.ramMemSize({ total: 0x1000, blocks: [{ name: 'ram', usedLength: 0x1000, mrAddr: 0xc0000 }] })
      .ramEos()
      .footer(2)
      .eof();
    const data = await bytes();
    for (const size of [1, 2, 3, 17, 40]) {
      const log = await readLog(chunks(data, [size]));
      expect(log[1]).toBe('config pc-i440fx-7.2 @8+110');
      expect(log[3]).toBe('memsize 4096 ram=4096');
    }
  });

  it('reads a package as a nested stream until POSTCOPY_RUN', async () => {
    const inner = memoryWriter();
    inner.w.command({ cmd: 'POSTCOPY_LISTEN' });
    inner.w
      .sectionHeader({ kind: 'FULL', sectionId: 0, idstr: 'timer', instanceId: 0, versionId: 2 })
      .raw(TIMER_BODY)
      .footer(0);
    inner.w.command({ cmd: 'PING', value: 3 }).command({ cmd: 'POSTCOPY_RUN' });
    const pkg = await inner.bytes();
    const outer = memoryWriter();
    outer.w.header().configuration({ machine: 'none', subsections: [] }).command({ cmd: 'OPEN_RETURN_PATH' });
    outer.w.packaged(pkg).command({ cmd: 'PING', value: 4 }).eof();
    const log = await readLog(await outer.bytes());
    const pkgAt = 8 + 9 + 5 + 9;
    expect(log.slice(3)).toEqual([
      `cmd {"cmd":"PACKAGED","length":${pkg.length}} @22 d0`,
      `cmd {"cmd":"POSTCOPY_LISTEN"} @${pkgAt} d1`,
      `begin FULL timer (0) @${pkgAt + 5} body@${pkgAt + 5 + 19} d1`,
      `body timer (0) ${Buffer.from(TIMER_BODY).toString('hex')}`,
      `end timer (0) footer@${pkgAt + 48} len=24 guessed=true`,
      `cmd {"cmd":"PING","value":3} @${pkgAt + 53} d1`,
      `cmd {"cmd":"POSTCOPY_RUN"} @${pkgAt + 62} d1`,
      `package-end @${pkgAt}+${pkg.length}`,
      `cmd {"cmd":"PING","value":4} @${pkgAt + pkg.length} d0`,
      `eof @${pkgAt + pkg.length + 9} d0`,
    ]);
  });

  it('rejects unknown record types, foreign footers and unknown section ids with offsets', async () => {
    const base = hex('51454d56 00000003 07 00000004 "none"'.replace('51454d56', '5145564d'));
    const unknown = await rejectsStreamError(readLog(new Uint8Array([...base, 0x09])));
    expect(unknown).toMatchObject({ code: 'E_UNKNOWN_RECORD', offset: 17 });
    const part = await rejectsStreamError(readLog(new Uint8Array([...base, ...hex('02 00000009')])));
    expect(part).toMatchObject({ code: 'E_UNKNOWN_SECTION', offset: 17 });
    const footer = await rejectsStreamError(
      readLog(new Uint8Array([...base, ...hex('01 00000002 03 "ram" 00000000 00000004 0000000000000010 7e 00000003')])),
    );
    expect(footer).toMatchObject({ code: 'E_FOOTER_MISMATCH', offset: 17 + 17 + 8, section: 'ram (2)' });
    const configLate = await rejectsStreamError(readLog(new Uint8Array([...base, ...hex('07 00000004 "none"')])));
    expect(configLate.code).toBe('E_UNKNOWN_RECORD');
  });

  it('requires EOF, and rejects bytes after the vmdesc', async () => {
    const data = await synthPrecopy({ vmdesc: false });
    const noEof = await rejectsStreamError(readLog(data.subarray(0, data.length - 1)));
    expect(noEof).toMatchObject({ code: 'E_TRUNCATED', offset: data.length - 1 });
    const full = await synthPrecopy();
    const trailing = await rejectsStreamError(readLog(new Uint8Array([...full, 0x42])));
    expect(trailing).toMatchObject({ code: 'E_TRAILING_DATA', offset: full.length });
  });

  it('reports a package that claims more bytes than remain', async () => {
    const outer = memoryWriter();
    outer.w
      .header()
      .configuration({ machine: 'none', subsections: [] })
      .command({ cmd: 'PACKAGED', length: 1000 })
      .command({ cmd: 'POSTCOPY_RUN' });
    const e = await rejectsStreamError(readLog(await outer.bytes()));
    expect(e.code).toBe('E_BAD_LENGTH');
    expect(typeof e.offset).toBe('number');
  });
});
