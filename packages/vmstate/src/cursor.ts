import { TruncatedError, VmstateError } from './errors.js';

const latin1 = new TextDecoder('latin1');
const utf8 = new TextDecoder('utf-8');
const utf8Encoder = new TextEncoder();

/**
 * A bounds-checked reader over one contiguous byte array. Method names carry the byte order
 * (`u32be`, `u64le`); every read checks the remaining length first and throws a
 * {@link TruncatedError} naming the absolute offset (`base + pos`) and what was being read.
 */
export class ByteReader {
  readonly bytes: Uint8Array;
  /** Absolute offset of `bytes[0]` in the whole input (for error messages). */
  readonly base: number;
  private readonly view: DataView;
  private pos: number;
  private readonly end: number;

  constructor(bytes: Uint8Array, base = 0, start = 0, end = bytes.length) {
    if (start < 0 || end > bytes.length || start > end) {
      throw new VmstateError('E_RANGE', `reader window [${start}, ${end}) outside buffer of ${bytes.length} bytes`);
    }
    this.bytes = bytes;
    this.base = base;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = start;
    this.end = end;
  }

  /** Absolute offset of the next byte to read. */
  get offset(): number {
    return this.base + this.pos;
  }

  /** Position relative to `bytes`. */
  get position(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  get atEnd(): boolean {
    return this.pos >= this.end;
  }

  /** Throws {@link TruncatedError} unless `n` more bytes are available. */
  need(n: number, what: string): void {
    if (n < 0 || !Number.isSafeInteger(n)) {
      throw new VmstateError('E_RANGE', `invalid length ${n} reading ${what} at byte offset ${this.offset}`, {
        offset: this.offset,
        what,
      });
    }
    if (this.end - this.pos < n) throw new TruncatedError(what, this.offset, n, this.end - this.pos);
  }

  u8(what = 'u8'): number {
    this.need(1, what);
    return this.bytes[this.pos++] as number;
  }

  i8(what = 'i8'): number {
    this.need(1, what);
    return this.view.getInt8(this.pos++);
  }

  u16be(what = 'u16be'): number {
    this.need(2, what);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  i16be(what = 'i16be'): number {
    this.need(2, what);
    const v = this.view.getInt16(this.pos);
    this.pos += 2;
    return v;
  }

  u32be(what = 'u32be'): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  i32be(what = 'i32be'): number {
    this.need(4, what);
    const v = this.view.getInt32(this.pos);
    this.pos += 4;
    return v;
  }

  u64be(what = 'u64be'): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos);
    this.pos += 8;
    return v;
  }

  i64be(what = 'i64be'): bigint {
    this.need(8, what);
    const v = this.view.getBigInt64(this.pos);
    this.pos += 8;
    return v;
  }

  /**
   * A big-endian 64-bit value as a JS number; throws E_RANGE when it exceeds 2^53 - 1.
   * Used for lengths and offsets that must be checked before use anyway.
   */
  u64beNumber(what = 'u64be'): number {
    this.need(8, what);
    const hi = this.view.getUint32(this.pos);
    const lo = this.view.getUint32(this.pos + 4);
    if (hi > 0x1fffff) {
      throw new VmstateError(
        'E_RANGE',
        `${what} at byte offset ${this.offset} is 0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')}, beyond 2^53`,
        { offset: this.offset, what },
      );
    }
    this.pos += 8;
    return hi * 0x1_0000_0000 + lo;
  }

  u16le(what = 'u16le'): number {
    this.need(2, what);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  u32le(what = 'u32le'): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  u64le(what = 'u64le'): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** `n` bytes as a subarray (no copy). */
  bytesView(n: number, what = 'bytes'): Uint8Array {
    this.need(n, what);
    const v = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** `n` bytes copied into a fresh array. */
  bytesCopy(n: number, what = 'bytes'): Uint8Array {
    return this.bytesView(n, what).slice();
  }

  skip(n: number, what = 'bytes'): void {
    this.need(n, what);
    this.pos += n;
  }

  /** Peek byte `ahead` positions forward without consuming; undefined past the end. */
  peekU8(ahead = 0): number | undefined {
    const p = this.pos + ahead;
    return p < this.end ? this.bytes[p] : undefined;
  }

  /** QEMU "idstr": u8 length then that many bytes, no terminator. Decoded as Latin-1 (byte-exact). */
  idstr(what = 'idstr'): string {
    const len = this.u8(`${what} length`);
    return latin1.decode(this.bytesView(len, what));
  }

  /** A length-prefixed UTF-8 string (be32 length). */
  stringBe32(what = 'string', max = 1 << 20): string {
    const at = this.offset;
    const len = this.u32be(`${what} length`);
    if (len > max) {
      throw new VmstateError('E_RANGE', `${what} length ${len} at byte offset ${at} exceeds limit ${max}`, {
        offset: at,
        what,
      });
    }
    return utf8.decode(this.bytesView(len, what));
  }

  /** A sub-reader over the next `n` bytes (consumed from this one). */
  sub(n: number, what = 'sub-range'): ByteReader {
    this.need(n, what);
    const r = new ByteReader(this.bytes, this.base, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }
}

/**
 * A growable big-endian writer. `finish()` returns the written bytes.
 */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(initialCapacity = 256) {
    this.buf = new Uint8Array(Math.max(16, initialCapacity));
    this.view = new DataView(this.buf.buffer);
  }

  get length(): number {
    return this.pos;
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.pos + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): this {
    checkUint(v, 0xff, 'u8');
    this.reserve(1);
    this.buf[this.pos++] = v;
    return this;
  }

  i8(v: number): this {
    checkInt(v, -0x80, 0x7f, 'i8');
    this.reserve(1);
    this.view.setInt8(this.pos++, v);
    return this;
  }

  u16be(v: number): this {
    checkUint(v, 0xffff, 'u16');
    this.reserve(2);
    this.view.setUint16(this.pos, v);
    this.pos += 2;
    return this;
  }

  i16be(v: number): this {
    checkInt(v, -0x8000, 0x7fff, 'i16');
    this.reserve(2);
    this.view.setInt16(this.pos, v);
    this.pos += 2;
    return this;
  }

  u32be(v: number): this {
    checkUint(v, 0xffff_ffff, 'u32');
    this.reserve(4);
    this.view.setUint32(this.pos, v);
    this.pos += 4;
    return this;
  }

  i32be(v: number): this {
    checkInt(v, -0x8000_0000, 0x7fff_ffff, 'i32');
    this.reserve(4);
    this.view.setInt32(this.pos, v);
    this.pos += 4;
    return this;
  }

  u64be(v: bigint | number): this {
    const b = typeof v === 'number' ? toBigUint(v) : v;
    if (b < 0n || b > 0xffff_ffff_ffff_ffffn) throw new VmstateError('E_BAD_VALUE', `u64 value ${b} out of range`);
    this.reserve(8);
    this.view.setBigUint64(this.pos, b);
    this.pos += 8;
    return this;
  }

  i64be(v: bigint | number): this {
    const b = typeof v === 'number' ? BigInt(v) : v;
    if (b < -0x8000_0000_0000_0000n || b > 0x7fff_ffff_ffff_ffffn) {
      throw new VmstateError('E_BAD_VALUE', `i64 value ${b} out of range`);
    }
    this.reserve(8);
    this.view.setBigInt64(this.pos, b);
    this.pos += 8;
    return this;
  }

  u32le(v: number): this {
    checkUint(v, 0xffff_ffff, 'u32');
    this.reserve(4);
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
    return this;
  }

  u64le(v: bigint): this {
    this.reserve(8);
    this.view.setBigUint64(this.pos, v, true);
    this.pos += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.reserve(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  zeros(n: number): this {
    this.reserve(n);
    this.buf.fill(0, this.pos, this.pos + n);
    this.pos += n;
    return this;
  }

  /** QEMU idstr: u8 length + bytes (Latin-1, at most 255 bytes). */
  idstr(s: string): this {
    const b = latin1Bytes(s);
    if (b.length > 255) throw new VmstateError('E_BAD_VALUE', `idstr "${s.slice(0, 40)}…" longer than 255 bytes`);
    return this.u8(b.length).bytes(b);
  }

  /** be32 length + UTF-8 bytes. */
  stringBe32(s: string): this {
    const b = utf8Encoder.encode(s);
    return this.u32be(b.length).bytes(b);
  }

  /** The bytes written so far (a copy-free view until the next write). */
  written(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  /** The bytes written, as an exactly sized copy. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/** Latin-1 bytes of a string whose code points are all < 256 (QEMU idstrs are raw bytes). */
export function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new VmstateError('E_BAD_VALUE', `character U+${c.toString(16)} in "${s}" is not a byte`);
    out[i] = c;
  }
  return out;
}

export function latin1String(b: Uint8Array): string {
  return latin1.decode(b);
}

function checkUint(v: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max)
    throw new VmstateError('E_BAD_VALUE', `${what} value ${v} out of range`);
}

function checkInt(v: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < min || v > max)
    throw new VmstateError('E_BAD_VALUE', `${what} value ${v} out of range`);
}

function toBigUint(v: number): bigint {
  if (!Number.isSafeInteger(v) || v < 0)
    throw new VmstateError('E_BAD_VALUE', `u64 value ${v} is not a safe non-negative integer`);
  return BigInt(v);
}
