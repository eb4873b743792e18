import { ByteWriter } from '@e2k-migrate/vmstate';
import { StreamWriter } from '../stream/stream-writer.js';
import { encodeRpMessage, type RpMessage } from '../wire/return-path.js';

/** Collects a StreamWriter's output into one array. */
export function memoryWriter(): { w: StreamWriter; bytes: () => Promise<Uint8Array> } {
  const chunks: Uint8Array[] = [];
  const w = new StreamWriter(
    (c) => {
      chunks.push(c);
    },
    { flushBytes: 4096 },
  );
  return {
    w,
    bytes: async () => {
      await w.flush();
      return new Uint8Array(Buffer.concat(chunks));
    },
  };
}

export const PAGE_A = new Uint8Array(4096).fill(0xaa);
export const PAGE_B = Uint8Array.from({ length: 4096 }, (_, i) => i & 0xff);

/** The vmdesc of {@link synthPrecopy}: timer (VMSD) with one int64 field, one unused buffer, one int64. */
export const SYNTH_VMDESC = {
  page_size: 4096,
  devices: [
    {
      name: 'timer',
      instance_id: 0,
      vmsd_name: 'timer',
      version: 2,
      fields: [
        { name: 'cpu_ticks_offset', type: 'int64', size: 8 },
        { name: 'unused', type: 'unused_buffer', size: 8 },
        { name: 'cpu_clock_offset', type: 'int64', size: 8 },
      ],
    },
  ],
};

/** The timer body of {@link synthPrecopy}: -2, zeros, 0x1234. */
export const TIMER_BODY = Uint8Array.from([
  0xff,
  0xff,
  0xff,
  0xff,
  0xff,
  0xff,
  0xff,
  0xfe,
  ...new Uint8Array(8),
  0,
  0,
  0,
  0,
  0,
  0,
  0x12,
  0x34,
]);

/**
 * A small precopy stream: header, configuration `none`, ram START (one 64 KiB block `ram`),
 * a PART with PAGE (named), ZERO (CONTINUE), XBZRLE (CONTINUE), PAGE (named again), an END, a
 * FULL `timer` section, EOF and the vmdesc.
 */
export async function synthPrecopy(opts: { vmdesc?: boolean } = {}): Promise<Uint8Array> {
  const { w, bytes } = memoryWriter();
  w.header().configuration({ machine: 'none', subsections: [] });
  w.sectionHeader({ kind: 'START', sectionId: 2, idstr: 'ram', instanceId: 0, versionId: 4 });
  w.ramMemSize({ total: 0x10000, blocks: [{ name: 'ram', usedLength: 0x10000 }] })
    .ramEos()
    .footer(2);
  w.sectionHeader({ kind: 'PART', sectionId: 2 });
  w.ramPage(0x0, 'ram', PAGE_A)
    .ramZero(0x1000, undefined)
    .ramXbzrle(0x0, undefined, Uint8Array.from([0x00, 0x02, 0x01, 0x02]));
  w.ramPage(0xf000, 'ram', PAGE_B).ramEos().footer(2);
  w.sectionHeader({ kind: 'END', sectionId: 2 }).ramZero(0x2000, undefined).ramEos().footer(2);
  w.sectionHeader({ kind: 'FULL', sectionId: 0, idstr: 'timer', instanceId: 0, versionId: 2 })
    .raw(TIMER_BODY)
    .footer(0);
  w.eof();
  if (opts.vmdesc !== false) w.vmdesc(new TextEncoder().encode(JSON.stringify(SYNTH_VMDESC)));
  return bytes();
}

/** Splits bytes into chunks of the given sizes (cycled), as Buffers like a Node stream yields. */
export function chunks(data: Uint8Array, sizes: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  let i = 0;
  while (at < data.length) {
    const n = Math.max(1, sizes[i++ % sizes.length] ?? 1);
    out.push(Buffer.from(data.subarray(at, at + n)));
    at += n;
  }
  return out;
}

/**
 * A small postcopy migration: main stream (return path, ADVISE, START, a precopy PART, DISCARD,
 * PACKAGED{LISTEN, timer, PING 3, RUN}, PING 4, a postcopy PART, empty END, EOF, no vmdesc),
 * a preempt channel (one named page + EOS) and a return path.
 */
export async function synthPostcopy(): Promise<{ main: Uint8Array; preempt: Uint8Array; rp: Uint8Array }> {
  const pkg = memoryWriter();
  pkg.w.command({ cmd: 'POSTCOPY_LISTEN' });
  pkg.w
    .sectionHeader({ kind: 'FULL', sectionId: 0, idstr: 'timer', instanceId: 0, versionId: 2 })
    .raw(TIMER_BODY)
    .footer(0);
  pkg.w.command({ cmd: 'PING', value: 3 }).command({ cmd: 'POSTCOPY_RUN' });
  const { w, bytes } = memoryWriter();
  w.header().configuration({ machine: 'none', subsections: [] });
  w.command({ cmd: 'OPEN_RETURN_PATH' }).command({ cmd: 'PING', value: 1 });
  w.command({ cmd: 'POSTCOPY_ADVISE', pageSizeSummary: 4096, targetPageSize: 4096 });
  w.sectionHeader({ kind: 'START', sectionId: 2, idstr: 'ram', instanceId: 0, versionId: 4 });
  w.ramMemSize({ total: 0x10000, blocks: [{ name: 'ram', usedLength: 0x10000 }] })
    .ramEos()
    .footer(2);
  w.sectionHeader({ kind: 'PART', sectionId: 2 })
    .ramPage(0x0, 'ram', PAGE_A)
    .ramPage(0x1000, undefined, PAGE_A)
    .ramPage(0x2000, undefined, PAGE_A);
  w.ramEos().footer(2);
  w.command({ cmd: 'POSTCOPY_RAM_DISCARD', version: 0, block: 'ram', ranges: [{ start: 0x1000, length: 0x2000 }] });
  w.command({ cmd: 'PING', value: 2 })
    .packaged(await pkg.bytes())
    .command({ cmd: 'PING', value: 4 });
  w.sectionHeader({ kind: 'PART', sectionId: 2 }).ramPage(0x2000, 'ram', PAGE_B).ramEos().footer(2);
  w.sectionHeader({ kind: 'END', sectionId: 2 }).ramEos().footer(2).eof();
  const pre = memoryWriter();
  pre.w.ramPage(0x5000, 'ram', PAGE_B).ramEos();
  const rp = new ByteWriter();
  for (const m of [
    { type: 'PONG', value: 1 },
    { type: 'PONG', value: 2 },
    { type: 'PONG', value: 4 },
    { type: 'PONG', value: 3 },
    { type: 'REQ_PAGES_ID', start: 0x5000, length: 0x1000, block: 'ram' },
    { type: 'REQ_PAGES', start: 0x6000, length: 0x1000 },
    { type: 'SHUT', value: 0 },
  ] as RpMessage[])
    encodeRpMessage(m, rp);
  return { main: await bytes(), preempt: await pre.bytes(), rp: rp.finish() };
}
