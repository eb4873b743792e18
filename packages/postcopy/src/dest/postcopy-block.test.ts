import { decodeRpMessage, encodeRpMessage } from '@e2k-migrate/migration';
import { createGuestMemoryWith, HUGE_PAGE } from '@e2k-migrate/native';
import { ByteReader } from '@e2k-migrate/vmstate';
import { describe, expect, it } from 'vitest';
import { PostcopyBlock } from './postcopy-block.js';

describe('PostcopyBlock', () => {
  it('seeds the received bitmap from precopy and answers RECV_BITMAP as little-endian 64-bit words', () => {
    const seed = new Uint8Array(16);
    seed[0] = 0b1000_0101; // pages 0, 2, 7
    seed[9] = 0x01; // page 72
    const b = new PostcopyBlock(0, {
      name: 'pc.ram',
      memory: createGuestMemoryWith('fallback', { size: 100 * 4096 }),
      precopyReceived: () => seed,
    });
    b.markHostPage(99 * 4096);
    b.clearRange(2 * 4096, 4096);
    const blob = b.recvBitmapBlob();
    expect(blob.length).toBe(16); // ceil(100 / 8) = 13, rounded up to 8
    expect([...blob]).toEqual([0x81, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0x08, 0, 0, 0]);
    const wire = encodeRpMessage({ type: 'RECV_BITMAP', block: 'pc.ram', bitmap: blob }).written();
    expect(decodeRpMessage(new ByteReader(wire))).toEqual({ type: 'RECV_BITMAP', block: 'pc.ram', bitmap: blob });
  });

  it('a huge host page is received only when all of its target pages are', () => {
    const b = new PostcopyBlock(0, {
      name: 'mem',
      memory: createGuestMemoryWith('fallback', { size: 2 * HUGE_PAGE, kind: 'hugetlb' }),
    });
    expect(b.targetsPerHost).toBe(512);
    expect(b.hostPageOf(HUGE_PAGE + 12345)).toBe(HUGE_PAGE);
    b.received.setRange(0, 511);
    expect(b.hostPageReceived(0)).toBe(false);
    b.received.set(511);
    expect(b.hostPageReceived(0)).toBe(true);
    expect(b.hostPageReceived(HUGE_PAGE)).toBe(false);
  });

  it('refuses a used_length that is not a whole number of host pages', () => {
    expect(
      () =>
        new PostcopyBlock(0, {
          name: 'mem',
          memory: createGuestMemoryWith('fallback', { size: HUGE_PAGE, kind: 'hugetlb' }),
          size: 4096,
        }),
    ).toThrow(/positive multiple of its 2097152-byte host page/);
  });
});
