import type { ByteReader } from '@e2k-migrate/vmstate';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MigrationStreamError } from '../errors.js';
import { rejectsStreamError } from '../test-util/catch.js';
import { ByteSource } from './byte-source.js';

function chunked(data: Uint8Array, sizes: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  let i = 0;
  while (at < data.length) {
    const n = Math.max(1, sizes[i++ % Math.max(1, sizes.length)] ?? 1);
    out.push(Buffer.from(data.subarray(at, at + n)));
    at += n;
  }
  return out;
}

describe('ByteSource', () => {
  const data = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 7) & 0xff);

  it('property: any chunking and any read pattern yields the input bytes with absolute offsets', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1 }),
        async (sizes, reads) => {
          const src = new ByteSource(chunked(data, sizes));
          const got: number[] = [];
          let i = 0;
          while (await src.ensure(1)) {
            const want = reads[i++ % reads.length] as number;
            const ok = await src.ensure(want);
            expect(src.offset).toBe(got.length);
            const n = ok ? want : src.available;
            expect(src.available).toBeGreaterThanOrEqual(n);
            for (let k = 0; k < n; k++) got.push(src.buf[src.pos + k] as number);
            src.consume(n);
          }
          expect(Uint8Array.from(got)).toEqual(data);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('adopts chunks without copying when the window is empty', async () => {
    const a = new Uint8Array(100);
    const src = new ByteSource([a, new Uint8Array(100)]);
    await src.ensure(10);
    expect(src.buf.buffer).toBe(a.buffer);
  });

  it('limits make the input end early and pop back', async () => {
    const src = new ByteSource(chunked(data, [7]));
    await src.skip(10, 'x');
    src.pushLimit(20);
    expect(await src.ensure(10)).toBe(true);
    expect(await src.ensure(11)).toBe(false);
    expect(src.available).toBe(10);
    src.consume(10);
    expect(await src.atEnd()).toBe(true);
    src.popLimit();
    expect(await src.ensure(100)).toBe(true);
    expect(src.offset).toBe(20);
  });

  it('need() throws a typed truncation error with the offset', async () => {
    const src = new ByteSource(new Uint8Array(5), { channel: 'main' });
    src.consume(2);
    const e = await rejectsStreamError(src.need(10, 'a thing'));
    expect(e).toMatchObject({ code: 'E_TRUNCATED', offset: 2, channel: 'main' });
  });

  it('parse() retries with more data until the parser is satisfied, then bounds it', async () => {
    const src = new ByteSource(chunked(data, [3]));
    const v = await src.parse((r: ByteReader) => r.bytesView(5000).length, 'blob', 1 << 20);
    expect(v).toBe(5000);
    expect(src.offset).toBe(5000);
    const big = new ByteSource(chunked(new Uint8Array(100_000), [1000]));
    expect((await rejectsStreamError(big.parse((r) => r.skip(90_000), 'huge', 10_000))).code).toBe('E_BAD_LENGTH');
    const short = new ByteSource(chunked(new Uint8Array(100), [7]));
    expect((await rejectsStreamError(short.parse((r) => r.skip(200), 'past end', 1 << 20))).code).toBe('E_TRUNCATED');
  });

  it('fillToEnd() buffers the rest when it fits', async () => {
    const src = new ByteSource(chunked(data, [100]));
    expect(await src.fillToEnd(1 << 20)).toBe(true);
    expect(src.available).toBe(data.length);
    const src2 = new ByteSource(chunked(data, [100]));
    expect(await src2.fillToEnd(1000)).toBe(false);
  });

  it('turns input errors into E_IO', async () => {
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(3);
      throw new Error('disk on fire');
    }
    const src = new ByteSource(failing(), { channel: 'main' });
    const e = await rejectsStreamError(src.ensure(10));
    expect(e).toBeInstanceOf(MigrationStreamError);
    expect(e.code).toBe('E_IO');
    expect(e.message).toMatch(/disk on fire/);
  });
});
