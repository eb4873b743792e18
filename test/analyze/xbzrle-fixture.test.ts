import {
  FooterScanLoader,
  LoaderRegistry,
  openInput,
  RamBudget,
  RamSectionLoader,
  RamState,
  SparseRam,
  StreamReader,
  xbzrleDecode,
  xbzrleEncode,
} from '@e2k-migrate/migration';
import { describe, expect, it } from 'vitest';
import { path } from './fixture-cases.js';

describe('XBZRLE against real QEMU 7.2 records', () => {
  it('re-encoding every record of bootblock-xbzrle (old page → new page) gives QEMU’s bytes', async () => {
    const input = await openInput(path('bootblock-xbzrle/bootblock-xbzrle.mig'));
    const budget = new RamBudget(1 << 30);
    const images = new Map<string, SparseRam>();
    const old = new Uint8Array(4096);
    const out = new Uint8Array(4096);
    let records = 0;
    let identical = 0;
    const registry = new LoaderRegistry(new FooterScanLoader());
    registry.register(
      'ram',
      new RamSectionLoader(new RamState(), {
        memSize: (l) => {
          for (const b of l.blocks) images.set(b.name, new SparseRam(b.name, b.usedLength, budget));
        },
        page: (b, o, d) => images.get(b.name)?.write(o, d),
        zero: (b, o, f) => images.get(b.name)?.fill(o, 4096, f),
        xbzrle: (b, o, delta) => {
          const ram = images.get(b.name) as SparseRam;
          ram.read(o, old);
          const page = ram.view(o, 4096);
          expect(typeof xbzrleDecode(delta, page)).toBe('number');
          const n = xbzrleEncode(old, page, out);
          records++;
          if (n === delta.length && Buffer.compare(out.subarray(0, n), delta) === 0) identical++;
        },
      }),
    );
    await new StreamReader(input.source, { resolver: registry }).read();
    expect(records).toBe(12193);
    expect(identical).toBe(records);
  });
});
