import { PostcopyStoreReceiver } from '@e2k-migrate/postcopy';
import { needs } from '@e2k-migrate/test-support';
import { listen } from '@e2k-migrate/transports';
import { describe, expect, it } from 'vitest';
import { afterPing4, fixtureReference, replayFixture, sha256, uffdAvailable } from './support.js';

const uffd = uffdAvailable();

/**
 * The recorded QEMU 7.2 postcopy streams, replayed verbatim over real TCP into our destination
 * (the library behind `e2k-migrate incoming --caps postcopy-ram[,postcopy-preempt]`): the main
 * connection is held right after PING(4) until the toucher has faulted and requested a page, so
 * the fault → request path runs for sure; then the rest of the stream (the postcopy pages) flows.
 * The requests are never answered (the sender is dumb): RAM must be correct anyway.
 */
describe.each([
  { name: 'postcopy', preempt: false, mode: 'auto' as const },
  { name: 'postcopy-preempt', preempt: true, mode: 'auto' as const },
  { name: 'postcopy', preempt: false, mode: 'cooperative' as const },
])('replay of the $name fixture into the destination ($mode)', ({ name, preempt, mode }) => {
  const run = mode === 'cooperative' || needs('uffd', uffd.ok, uffd.reason);
  it.runIf(run)('ends with the reference RAM, well-formed return-path messages and postcopy statistics', async () => {
    const listener = await listen('tcp:127.0.0.1:0');
    const receiver = new PostcopyStoreReceiver({
      preempt,
      blocktime: true,
      userfault: mode,
      toucher: { pattern: 'random', seed: 3 },
    });
    const src = await replayFixture(name, listener.uri, { preempt, holdAt: afterPing4(name) });
    const main = await listener.accept();
    const pre = preempt ? await listener.accept() : undefined;
    await listener.close();
    const receiving = receiver.receive(main, pre);
    receiving.catch(() => undefined);
    // The toucher runs from POSTCOPY_RUN; nothing of the postcopy part has been sent yet.
    await src.rp.waitFor((m) => m.type === 'REQ_PAGES_ID');
    expect(receiver.incoming.state.status).toBe('postcopy-active');
    src.release();
    const got = await receiving;
    await src.sent;
    await src.rp.done;
    try {
      const ref = fixtureReference(name);
      const pcRam = got.blocks.find((b) => b.name === 'pc.ram');
      expect(pcRam).toBeDefined();
      const bytes = (pcRam?.memory.pageView(0, (pcRam?.size ?? 0) / 4096) ?? new Uint8Array()).slice();
      expect(sha256(bytes)).toBe(sha256(ref.ram));
      for (const b of got.blocks) {
        expect(sha256(b.memory.pageView(0, b.size / 4096)), b.name).toBe(ref.blocks[b.name]);
      }
      // Return path: PONG 1..4, requests (the first names the block), SHUT 0 last.
      const msgs = src.rp.messages;
      expect(
        msgs
          .filter((m) => m.type === 'PONG')
          .map((m) => (m as { value: number }).value)
          .sort(),
      ).toEqual([1, 2, 3, 4]);
      const reqs = msgs.filter((m) => m.type === 'REQ_PAGES' || m.type === 'REQ_PAGES_ID');
      expect(reqs.length).toBeGreaterThan(0);
      expect(reqs[0]).toMatchObject({ type: 'REQ_PAGES_ID', block: 'pc.ram', length: 4096 });
      for (const r of reqs) {
        const q = r as { start: number; length: number };
        expect(q.start % 4096).toBe(0);
        expect(q.start + q.length).toBeLessThanOrEqual(32 << 20);
      }
      // One request per host page.
      expect(new Set(reqs.map((r) => (r as { start: number }).start)).size).toBe(reqs.length);
      expect(msgs.at(-1)).toEqual({ type: 'SHUT', value: 0 });
      const q = got.query as Record<string, unknown>;
      expect(q.status).toBe('completed');
      expect(q['x-postcopy-backend']).toBe(mode === 'cooperative' ? 'cooperative' : 'uffd');
      expect(q['x-postcopy-requests']).toBe(reqs.length);
      expect(q['x-postcopy-faults'] as number).toBeGreaterThanOrEqual(reqs.length);
      const dist = q['postcopy-latency-dist'] as number[];
      expect(dist).toHaveLength(32);
      expect(dist.reduce((a, b) => a + b, 0)).toBe(q['x-postcopy-faults']);
      expect(q['postcopy-latency'] as number).toBeGreaterThan(0);
      expect((q['postcopy-vcpu-blocktime'] as number[])[0]).toBeGreaterThanOrEqual(0);
      expect(got.toucher?.touched).toBeGreaterThan(0);
      expect(got.deviceSections.map((s) => s.idstr)).toContain('cpu');
      expect(got.vmdesc).toBeUndefined();
    } finally {
      got.close();
    }
  });
});
