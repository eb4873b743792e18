import { PostcopyProtocolError, PostcopyStoreReceiver } from '@e2k-migrate/postcopy';
import { needs } from '@e2k-migrate/test-support';
import { describe, expect, it } from 'vitest';
import { hugetlbAvailable, uffdAvailable } from './support.js';
import { page, type SynthRecord, SynthStream, serveOverTcp } from './synthetic-stream.js';

const uffd = uffdAvailable();
const huge = hugetlbAvailable();
const KiB4 = 4096;
const MiB2 = 2 << 20;
const small = [{ name: 'ram', size: 16 * KiB4 }];
const hugeBlocks = [{ name: 'mem', size: 2 * MiB2, pageSize: MiB2 }];
const mode = uffd.ok ? ('uffd' as const) : ('cooperative' as const);

/** Receives `main` (and `preempt`) and returns the error it fails with (or the paused receiver). */
async function failure(main: Uint8Array, preempt?: Uint8Array): Promise<Error & Record<string, unknown>> {
  const r = new PostcopyStoreReceiver({ userfault: mode, toucher: false, preempt: preempt !== undefined });
  const link = await serveOverTcp(main, preempt ? { preempt } : {});
  const err = await r.receive(link.dst.main, link.dst.preempt).then(
    () => {
      throw new Error('the stream was accepted');
    },
    (e: Error) => e,
  );
  link.src.cancel();
  return err as Error & Record<string, unknown>;
}

const records = (hp: number, from: number, to: number): SynthRecord[] =>
  Array.from({ length: to - from }, (_, i) => ({
    block: 'mem',
    offset: hp * MiB2 + (from + i) * KiB4,
    data: page(7, i),
  }));

describe('postcopy protocol errors are typed errors naming what and where', () => {
  it.runIf(needs('hugetlb', huge.ok, huge.reason))(
    'a record for another host page before the current one is complete (non-same host page)',
    async () => {
      const s = new SynthStream()
        .start({ blocks: hugeBlocks })
        .switchover((pkg) => pkg.part([...records(0, 0, 2), ...records(1, 0, 1)]))
        .end();
      const e = await failure(s.bytes());
      expect(e).toBeInstanceOf(PostcopyProtocolError);
      expect(e).toMatchObject({
        code: 'E_POSTCOPY_HOST_PAGE',
        block: 'mem',
        channelIndex: 0,
        hostOffset: 0,
        pageOffset: MiB2,
        channel: 'main',
        section: 'ram (2)',
      });
      expect(e.offset).toBeGreaterThan(0);
      expect(e.message).toMatch(
        /non-same host page on postcopy channel 0.*page 0x200000 of block "mem".*host page 0x0.*2 of its 512/,
      );
    },
  );

  it.runIf(needs('hugetlb', huge.ok, huge.reason))(
    'after RUN the same error pauses the migration (the guest runs here) with the typed reason',
    async () => {
      const s = new SynthStream()
        .start({ blocks: hugeBlocks })
        .switchover()
        .part([...records(0, 0, 3), ...records(1, 0, 1)])
        .end();
      const r = new PostcopyStoreReceiver({ userfault: mode, toucher: false });
      const link = await serveOverTcp(s.bytes());
      const done = r.receive(link.dst.main).catch((e: Error) => e);
      for (let i = 0; i < 500 && r.incoming.state.status !== 'postcopy-paused'; i++)
        await new Promise((x) => setTimeout(x, 10));
      expect(r.incoming.state).toMatchObject({ status: 'postcopy-paused' });
      expect(String(r.query()['x-pause-reason'])).toMatch(/^E_POSTCOPY_HOST_PAGE: non-same host page/);
      r.incoming.fail(new Error('test over'));
      expect(await done).toBeInstanceOf(Error);
      link.src.cancel();
    },
  );

  it.runIf(needs('hugetlb', huge.ok, huge.reason))(
    'a host page split across the main and the preempt channel never completes: typed reason at the end, paused',
    async () => {
      const s = new SynthStream()
        .start({ blocks: hugeBlocks })
        .switchover()
        .part(records(0, 0, 256))
        .end();
      // The end of the stream is still postcopy (the guest runs here): the wrap-up pauses, as
      // any failure after RUN does, with the typed reason.
      const r = new PostcopyStoreReceiver({ userfault: mode, toucher: false, preempt: true });
      const link = await serveOverTcp(s.bytes(), { preempt: new SynthStream().preempt(records(0, 256, 512)) });
      const done = r.receive(link.dst.main, link.dst.preempt).catch((e: Error) => e);
      for (let i = 0; i < 500 && r.incoming.state.status !== 'postcopy-paused'; i++)
        await new Promise((x) => setTimeout(x, 10));
      expect(r.incoming.state).toMatchObject({ status: 'postcopy-paused' });
      expect(String(r.query()['x-pause-reason'])).toMatch(
        /^E_POSTCOPY_HOST_PAGE: the stream ended while host page 0x0 of block "mem" had only 256 of its 512/,
      );
      r.incoming.fail(new Error('test over'));
      expect(await done).toBeInstanceOf(Error);
      link.src.cancel();
    },
  );

  it('a page offset outside its block', async () => {
    const s = new SynthStream()
      .start({ blocks: small })
      .switchover((pkg) => pkg.part([{ block: 'ram', offset: 16 * KiB4, data: page(1) }]))
      .end();
    const e = await failure(s.bytes());
    expect(e).toMatchObject({ code: 'E_BAD_RAM_OFFSET', section: 'ram (2)' });
    expect(e.message).toMatch(/page offset 0x10000 is outside block "ram"/);
  });

  it('a discard range outside its block, or not aligned to its host pages', async () => {
    const outside = new SynthStream()
      .start({ blocks: small })
      .discard('ram', [{ start: 8 * KiB4, length: 9 * KiB4 }])
      .switchover()
      .end();
    const e1 = await failure(outside.bytes());
    expect(e1).toMatchObject({ code: 'E_BAD_RAM_OFFSET', record: 'command POSTCOPY_RAM_DISCARD' });
    expect(e1.message).toMatch(/range \[0x8000, \+0x9000\) of block "ram" is outside its used_length 0x10000/);
    if (!huge.ok) return;
    const unaligned = new SynthStream()
      .start({ blocks: hugeBlocks })
      .discard('mem', [{ start: KiB4, length: MiB2 }])
      .switchover()
      .end();
    const e2 = await failure(unaligned.bytes());
    expect(e2.message).toMatch(/not aligned to its 2097152-byte host pages/);
  });

  it('bad POSTCOPY_ADVISE: another target page size, unsupported page sizes, a summary the blocks do not match, none', async () => {
    const cases: [{ summary: number; tps: number } | null, RegExp, string][] = [
      [{ summary: 4096, tps: 8192 }, /target page size 8192 differs from ours \(4096\)/, 'E_POSTCOPY_ADVISE'],
      [{ summary: 0x40001000, tps: 4096 }, /page-size summary 0x40001000 holds page sizes/, 'E_POSTCOPY_ADVISE'],
      [
        { summary: 0x201000, tps: 4096 },
        /block list's page sizes \(0x1000\) differ from the POSTCOPY_ADVISE summary \(0x201000\)/,
        'E_POSTCOPY_ADVISE',
      ],
      [null, /POSTCOPY_LISTEN at byte offset \d+ while the postcopy state is NONE/, 'E_POSTCOPY_SEQUENCE'],
    ];
    for (const [advise, re, code] of cases) {
      const s = new SynthStream().start({ blocks: small, advise }).switchover().end();
      const e = await failure(s.bytes());
      expect(e.code, re.source).toBe(code);
      expect(e.message).toMatch(re);
    }
  });

  it('commands out of order: RUN before LISTEN, RECV_BITMAP outside a recovery', async () => {
    const run = new SynthStream().start({ blocks: small }).command({ cmd: 'POSTCOPY_RUN' }).end();
    const e1 = await failure(run.bytes());
    expect(e1).toMatchObject({ code: 'E_POSTCOPY_SEQUENCE', record: 'command POSTCOPY_RUN' });
    expect(e1.message).toMatch(
      /POSTCOPY_RUN at byte offset \d+ while the postcopy state is ADVISE \(allowed in LISTENING\)/,
    );
    const bitmap = new SynthStream().start({ blocks: small }).command({ cmd: 'RECV_BITMAP', block: 'ram' }).end();
    const e2 = await failure(bitmap.bytes());
    expect(e2).toMatchObject({ code: 'E_POSTCOPY_SEQUENCE', record: 'command RECV_BITMAP' });
  });
});
