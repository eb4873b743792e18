import { describe, expect, it } from 'vitest';
import { hex } from '../test-util/hex.js';
import { StreamWriter } from './stream-writer.js';

describe('StreamWriter', () => {
  it('writes the start of the spec §12 stream byte for byte (footer at 0x119)', async () => {
    const out: Uint8Array[] = [];
    const w = new StreamWriter((c) => void out.push(c));
    w.header().configuration({ machine: 'pc-i440fx-7.2', subsections: [] });
    w.sectionHeader({ kind: 'START', sectionId: 2, idstr: 'ram', instanceId: 0, versionId: 4 });
    w.ramMemSize({
      total: 0x090d2000,
      blocks: [
        ['pc.ram', 0x8000000],
        ['0000:00:02.0/vga.vram', 0x1000000],
        ['/rom@etc/acpi/tables', 0x20000],
        ['pc.bios', 0x40000],
        ['0000:00:03.0/e1000.rom', 0x40000],
        ['pc.rom', 0x20000],
        ['0000:00:02.0/vga.rom', 0x10000],
        ['/rom@etc/table-loader', 0x1000],
        ['/rom@etc/acpi/rsdp', 0x1000],
      ].map(([name, usedLength]) => ({ name: name as string, usedLength: usedLength as number })),
    });
    w.ramEos();
    const footerAt = w.bytesWritten;
    w.footer(2).sectionHeader({ kind: 'PART', sectionId: 2 });
    await w.flush();
    const b = Buffer.concat(out);
    expect(footerAt).toBe(0x119);
    expect(b.length).toBe(0x11e + 5);
    expect(new Uint8Array(b.subarray(0, 49))).toEqual(
      hex(`
        51 45 56 4d 00 00 00 03                 # magic, version
        07 0000000d "pc-i440fx-7.2"             # configuration
        01 00000002 03 "ram" 00000000 00000004  # START ram
        00 00 00 00 09 0d                       # MEM_SIZE word (first 6 bytes)
      `),
    );
    expect(new Uint8Array(b.subarray(0x111))).toEqual(hex('0000000000000010 7e 00000002 02 00000002'));
  });

  it('hands large chunks to the sink and waits for it (backpressure)', async () => {
    const sizes: number[] = [];
    let inFlight = 0;
    const w = new StreamWriter(
      async (c) => {
        inFlight++;
        expect(inFlight).toBe(1);
        await new Promise((r) => setTimeout(r, 1));
        sizes.push(c.length);
        inFlight--;
      },
      { flushBytes: 10_000 },
    );
    const page = new Uint8Array(4096);
    for (let i = 0; i < 10; i++) {
      w.ramPage(i * 4096, i === 0 ? 'ram' : undefined, page);
      await w.maybeFlush();
    }
    await w.flush();
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(w.bytesWritten);
    expect(sizes.length).toBeLessThan(6);
    expect(w.pending).toBe(0);
  });
});
