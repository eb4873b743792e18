import { TransportError } from '@e2k-migrate/transports';
import { describe, expect, it } from 'vitest';
import { MigrationStreamError } from '../errors.js';
import { encodeRpMessage, type RpMessage } from '../wire/return-path.js';
import { type PageRequest, SourceReturnPath } from './source-return-path.js';

async function* chunks(...parts: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield p;
}
const msg = (m: RpMessage) => encodeRpMessage(m).written();

describe('SourceReturnPath', () => {
  it('collects PONGs, resolves page requests to their block, and SHUT 0', async () => {
    const reqs: PageRequest[] = [];
    const rp = new SourceReturnPath(
      chunks(
        msg({ type: 'PONG', value: 1 }),
        msg({ type: 'REQ_PAGES_ID', start: 0x100000, length: 4096, block: 'pc.ram' }),
        msg({ type: 'REQ_PAGES', start: 0x200000, length: 8192 }),
        msg({ type: 'PONG', value: 2 }),
        msg({ type: 'SHUT', value: 0 }),
      ),
      { onRequest: (r) => reqs.push(r) },
    );
    expect(await rp.waitShut(1000)).toBe(0);
    await rp.finished;
    expect(rp.error).toBeUndefined();
    expect(rp.pongs).toEqual([1, 2]);
    expect(reqs).toEqual([
      { block: 'pc.ram', start: 0x100000, length: 4096, rpOffset: 8 },
      { block: 'pc.ram', start: 0x200000, length: 8192, rpOffset: 8 + 23 },
    ]);
  });

  it('REQ_PAGES before any REQ_PAGES_ID is a typed error with its offset', async () => {
    const rp = new SourceReturnPath(chunks(msg({ type: 'REQ_PAGES', start: 0, length: 4096 })));
    await rp.finished;
    expect(rp.error).toBeInstanceOf(MigrationStreamError);
    expect(rp.error).toMatchObject({ code: 'E_BAD_RP_MESSAGE', offset: 0, channel: 'return-path' });
    await expect(rp.waitShut(1000)).rejects.toBe(rp.error);
  });

  it('the input ending without SHUT is a connection loss (TransportError E_EOF); SHUT 1 is E_PEER_FAILED', async () => {
    const gone = new SourceReturnPath(chunks(msg({ type: 'PONG', value: 1 })));
    await gone.finished;
    expect(gone.error).toBeInstanceOf(TransportError);
    expect(gone.error).toMatchObject({ code: 'E_EOF' });
    const failed = new SourceReturnPath(chunks(msg({ type: 'SHUT', value: 1 })));
    await failed.finished;
    expect(failed.error).toMatchObject({ code: 'E_PEER_FAILED' });
  });

  it('recovery replies: RECV_BITMAP blobs by block (split across chunks) and RESUME_ACK', async () => {
    const blob = new Uint8Array(16).fill(0x5a);
    const all = Buffer.concat([
      msg({ type: 'RECV_BITMAP', block: 'pc.ram', bitmap: blob }),
      msg({ type: 'RECV_BITMAP', block: 'pc.rom', bitmap: new Uint8Array(8) }),
      msg({ type: 'RESUME_ACK', value: 1 }),
      msg({ type: 'SHUT', value: 0 }),
    ]);
    const rp = new SourceReturnPath(chunks(...Array.from({ length: all.length }, (_, i) => all.subarray(i, i + 1))));
    expect(await rp.recvBitmap('pc.rom', 1000)).toEqual(new Uint8Array(8));
    expect(await rp.recvBitmap('pc.ram', 1000)).toEqual(blob);
    await rp.resumeAck(1000);
    await rp.finished;
    expect(rp.error).toBeUndefined();
  });

  it('a corrupt end mark after a bitmap fails typed; a missing reply times out typed', async () => {
    const bytes = Buffer.from(msg({ type: 'RECV_BITMAP', block: 'x', bitmap: new Uint8Array(8) }));
    bytes[bytes.length - 1] ^= 0xff;
    const bad = new SourceReturnPath(chunks(bytes));
    await expect(bad.recvBitmap('x', 1000)).rejects.toMatchObject({ code: 'E_BAD_RP_MESSAGE' });
    const silent = new SourceReturnPath(
      (async function* () {
        await new Promise((r) => setTimeout(r, 200));
        yield msg({ type: 'SHUT', value: 0 });
      })(),
    );
    await expect(silent.resumeAck(20)).rejects.toMatchObject({ code: 'E_PEER_FAILED' });
    await silent.finished;
  });
});
