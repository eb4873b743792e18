import { describe, expect, it } from 'vitest';
import { MigrationFile } from './migration-file.js';

/** A sink that records what it got and releases bytes only when told to. */
function sink() {
  const got: Uint8Array[] = [];
  let accepted = 0;
  let unsent = 0;
  let fail: Error | undefined;
  return {
    got,
    release(n: number) {
      unsent = Math.max(0, unsent - n);
    },
    failWith(e: Error) {
      fail = e;
    },
    s: {
      get writeBuffered() {
        return unsent;
      },
      get bytesWritten() {
        return accepted;
      },
      async write(b: Uint8Array) {
        if (fail) throw fail;
        got.push(b);
        accepted += b.length;
        unsent += b.length;
      },
      async flush() {},
    },
  };
}

describe('MigrationFile', () => {
  it('writes big-endian scalars and spans buffers for long byte runs', async () => {
    const k = sink();
    const f = new MigrationFile(k.s, { bufferBytes: 64 << 10 });
    f.u8(1)
      .be16(0x0203)
      .be32(0x04050607)
      .be64(2 ** 40 + 9);
    const long = new Uint8Array(200_000).map((_, i) => i & 255);
    f.bytes(long);
    expect(f.bytesWritten).toBe(15 + 200_000);
    await f.flush();
    const all = Buffer.concat(k.got.map((b) => Buffer.from(b)));
    expect([...all.subarray(0, 15)]).toEqual([1, 2, 3, 4, 5, 6, 7, 0, 0, 1, 0, 0, 0, 0, 9]);
    expect(all.subarray(15).equals(Buffer.from(long))).toBe(true);
    expect(k.got.length).toBe(4); // 64 KiB buffers handed over whole
  });

  it('reuses a buffer only once the sink reports it handed to the kernel', () => {
    const k = sink();
    const f = new MigrationFile(k.s, { bufferBytes: 64 << 10 });
    f.bytes(new Uint8Array(1000).fill(1));
    const first = f.buf;
    f.emit();
    const second = f.buf;
    f.bytes(new Uint8Array(1000).fill(2));
    f.emit(); // the first buffer is still unsent: not reused
    expect(f.buf).not.toBe(first);
    expect(f.buf).not.toBe(second);
    expect(k.got[0]?.[0]).toBe(1);
    const third = f.buf;
    k.release(2000);
    f.bytes(new Uint8Array(10).fill(3));
    f.emit(); // both handed-over buffers are released now: one of them is recycled
    expect([first, second]).toContain(f.buf);
    expect(f.buf).not.toBe(third);
  });

  it('reports congestion above its high-water mark', () => {
    const k = sink();
    const f = new MigrationFile(k.s, { bufferBytes: 64 << 10, highWaterMark: 100 << 10 });
    f.bytes(new Uint8Array(64 << 10));
    f.emit();
    expect(f.congested).toBe(false);
    f.bytes(new Uint8Array(64 << 10));
    f.emit();
    expect(f.congested).toBe(true);
  });

  it('surfaces a write error at the next drain or flush', async () => {
    const k = sink();
    const f = new MigrationFile(k.s);
    k.failWith(new Error('EPIPE'));
    f.u8(1);
    f.emit();
    await expect(f.drain()).rejects.toThrow('EPIPE');
    expect(() => f.u8(2).emit()).toThrow('EPIPE');
  });
});
