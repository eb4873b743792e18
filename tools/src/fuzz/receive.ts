import { MigrationStreamError, receiveMigration } from '@e2k-migrate/migration';
import { type FuzzResult, type FuzzTarget, mutationLoop } from './fuzz.js';
import { CASE_TIMEOUT_MS } from './stream.js';
import { buildStreamCorpus } from './stream-corpus.js';

/**
 * Feeds one (mutated) main stream to the store receiver, return path attached, in odd-sized
 * chunks. It must end in a received migration or a MigrationStreamError with a byte offset,
 * within the time bound; anything else is a finding.
 */
export async function receiveCase(main: Uint8Array, timeoutMs = CASE_TIMEOUT_MS): Promise<'valid' | string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`receiver did not finish within ${timeoutMs} ms`)), timeoutMs);
  });
  const chunks = function* () {
    for (let at = 0, i = 0; at < main.length; i++) {
      const n = [1, 4093, 65536, 7][i % 4] as number;
      yield main.subarray(at, at + n);
      at += n;
    }
  };
  try {
    const m = await Promise.race([
      receiveMigration({ input: chunks(), returnPath: async () => {}, maxRam: 256 << 20 }),
      timeout,
    ]);
    m.close();
    return 'valid';
  } catch (err) {
    if (!(err instanceof MigrationStreamError)) throw err;
    if (typeof err.offset !== 'number' || !Number.isFinite(err.offset)) {
      throw new Error(`typed error ${err.code} without a byte offset: ${err.message}`, { cause: err });
    }
    return err.code;
  } finally {
    clearTimeout(timer);
  }
}

export const receiveTarget: FuzzTarget = {
  name: 'receive',
  summary: 'mutated QEMU 7.2 streams into `incoming`s receiver (store/): typed error or a received migration',
  async run({ iterations, seed, log }): Promise<FuzzResult> {
    const corpus = (await buildStreamCorpus()).filter((c) => !c.name.startsWith('postcopy') && !c.multifd);
    return mutationLoop(
      corpus.map((c) => ({ name: c.name, bytes: c.main })),
      receiveCase,
      { iterations, seed, log },
    );
  },
};
