import type { ByteSource } from '../stream/byte-source.js';
import { decodeRpMessage, type RpMessage } from '../wire/return-path.js';

/** Largest return-path record accepted (a RECV_BITMAP blob for a 1 TiB block is 32 MiB). */
const MAX_RP_RECORD = 256 << 20;

/** Reads a whole destination → source stream (spec §8.2) into messages with their offsets. */
export async function readReturnPath(src: ByteSource): Promise<(RpMessage & { offset: number })[]> {
  const out: (RpMessage & { offset: number })[] = [];
  while (await src.ensure(1)) {
    const offset = src.offset;
    const m = await src.parse((r) => decodeRpMessage(r), 'return-path message', MAX_RP_RECORD, {
      channel: src.channel,
    });
    out.push({ ...m, offset });
  }
  return out;
}
