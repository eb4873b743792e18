import type { Vmdesc, VmdescDevice } from '@e2k-migrate/vmstate';
import type { ByteSource } from '../stream/byte-source.js';
import type { SectionInfo } from '../stream/section-loader.js';
import type { StreamState } from '../stream/stream-state.js';
import { findVmdescTrailer, parseVmdesc } from '../wire/vmdesc-trailer.js';

/** Where the vmdesc used to decode device sections came from. */
export type VmdescOrigin = 'option' | 'file-tail' | 'look-ahead' | 'stream';

/** Most bytes buffered ahead, in a pipe, to reach a vmdesc at the end of the stream. */
export const VMDESC_LOOKAHEAD_MAX = 32 << 20;

/**
 * Supplies the vmdesc that decodes device sections: given up front (`--vmdesc`, or the tail of a
 * seekable file), or — in a pipe — found by buffering ahead to the end of the stream when the
 * first device section arrives (device sections, EOF and vmdesc are the end of a precopy
 * stream). Postcopy streams carry none. Devices are matched by (name, instance_id), the k-th
 * section of a key to the k-th vmdesc entry of that key.
 */
export class VmdescProvider {
  vmdesc: Vmdesc | undefined;
  json: Uint8Array | undefined;
  origin: VmdescOrigin | undefined;
  /** Stream offset of the 0x06 byte, when it came from the stream. */
  offset: number | undefined;
  private attempted = false;
  private readonly seen = new Map<string, number>();
  private byKey: Map<string, VmdescDevice[]> | undefined;

  set(json: Uint8Array, origin: VmdescOrigin, offset?: number): Vmdesc {
    const v = parseVmdesc(json, offset === undefined ? 0 : offset + 5);
    this.vmdesc = v;
    this.json = json;
    this.origin = origin;
    this.offset = offset;
    this.byKey = undefined;
    return v;
  }

  /** The vmdesc, looking ahead in the source when that is cheap and not tried yet. */
  async ensure(src: ByteSource, state: StreamState): Promise<Vmdesc | undefined> {
    if (this.vmdesc || this.attempted) return this.vmdesc;
    this.attempted = true;
    if (state.postcopyListening || src.limitEnd !== Number.POSITIVE_INFINITY) return undefined;
    if (!(await src.fillToEnd(VMDESC_LOOKAHEAD_MAX))) return undefined;
    const tail = src.buf.subarray(src.pos, src.pos + src.available);
    const loc = findVmdescTrailer(tail);
    if (loc === undefined) return undefined;
    try {
      return this.set(tail.slice(loc.jsonStart, loc.jsonStart + loc.jsonLength), 'look-ahead', src.offset + loc.index);
    } catch {
      // An unparsable trailer is reported when the reader reaches it; decode by footer scan meanwhile.
      this.vmdesc = undefined;
      return undefined;
    }
  }

  /** The vmdesc entry for a section (consumes one occurrence of its key). */
  lookup(section: SectionInfo): VmdescDevice | undefined {
    if (this.vmdesc === undefined) return undefined;
    if (this.byKey === undefined) {
      this.byKey = new Map();
      for (const d of this.vmdesc.devices) {
        const k = key(d.name, d.instance_id);
        const list = this.byKey.get(k) ?? [];
        list.push(d);
        this.byKey.set(k, list);
      }
    }
    const k = key(section.idstr, section.instanceId);
    const list = this.byKey.get(k);
    if (list === undefined) return undefined;
    const n = this.seen.get(k) ?? 0;
    this.seen.set(k, n + 1);
    return list[Math.min(n, list.length - 1)];
  }
}

function key(name: string, instance: number): string {
  return `${name}\u0000${instance}`;
}
