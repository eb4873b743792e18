import { createHash } from 'node:crypto';
import { openInput, StreamWriter, transcode } from '@e2k-migrate/migration';
import { readFixtureJson } from '@e2k-migrate/test-support';
import { describe, expect, it } from 'vitest';
import { CASES, path } from './fixture-cases.js';

interface ManifestEntry {
  file: string;
  sha256: string;
  uncompressed_sha256?: string;
  size: number;
  uncompressed_size?: number;
}

const manifest = readFixtureJson<ManifestEntry[]>('MANIFEST.json');

function reference(rel: string): { sha256: string; size: number } {
  const e = manifest.find((m) => m.file === rel || m.file === `${rel}.gz`);
  if (!e) throw new Error(`${rel} not in MANIFEST.json`);
  return { sha256: e.uncompressed_sha256 ?? e.sha256, size: e.uncompressed_size ?? e.size };
}

describe('round trip: decode every fixture stream and encode it again', () => {
  it.each(CASES.map((c) => [c.name, c.main]))(
    '%s: identical bytes (sha256 of the streamed output)',
    async (_name, rel) => {
      const input = await openInput(path(rel));
      const h = createHash('sha256');
      let n = 0;
      const writer = new StreamWriter((chunk) => {
        h.update(chunk);
        n += chunk.length;
      });
      await transcode(input.source, writer);
      await input.source.close();
      const ref = reference(rel);
      expect(n).toBe(ref.size);
      expect(h.digest('hex')).toBe(ref.sha256);
    },
  );
});
