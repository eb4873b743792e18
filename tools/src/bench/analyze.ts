import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { analyzeStream, extractRam } from '@e2k-migrate/migration';
import { type Bench, median, memcpyGBps, timeRuns } from './bench.js';

const FIXTURE = resolve(
  import.meta.dirname,
  '..',
  '..',
  '..',
  'test',
  'fixtures',
  'qemu-7.2',
  'bootblock-live',
  'bootblock-live.mig.gz',
);

/**
 * `pnpm bench analyze`: throughput of `e2k-migrate analyze --extract-ram` on the largest fixture
 * (bootblock-live, 98.8 MB decompressed), beside memcpy measured in the same run.
 */
export const analyzeBench: Bench = {
  name: 'analyze',
  summary: 'analyze MB/s on the 99 MB bootblock-live stream with --extract-ram, vs memcpy GB/s',
  async run({ quick, log }) {
    const dir = await mkdtemp(join(tmpdir(), 'e2k-bench-analyze-'));
    try {
      const plain = join(dir, 'bootblock-live.mig');
      await pipeline(createReadStream(FIXTURE), createGunzip(), createWriteStream(plain));
      const bytes = (await stat(plain)).size;
      const reps = quick ? 2 : 5;
      const extractDir = join(dir, 'ram');
      const extract = async (input: string) => {
        const a = await analyzeStream({ input, maxRam: 1 << 30 });
        await extractRam(a.ram, extractDir);
      };
      log(`warm-up on ${plain} (${bytes} bytes)`);
      await extract(plain);
      const tFile = median(await timeRuns(reps, () => extract(plain)));
      log(`file + --extract-ram: ${(bytes / tFile / 1e6).toFixed(0)} MB/s`);
      const tGz = median(await timeRuns(reps, () => extract(FIXTURE)));
      log(`gzip + --extract-ram: ${(bytes / tGz / 1e6).toFixed(0)} MB/s`);
      const tState = median(
        await timeRuns(reps, async () => {
          await analyzeStream({ input: plain, reconstructRam: false });
        }),
      );
      log(`file, state only: ${(bytes / tState / 1e6).toFixed(0)} MB/s`);
      const mem = memcpyGBps();
      log(`memcpy ${mem.toFixed(2)} GB/s`);
      const row = (what: string, s: number) =>
        `| ${what} | ${(s * 1000).toFixed(0)} ms | ${(bytes / s / 1e6).toFixed(0)} MB/s | ${((bytes / s / 1e9 / mem) * 100).toFixed(1)} % |`;
      return [
        `Input: \`bootblock-live.mig\` (${(bytes / 1e6).toFixed(1)} MB, 24,039 PAGE + 529 ZERO records, 32 MiB guest), median of ${reps} runs.`,
        'Goal: ≥ 500 MB/s for the file with `--extract-ram`.',
        '',
        '| run | time | throughput | vs memcpy |',
        '|---|---|---|---|',
        row('plain file, reconstruct RAM + `--extract-ram` (sparse files)', tFile),
        row('`.mig.gz` (gunzip in the loop), reconstruct + `--extract-ram`', tGz),
        row('plain file, `--format state` (no RAM kept)', tState),
        `| memcpy (Uint8Array.set, 64 MiB) | | ${(mem * 1000).toFixed(0)} MB/s | 100 % |`,
      ].join('\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
};
