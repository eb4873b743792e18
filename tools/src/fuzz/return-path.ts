import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeRpMessage, MigrationStreamError, type RpMessage, SourceReturnPath } from '@e2k-migrate/migration';
import { TransportError } from '@e2k-migrate/transports';
import { type FuzzResult, type FuzzTarget, mutationLoop } from './fuzz.js';
import { CASE_TIMEOUT_MS } from './stream.js';
import { FIXTURES } from './stream-corpus.js';

/** A recovery's return path: RECV_BITMAP replies for the pc blocks, RESUME_ACK, requests, SHUT. */
function recoveryReturnPath(): Uint8Array {
  const msgs: RpMessage[] = [
    { type: 'RECV_BITMAP', block: 'pc.ram', bitmap: new Uint8Array(1024).fill(0xf0) },
    { type: 'RECV_BITMAP', block: '/rom@etc/acpi/tables', bitmap: new Uint8Array(8) },
    { type: 'RECV_BITMAP', block: 'pc.bios', bitmap: new Uint8Array(8).fill(0xff) },
    { type: 'RESUME_ACK', value: 1 },
    { type: 'REQ_PAGES_ID', start: 0x1996000, length: 0x1000, block: 'pc.ram' },
    { type: 'REQ_PAGES', start: 0x1997000, length: 0x1000 },
    { type: 'SHUT', value: 0 },
  ];
  return Buffer.concat(msgs.map((m) => encodeRpMessage(m).written()));
}

/**
 * Feeds one (mutated) return path, in odd-sized chunks, to the postcopy source's reader. It
 * must end — SHUT, or a typed failure: MigrationStreamError with an offset for a malformed
 * message, TransportError E_EOF when the input ends without SHUT — within the time bound.
 */
export async function returnPathCase(bytes: Uint8Array, timeoutMs = CASE_TIMEOUT_MS): Promise<'valid' | string> {
  const chunks = async function* () {
    for (let at = 0, i = 0; at < bytes.length; i++) {
      const n = [1, 13, 4096, 3][i % 4] as number;
      yield bytes.subarray(at, at + n);
      at += n;
    }
  };
  let badRequest: string | undefined;
  const rp = new SourceReturnPath(chunks(), {
    onRequest: (r) => {
      if (!Number.isSafeInteger(r.start) || !Number.isSafeInteger(r.length) || typeof r.block !== 'string') {
        badRequest ??= JSON.stringify(r);
      }
    },
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => {
    timer = setTimeout(() => r('timeout'), timeoutMs);
  });
  const end = await Promise.race([rp.finished.then(() => 'done' as const), timeout]);
  clearTimeout(timer);
  if (end === 'timeout') throw new Error(`return-path reader did not finish within ${timeoutMs} ms`);
  if (badRequest) throw new Error(`a page request with bad fields reached the queue: ${badRequest}`);
  const err = rp.error;
  if (!err) return 'valid';
  if (err instanceof TransportError) return err.code;
  if (!(err instanceof MigrationStreamError)) throw err;
  if (err.code !== 'E_PEER_FAILED' && (typeof err.offset !== 'number' || !Number.isFinite(err.offset))) {
    throw new Error(`typed error ${err.code} without a byte offset: ${err.message}`, { cause: err });
  }
  return err.code;
}

export const returnPathTarget: FuzzTarget = {
  name: 'return-path',
  summary: "mutated QEMU 7.2 return paths into the postcopy source's reader: SHUT or a typed error",
  async run({ iterations, seed, log }): Promise<FuzzResult> {
    const corpus = [
      { name: 'postcopy', bytes: new Uint8Array(readFileSync(join(FIXTURES, 'postcopy', 'conn0.dst2src.bin'))) },
      {
        name: 'postcopy-preempt',
        bytes: new Uint8Array(readFileSync(join(FIXTURES, 'postcopy-preempt', 'conn0.dst2src.bin'))),
      },
      { name: 'recovery', bytes: recoveryReturnPath() },
    ];
    return mutationLoop(corpus, returnPathCase, { iterations, seed, log, logEvery: 5000 });
  },
};
