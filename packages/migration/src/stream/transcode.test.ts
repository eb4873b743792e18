import { describe, expect, it } from 'vitest';
import { chunks, synthPrecopy } from '../test-util/synth.js';
import { ByteSource } from './byte-source.js';
import { StreamWriter } from './stream-writer.js';
import { transcode } from './transcode.js';

describe('transcode', () => {
  it('re-encodes a stream to identical bytes, whatever the chunking', async () => {
    const data = await synthPrecopy();
    for (const sizes of [[data.length], [1], [5, 4100, 3]]) {
      const out: Uint8Array[] = [];
      await transcode(
        new ByteSource(chunks(data, sizes)),
        new StreamWriter((c) => void out.push(c), { flushBytes: 100 }),
      );
      expect(new Uint8Array(Buffer.concat(out))).toEqual(data);
    }
  });
});
