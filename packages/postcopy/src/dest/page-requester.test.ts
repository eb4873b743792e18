import { decodeRpMessage, encodeRpMessage, type RpMessage } from '@e2k-migrate/migration';
import { createGuestMemoryWith, HUGE_PAGE } from '@e2k-migrate/native';
import { ByteReader } from '@e2k-migrate/vmstate';
import { describe, expect, it } from 'vitest';
import { PageRequester } from './page-requester.js';
import { PostcopyBlock } from './postcopy-block.js';

const ram = new PostcopyBlock(0, { name: 'pc.ram', memory: createGuestMemoryWith('fallback', { size: 1 << 20 }) });
const mem = new PostcopyBlock(1, {
  name: 'mem',
  memory: createGuestMemoryWith('fallback', { size: 2 * HUGE_PAGE, kind: 'hugetlb' }),
});

/** A return path that encodes every message to bytes (as sent) and decodes them back. */
function wire() {
  const bytes: Uint8Array[] = [];
  const send = async (m: RpMessage) => {
    bytes.push(encodeRpMessage(m).written().slice());
  };
  const decoded = () => bytes.map((b) => decodeRpMessage(new ByteReader(b)));
  return { send, bytes, decoded };
}

describe('PageRequester', () => {
  it('names the block on the first request and on every block change; length = host page size', () => {
    const rp = wire();
    const r = new PageRequester();
    r.attach(rp.send);
    expect(r.request(ram, 0x100000)).toBe(true);
    r.request(ram, 0x2000);
    r.request(mem, HUGE_PAGE);
    r.request(ram, 0x3000);
    expect(rp.decoded()).toEqual([
      { type: 'REQ_PAGES_ID', start: 0x100000, length: 4096, block: 'pc.ram' },
      { type: 'REQ_PAGES', start: 0x2000, length: 4096 },
      { type: 'REQ_PAGES_ID', start: HUGE_PAGE, length: HUGE_PAGE, block: 'mem' },
      { type: 'REQ_PAGES_ID', start: 0x3000, length: 4096, block: 'pc.ram' },
    ]);
    // the captured bytes of QEMU's destination (spec §8.2): 0003 0013 <start> 00001000 06 "pc.ram"
    expect(Buffer.from(rp.bytes[0] as Uint8Array).toString('hex')).toBe(
      '000300130000000000100000000010000670632e72616d',
    );
    expect(Buffer.from(rp.bytes[1] as Uint8Array).toString('hex')).toBe('0004000c000000000000200000001000');
    expect(r.sent).toBe(4);
  });

  it('keeps one outstanding request per host page until it is placed', () => {
    const rp = wire();
    const r = new PageRequester();
    r.attach(rp.send);
    expect(r.request(ram, 0x5000)).toBe(true);
    expect(r.request(ram, 0x5000)).toBe(false);
    expect(r.isOutstanding(ram, 0x5000)).toBe(true);
    r.placed(ram, 0x5000);
    expect(r.isOutstanding(ram, 0x5000)).toBe(false);
    expect(r.request(ram, 0x5000)).toBe(true);
    expect(rp.decoded()).toHaveLength(2);
    expect(r.pending).toBe(1);
  });

  it('holds requests while paused and re-sends every outstanding one after the resume, the first with the block name', () => {
    const before = wire();
    const r = new PageRequester();
    r.attach(before.send);
    r.request(ram, 0x1000);
    r.request(ram, 0x2000);
    r.placed(ram, 0x1000);
    r.attach(undefined); // paused
    r.request(ram, 0x3000);
    expect(before.decoded()).toHaveLength(2);
    const after = wire();
    r.attach(after.send);
    expect(r.resendOutstanding()).toBe(2);
    expect(after.decoded()).toEqual([
      { type: 'REQ_PAGES_ID', start: 0x2000, length: 4096, block: 'pc.ram' },
      { type: 'REQ_PAGES', start: 0x3000, length: 4096 },
    ]);
    expect(r.list()).toEqual([
      { block: 'pc.ram', hostOffset: 0x2000 },
      { block: 'pc.ram', hostOffset: 0x3000 },
    ]);
  });

  it('a failed write leaves the request outstanding (the connection broke; recovery re-sends it)', async () => {
    const r = new PageRequester();
    r.attach(() => Promise.reject(new Error('ECONNRESET')));
    r.request(ram, 0x7000);
    await new Promise((x) => setImmediate(x));
    expect(r.isOutstanding(ram, 0x7000)).toBe(true);
  });
});
