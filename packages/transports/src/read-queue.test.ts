import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rejectionOf } from '../test/helpers.js';
import { TransportError } from './errors.js';
import { ReadQueue } from './read-queue.js';

const bytes = (...xs: number[]): Uint8Array => Uint8Array.from(xs);

describe('ReadQueue', () => {
  it('serves an exact read inside one chunk as a view of it (no copy)', async () => {
    const q = new ReadQueue('test:', () => undefined);
    const chunk = bytes(1, 2, 3, 4, 5, 6);
    q.push(chunk);
    const a = await q.readExactly(2);
    const b = await q.readExactly(3);
    expect([...a]).toEqual([1, 2]);
    expect([...b]).toEqual([3, 4, 5]);
    expect(a.buffer).toBe(chunk.buffer);
    expect(b.buffer).toBe(chunk.buffer);
    expect(b.byteOffset).toBe(2);
    expect(q.consumed).toBe(5);
    expect(q.buffered).toBe(1);
  });

  it('assembles an exact read across chunk boundaries, waiting for the rest', async () => {
    const q = new ReadQueue('test:', () => undefined);
    q.push(bytes(1, 2));
    const p = q.readExactly(7);
    q.push(bytes(3));
    q.push(bytes(4, 5, 6, 7, 8, 9));
    expect([...(await p)]).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect([...(await q.readExactly(2))]).toEqual([8, 9]);
    expect(q.buffered).toBe(0);
  });

  it('drains into a pending large exact read as bytes arrive, so the queue stays empty', async () => {
    const q = new ReadQueue('test:', () => undefined);
    const p = q.readExactly(1000);
    for (let i = 0; i < 10; i++) {
      q.push(new Uint8Array(100).fill(i));
      expect(q.buffered).toBe(0);
      expect(q.demand).toBe(1000 - (i + 1) * 100);
    }
    const got = await p;
    expect(got[0]).toBe(0);
    expect(got[999]).toBe(9);
  });

  it('read(max) returns the head chunk or a part of it, in order', async () => {
    const q = new ReadQueue('test:', () => undefined);
    q.push(bytes(1, 2, 3));
    q.push(bytes(4));
    expect([...((await q.read(2)) as Uint8Array)]).toEqual([1, 2]);
    expect([...((await q.read(10)) as Uint8Array)]).toEqual([3]);
    expect([...((await q.read(10)) as Uint8Array)]).toEqual([4]);
    const pending = q.read(10);
    q.end();
    expect(await pending).toBeNull();
    expect(await q.read(1)).toBeNull();
  });

  it('serves concurrent reads in call order', async () => {
    const q = new ReadQueue('test:', () => undefined);
    const a = q.readExactly(3);
    const b = q.read(100);
    const c = q.readExactly(2);
    q.push(bytes(1, 2, 3, 4, 5, 6, 7));
    q.push(bytes(8, 9));
    expect([...(await a)]).toEqual([1, 2, 3]);
    expect([...((await b) as Uint8Array)]).toEqual([4, 5, 6, 7]);
    expect([...(await c)]).toEqual([8, 9]);
  });

  it('rejects a short exact read at EOF with E_EOF saying expected, got and offset', async () => {
    const q = new ReadQueue('tcp:h:1', () => undefined);
    q.push(bytes(1, 2, 3, 4));
    await q.readExactly(1);
    const p = q.readExactly(10);
    q.end();
    const e = await rejectionOf(p);
    expect(e).toBeInstanceOf(TransportError);
    expect(e.code).toBe('E_EOF');
    expect(e.expected).toBe(10);
    expect(e.got).toBe(3);
    expect(e.offset).toBe(1);
    expect(e.uri).toBe('tcp:h:1');
    expect(e.message).toMatch(/exact read of 10 byte\(s\) at offset 1: got 3/);
  });

  it('after a transport failure, queued bytes are still readable, then the error', async () => {
    const q = new ReadQueue('test:', () => undefined);
    q.push(bytes(1, 2, 3));
    q.fail(new TransportError('E_CLOSED', 'reset', { errno: 'ECONNRESET' }), false);
    expect([...(await q.readExactly(2))]).toEqual([1, 2]);
    const e = await rejectionOf(q.readExactly(4));
    expect(e.code).toBe('E_CLOSED');
    expect(e.errno).toBe('ECONNRESET');
    expect(e.expected).toBe(4);
    expect(e.got).toBe(1);
  });

  it('a discarding failure (cancel) drops queued bytes and rejects at once', async () => {
    const q = new ReadQueue('test:', () => undefined);
    q.push(bytes(1, 2, 3));
    const pending = q.readExactly(5);
    q.fail(new TransportError('E_CANCELLED', 'stop'), true);
    expect((await rejectionOf(pending)).code).toBe('E_CANCELLED');
    expect((await rejectionOf(q.read(1))).code).toBe('E_CANCELLED');
    expect(q.buffered).toBe(0);
  });

  it('unread puts bytes back in front, also in the middle of a chunk', async () => {
    const q = new ReadQueue('test:', () => undefined);
    q.push(bytes(1, 2, 3, 4));
    const head = await q.readExactly(3);
    q.unread(head.subarray(1));
    expect(q.consumed).toBe(1);
    expect([...(await q.readExactly(3))]).toEqual([2, 3, 4]);
  });

  it('calls onConsumed whenever bytes leave the queue', async () => {
    let calls = 0;
    const q = new ReadQueue('test:', () => calls++);
    q.push(bytes(1, 2, 3));
    await q.read(1);
    q.takeBuffered(5);
    expect(calls).toBe(2);
  });

  it('delivers the pushed stream exactly, for any chunking and any read sizes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 40 }),
        async (chunkSizes, readSizes) => {
          const q = new ReadQueue('test:', () => undefined);
          const total = chunkSizes.reduce((a, b) => a + b, 0);
          const src = Uint8Array.from({ length: total }, (_, i) => (i * 7 + 3) & 0xff);
          const out: number[] = [];
          const reader = (async () => {
            for (const n of readSizes) {
              if (out.length + n > total) break;
              out.push(...(await q.readExactly(n)));
            }
            for (;;) {
              const c = await q.read(13);
              if (c === null) break;
              out.push(...c);
            }
          })();
          let at = 0;
          for (const n of chunkSizes) {
            q.push(src.subarray(at, at + n));
            at += n;
            await Promise.resolve();
          }
          q.end();
          await reader;
          expect(out).toEqual([...src]);
        },
      ),
    );
  });
});
