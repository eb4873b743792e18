/** A small seeded PRNG (mulberry32): the same seed gives the same mutations on every run. */
export class Rng {
  private s: number;

  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
}

/** Byte values that mean something in a migration stream (record types, flags, footer, lengths). */
const INTERESTING_U8 = [
  0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x10, 0x20, 0x22, 0x28, 0x40, 0x60, 0x7e, 0x7f, 0x80, 0xff,
];
const INTERESTING_U32 = [0, 1, 0x7e, 0xff, 0x1000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

export type MutationName = 'bitflip' | 'byte' | 'truncate' | 'insert' | 'delete' | 'be32' | 'splice' | 'duplicate';

/**
 * Applies one random mutation to `input` (`other` is the splice partner). Returns the new bytes
 * and what was done, for the crash report.
 */
export function mutate(rng: Rng, source: Uint8Array, other: Uint8Array): { bytes: Uint8Array; what: string } {
  // Never a Buffer: Buffer#slice does not copy, and mutations must not leak into the corpus.
  const input = new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  const n = input.length;
  const at = n ? rng.int(n) : 0;
  const kind: MutationName = rng.pick([
    'bitflip',
    'bitflip',
    'byte',
    'byte',
    'truncate',
    'insert',
    'delete',
    'be32',
    'be32',
    'splice',
    'duplicate',
  ]);
  switch (kind) {
    case 'bitflip': {
      const b = input.slice();
      if (n) b[at] = (b[at] as number) ^ (1 << rng.int(8));
      return { bytes: b, what: `bitflip @${at}` };
    }
    case 'byte': {
      const b = input.slice();
      const v = rng.pick(INTERESTING_U8);
      if (n) b[at] = v;
      return { bytes: b, what: `byte @${at}=0x${v.toString(16)}` };
    }
    case 'truncate':
      return { bytes: input.slice(0, at), what: `truncate @${at}` };
    case 'insert': {
      const k = 1 + rng.int(16);
      const ins = new Uint8Array(k).map(() => rng.int(256));
      return { bytes: concat(input.subarray(0, at), ins, input.subarray(at)), what: `insert ${k} @${at}` };
    }
    case 'delete': {
      const k = 1 + rng.int(64);
      return { bytes: concat(input.subarray(0, at), input.subarray(Math.min(n, at + k))), what: `delete ${k} @${at}` };
    }
    case 'be32': {
      const b = input.slice();
      const v = rng.pick(INTERESTING_U32);
      if (at + 4 <= n) new DataView(b.buffer).setUint32(at, v);
      return { bytes: b, what: `be32 @${at}=0x${v.toString(16)}` };
    }
    case 'splice': {
      const cut = other.length ? rng.int(other.length) : 0;
      return { bytes: concat(input.subarray(0, at), other.subarray(cut)), what: `splice @${at} + other@${cut}` };
    }
    case 'duplicate': {
      const from = n ? rng.int(n) : 0;
      const k = 1 + rng.int(256);
      return {
        bytes: concat(input.subarray(0, at), input.subarray(from, from + k), input.subarray(at)),
        what: `duplicate ${k} from ${from} @${at}`,
      };
    }
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
