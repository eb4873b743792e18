import { MigrationStreamError } from '../errors.js';
import { openInput } from '../stream/input.js';
import { findVmdescTrailer, MAX_VMDESC_LENGTH, parseVmdesc } from '../wire/vmdesc-trailer.js';

/**
 * Loads a vmdesc for `--vmdesc FILE`: either a JSON file (e.g. saved with `--format desc`), or a
 * migration stream (plain or gzip) whose trailing vmdesc is taken. Returns the JSON bytes.
 */
export async function loadVmdescFile(path: string): Promise<Uint8Array> {
  const input = await openInput(path, { channel: 'vmdesc' });
  const src = input.source;
  try {
    await src.ensure(1);
    const first = firstNonSpace(src.buf.subarray(src.pos, src.pos + src.available));
    if (first === 0x7b) {
      if (!(await src.fillToEnd(MAX_VMDESC_LENGTH))) {
        throw new MigrationStreamError(
          'E_BAD_LENGTH',
          `vmdesc file ${path} is larger than ${MAX_VMDESC_LENGTH} bytes`,
          { offset: 0 },
        );
      }
      const json = src.buf.slice(src.pos, src.pos + src.available);
      parseVmdesc(json);
      return json;
    }
    // A stream: keep a rolling tail large enough for any vmdesc, then find the trailer in it.
    const keep = MAX_VMDESC_LENGTH + 16;
    const recent: Uint8Array[] = [];
    let held = 0;
    while (await src.ensure(1)) {
      const chunk = src.buf.slice(src.pos, src.pos + src.available);
      src.consume(chunk.length);
      recent.push(chunk);
      held += chunk.length;
      while (recent.length > 1 && held - (recent[0] as Uint8Array).length >= keep)
        held -= (recent.shift() as Uint8Array).length;
    }
    const tail = Buffer.concat(recent);
    const loc = findVmdescTrailer(tail);
    if (loc === undefined) {
      throw new MigrationStreamError(
        'E_BAD_VMDESC',
        `${path} is neither vmdesc JSON nor a stream ending with a vmdesc`,
        { offset: src.offset },
      );
    }
    const json = tail.slice(loc.jsonStart, loc.jsonStart + loc.jsonLength);
    parseVmdesc(json);
    return json;
  } finally {
    await src.close();
  }
}

function firstNonSpace(b: Uint8Array): number | undefined {
  for (const c of b) if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return c;
  return undefined;
}
