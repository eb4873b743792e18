import { ByteSource } from '../stream/byte-source.js';
import { decodeRpMessage, type RpMessage } from '../wire/return-path.js';

/** Largest return-path message accepted (RECV_BITMAP blobs of recovery are the big ones). */
const MAX_RP_MESSAGE = 64 << 20;

/**
 * Reads return-path messages (destination → source, spec §8.2) from the main channel's other
 * direction and hands each to `onMessage` with its offset. Resolves when the input ends; a
 * malformed message rejects with a typed MigrationStreamError (channel `return-path`).
 */
export async function forEachReturnPathMessage(
  input: AsyncIterable<Uint8Array>,
  onMessage: (m: RpMessage, offset: number) => void | Promise<void>,
): Promise<void> {
  const src = new ByteSource(input, { channel: 'return-path' });
  try {
    while (await src.ensure(1)) {
      const at = src.offset;
      const m = await src.parse((r) => decodeRpMessage(r), 'return-path message', MAX_RP_MESSAGE, {
        channel: 'return-path',
      });
      await onMessage(m, at);
    }
  } finally {
    await src.close();
  }
}
