import { type ByteReader, ByteWriter, latin1Bytes } from './cursor.js';
import { TruncatedError, VmstateError } from './errors.js';
import {
  type AnyState,
  type CountRef,
  type ElementSpec,
  type FieldSpec,
  fieldPresent,
  getPath,
  INT_SIZES,
  type IntType,
  setPath,
  type Vmsd,
} from './schema.js';

/** QEMU_VM_SUBSECTION: the marker byte before each subsection inside a VMState body. */
export const QEMU_VM_SUBSECTION = 0x05;

export interface DecodeOptions {
  /**
   * More input may follow the reader's window (incremental streams). When set, a subsection
   * probe that needs bytes past the window throws {@link TruncatedError} instead of concluding
   * "no more subsections", so the caller can fetch more input and decode again.
   */
  more?: boolean;
}

/**
 * Encodes `state` as the body of `d` at its current version: fields in order (those whose
 * version gate / exists test passes), then each subsection whose `needed` is true.
 * Runs `preSave` first.
 */
export function encodeVmsd<S>(d: Vmsd<S>, state: S, w: ByteWriter = new ByteWriter()): ByteWriter {
  d.preSave?.(state);
  encodeFields(d, state, w);
  for (const sub of d.subsections) {
    if (sub.needed && !sub.needed(state)) continue;
    w.u8(QEMU_VM_SUBSECTION).idstr(sub.name).u32be(sub.version);
    encodeVmsd(sub, state, w);
  }
  return w;
}

function encodeFields(d: Vmsd, state: AnyState, w: ByteWriter): void {
  for (const f of d.fields) {
    if (!fieldPresent(f, state, d.version)) continue;
    const where = `${d.name}.${f.name}`;
    switch (f.kind) {
      case 'unused':
        w.zeros(f.size);
        break;
      case 'buffer': {
        const size = resolveCount(f.size, state, d, f.name);
        const v = getPath(state, f.path);
        if (!(v instanceof Uint8Array) || v.length < size) {
          throw badValue(where, `a Uint8Array of at least ${size} bytes`, v, d.name);
        }
        w.bytes(v.length === size ? v : v.subarray(0, size));
        break;
      }
      case 'array': {
        const count = resolveCount(f.count, state, d, f.name);
        const v = getPath(state, f.path);
        if (!isIndexable(v) || v.length < count)
          throw badValue(where, `an array of at least ${count} elements`, v, d.name);
        for (let i = 0; i < count; i++) encodeElement(f.of, v[i], w, `${where}[${i}]`, d.name);
        break;
      }
      default:
        encodeElement(f, getPath(state, f.path), w, where, d.name);
    }
  }
}

function encodeElement(e: ElementSpec, v: unknown, w: ByteWriter, where: string, vmsdName: string): void {
  switch (e.kind) {
    case 'int':
      encodeInt(e.type, v, w, where, vmsdName);
      return;
    case 'bool':
      if (typeof v !== 'boolean') throw badValue(where, 'a boolean', v, vmsdName);
      w.u8(v ? 1 : 0);
      return;
    case 'timer':
      encodeInt('int64', v, w, where, vmsdName);
      return;
    case 'struct':
      if (v === null || typeof v !== 'object')
        throw badValue(where, `an object for struct ${e.vmsd.name}`, v, vmsdName);
      encodeVmsd(e.vmsd, v, w);
      return;
  }
}

const INT_RANGES: Record<Exclude<IntType, 'int64' | 'uint64'>, [number, number]> = {
  int8: [-0x80, 0x7f],
  uint8: [0, 0xff],
  int16: [-0x8000, 0x7fff],
  uint16: [0, 0xffff],
  int32: [-0x8000_0000, 0x7fff_ffff],
  uint32: [0, 0xffff_ffff],
};

function encodeInt(type: IntType, v: unknown, w: ByteWriter, where: string, vmsdName: string): void {
  if (type === 'int64' || type === 'uint64') {
    const b = typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : v;
    if (typeof b !== 'bigint') throw badValue(where, `a bigint (${type})`, v, vmsdName);
    const ok = type === 'uint64' ? b >= 0n && b <= 0xffff_ffff_ffff_ffffn : b >= -(1n << 63n) && b < 1n << 63n;
    if (!ok) throw badValue(where, `a ${type} in range`, v, vmsdName);
    if (type === 'uint64') w.u64be(b);
    else w.i64be(b);
    return;
  }
  const [min, max] = INT_RANGES[type];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw badValue(where, `an integer in [${min}, ${max}] (${type})`, v, vmsdName);
  }
  switch (type) {
    case 'int8':
      w.i8(v);
      return;
    case 'uint8':
      w.u8(v);
      return;
    case 'int16':
      w.i16be(v);
      return;
    case 'uint16':
      w.u16be(v);
      return;
    case 'int32':
      w.i32be(v);
      return;
    case 'uint32':
      w.u32be(v);
      return;
  }
}

/**
 * Decodes a body of `d` written at `version` into `into` (which holds the local/default values:
 * absent fields and subsections keep them, and `equal`/`le` checks compare against them).
 * Checks `version` against [minimumVersion, version]; runs `postLoad` after the subsections.
 */
export function decodeVmsd<S>(d: Vmsd<S>, r: ByteReader, version: number, into: S, opts: DecodeOptions = {}): S {
  if (version > d.version || version < d.minimumVersion) {
    throw new VmstateError(
      'E_VERSION',
      `${d.name}: stream version ${version} outside supported [${d.minimumVersion}, ${d.version}] at byte offset ${r.offset}`,
      { offset: r.offset, vmsd: d.name, what: 'version' },
    );
  }
  decodeBody(d, r, version, into as AnyState, opts);
  return into;
}

function decodeBody(d: Vmsd, r: ByteReader, version: number, state: AnyState, opts: DecodeOptions): void {
  try {
    decodeFields(d, r, version, state, opts);
  } catch (err) {
    throw withContext(err, d.name);
  }
  decodeSubsections(d, r, state, opts);
  d.postLoad?.(state, version);
}

function decodeFields(d: Vmsd, r: ByteReader, version: number, state: AnyState, opts: DecodeOptions): void {
  for (const f of d.fields) {
    if (!fieldPresent(f, state, version)) continue;
    const where = `${d.name}.${f.name}`;
    switch (f.kind) {
      case 'unused':
        r.skip(f.size, where);
        break;
      case 'buffer': {
        const size = resolveCount(f.size, state, d, f.name);
        setPath(state, f.path, r.bytesCopy(size, where));
        break;
      }
      case 'array': {
        const count = resolveCount(f.count, state, d, f.name);
        const min = minElementSize(f.of);
        if (min > 0) r.need(count * min, `${where} (${count} elements)`);
        const local = getPath(state, f.path);
        const out: unknown[] = new Array(count);
        for (let i = 0; i < count; i++) {
          const prev = isIndexable(local) ? local[i] : undefined;
          out[i] = decodeElement(f.of, r, prev, `${where}[${i}]`, d.name, opts);
        }
        setPath(state, f.path, out);
        break;
      }
      default:
        setPath(state, f.path, decodeElement(f, r, getPath(state, f.path), where, d.name, opts));
    }
  }
}

function decodeElement(
  e: ElementSpec,
  r: ByteReader,
  local: unknown,
  where: string,
  vmsdName: string,
  opts: DecodeOptions,
): unknown {
  switch (e.kind) {
    case 'int': {
      const at = r.offset;
      const v = decodeInt(e.type, r, where);
      if (e.check && local !== undefined) checkLoaded(e.check, v, local, where, vmsdName, at);
      return v;
    }
    case 'bool':
      return r.u8(where) !== 0;
    case 'timer':
      return r.i64be(where);
    case 'struct': {
      const into = local !== null && typeof local === 'object' ? local : {};
      decodeBody(e.vmsd, r, e.vmsd.version, into, opts);
      return into;
    }
  }
}

function decodeInt(type: IntType, r: ByteReader, where: string): number | bigint {
  switch (type) {
    case 'int8':
      return r.i8(where);
    case 'uint8':
      return r.u8(where);
    case 'int16':
      return r.i16be(where);
    case 'uint16':
      return r.u16be(where);
    case 'int32':
      return r.i32be(where);
    case 'uint32':
      return r.u32be(where);
    case 'int64':
      return r.i64be(where);
    case 'uint64':
      return r.u64be(where);
  }
}

function checkLoaded(
  check: 'equal' | 'le',
  v: number | bigint,
  local: unknown,
  where: string,
  vmsdName: string,
  at: number,
): void {
  if (typeof local !== 'number' && typeof local !== 'bigint') return;
  if (check === 'equal' && v !== local) {
    throw new VmstateError(
      'E_EQUAL_MISMATCH',
      `${where} at byte offset ${at}: stream value ${v} must equal the local value ${local}`,
      { offset: at, what: where, vmsd: vmsdName },
    );
  }
  if (check === 'le' && (v < 0 || v > local)) {
    throw new VmstateError('E_LE_RANGE', `${where} at byte offset ${at}: stream value ${v} outside [0, ${local}]`, {
      offset: at,
      what: where,
      vmsd: vmsdName,
    });
  }
}

/**
 * QEMU's subsection loop: while the next byte is QEMU_VM_SUBSECTION and the name that follows
 * starts with the parent's name, load that subsection; a matching prefix with an unknown name is
 * an error; anything else ends the list without consuming.
 */
function decodeSubsections(d: Vmsd, r: ByteReader, state: AnyState, opts: DecodeOptions): void {
  const prefix = latin1Bytes(d.name);
  for (;;) {
    if (!probe(r, 1, opts)) return;
    if (r.peekU8(0) !== QEMU_VM_SUBSECTION) return;
    if (!probe(r, 2, opts)) return;
    const len = r.peekU8(1) as number;
    if (len < prefix.length + 1) return;
    if (!probe(r, 2 + len, opts)) return;
    for (let i = 0; i < prefix.length; i++) if (r.peekU8(2 + i) !== prefix[i]) return;
    const at = r.offset;
    r.u8('subsection marker');
    const name = r.idstr('subsection name');
    const sub = d.subsections.find((s) => s.name === name);
    if (!sub) {
      throw new VmstateError(
        'E_UNKNOWN_SUBSECTION',
        `${d.name}: unknown subsection "${name}" at byte offset ${at} (known: ${d.subsections.map((s) => s.name).join(', ') || 'none'})`,
        { offset: at, vmsd: d.name, what: name },
      );
    }
    // QEMU 7.2 keeps only the low byte of the subsection version (stored in an 8-bit variable).
    const version = r.u32be(`${name} version`) & 0xff;
    decodeVmsd(sub, r, version, state, opts);
  }
}

/** True when `n` bytes are available; with `more`, a shortfall is a truncation (fetch more, retry). */
function probe(r: ByteReader, n: number, opts: DecodeOptions): boolean {
  if (r.remaining >= n) return true;
  if (opts.more) throw new TruncatedError('subsection probe', r.offset + r.remaining, n, r.remaining);
  return false;
}

function resolveCount(c: number | CountRef, state: AnyState, d: Vmsd, fieldName: string): number {
  if (typeof c === 'number') return c;
  const raw = getPath(state, c.field.split('.'));
  const n = typeof raw === 'bigint' ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new VmstateError('E_BAD_VALUE', `${d.name}.${fieldName}: count field ${c.field} holds ${String(raw)}`, {
      vmsd: d.name,
      what: fieldName,
    });
  }
  return n * (c.multiply ?? 1);
}

/** Smallest number of bytes one element can take (0 for structs that may be empty). */
export function minElementSize(e: ElementSpec): number {
  switch (e.kind) {
    case 'int':
      return INT_SIZES[e.type];
    case 'bool':
      return 1;
    case 'timer':
      return 8;
    case 'struct':
      return 0;
  }
}

function isIndexable(v: unknown): v is ArrayLike<unknown> {
  return Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView));
}

function badValue(where: string, expected: string, got: unknown, vmsdName: string): VmstateError {
  const shown =
    typeof got === 'bigint' ? `${got}n` : got instanceof Uint8Array ? `Uint8Array(${got.length})` : String(got);
  return new VmstateError('E_BAD_VALUE', `${where}: expected ${expected}, got ${shown}`, {
    what: where,
    vmsd: vmsdName,
  });
}

function withContext(err: unknown, vmsdName: string): unknown {
  if (err instanceof VmstateError && err.vmsd === undefined) {
    Object.defineProperty(err, 'vmsd', { value: vmsdName });
  }
  return err;
}

export type { FieldSpec };
