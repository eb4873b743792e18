import { MigrationStreamError, receiveMigration } from '@e2k-migrate/migration';
import type { FuzzResult, FuzzTarget } from './fuzz.js';
import { mutate, Rng } from './mutate.js';
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
    log(`corpus: ${corpus.map((c) => `${c.name} ${c.main.length} B`).join(', ')}`);
    for (const c of corpus) {
      const r = await receiveCase(c.main);
      if (r !== 'valid') throw new Error(`corpus entry ${c.name} is not received: ${r}`);
    }
    const rng = new Rng(seed);
    const result: FuzzResult = { inputs: 0, valid: 0, typedErrors: {} };
    for (let i = 0; i < iterations; i++) {
      const base = rng.pick(corpus);
      let bytes = base.main;
      const steps: string[] = [];
      for (let k = 1 + rng.int(3); k > 0; k--) {
        const r = mutate(rng, bytes, rng.pick(corpus).main);
        bytes = r.bytes;
        steps.push(r.what);
      }
      let r: string;
      try {
        r = await receiveCase(bytes);
      } catch (err) {
        throw new Error(`input ${i} (${base.name}: ${steps.join(', ')}) failed: ${(err as Error).message}`, {
          cause: err,
        });
      }
      result.inputs++;
      if (r === 'valid') result.valid++;
      else result.typedErrors[r] = (result.typedErrors[r] ?? 0) + 1;
      if ((i + 1) % 2000 === 0) log(`${i + 1} inputs`);
    }
    return result;
  },
};
