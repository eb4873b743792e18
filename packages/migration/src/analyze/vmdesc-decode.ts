import {
  type ByteReader,
  latin1String,
  type VmdescDevice,
  type VmdescField,
  type VmdescVmsd,
} from '@e2k-migrate/vmstate';
import { MigrationStreamError } from '../errors.js';
import { QEMU_VM_SUBSECTION } from '../wire/constants.js';

/**
 * A decoded device value in the shape analyze-migration.py prints (`-d state`): integers as
 * zero-padded hex strings (signed negatives with ` (-n)`), bools, raw bytes as space-separated
 * hex, arrays, structs and subsections as ordered maps.
 */
export type StateValue = string | boolean | StateValue[] | StateMap;
export type StateMap = Map<string, StateValue>;

/** How each VMStateInfo type is shown, as in the script's reader table; anything else is raw bytes. */
const SIGNED = new Set([
  'int8',
  'int16',
  'int32',
  'int32 equal',
  'int32 le',
  'int64',
  'int64 equal',
  'uint8 equal',
  'uint16 equal',
]);
const UNSIGNED = new Set(['uint8', 'uint16', 'uint32', 'uint32 equal', 'uint64']);

const MAX_DEPTH = 32;
const MAX_ARRAY = 1 << 20;
/** Bound on decoded values per device, so a hostile vmdesc cannot make the decode run forever. */
const MAX_VALUES = 1 << 20;
let valuesLeft = MAX_VALUES;

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Space-separated lower-case hex of raw bytes. */
export function hexBytes(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += i ? ` ${HEX[b[i] as number]}` : HEX[b[i] as number];
  return s;
}

/**
 * Decodes one device section body with its vmdesc entry: fields in order (compressed arrays
 * unfolded, `index` entries collected into lists), then subsections as the stream presents them
 * (QEMU's look-ahead rule, parent = the VMSD being decoded). Consumes exactly the body.
 */
export function decodeDeviceBody(r: ByteReader, device: VmdescDevice): StateMap {
  const out: StateMap = new Map();
  valuesLeft = MAX_VALUES;
  decodeFields(r, device.fields, out, 0, device.name);
  decodeSubsections(r, device.vmsd_name, device.subsections, out, 0, device.name);
  return out;
}

function decodeStruct(r: ByteReader, vmsd: VmdescVmsd, depth: number, path: string): StateMap {
  if (depth > MAX_DEPTH) throw badDesc(`structs nested deeper than ${MAX_DEPTH} at ${path}`, r.offset);
  if (vmsd === null || typeof vmsd !== 'object' || !Array.isArray(vmsd.fields))
    throw badDesc(`struct ${path} has no fields`, r.offset);
  const out: StateMap = new Map();
  decodeFields(r, vmsd.fields, out, depth, path);
  decodeSubsections(r, vmsd.vmsd_name, vmsd.subsections, out, depth, path);
  return out;
}

function decodeFields(r: ByteReader, fields: VmdescField[], out: StateMap, depth: number, path: string): void {
  for (const f of fields) {
    if (f === null || typeof f !== 'object' || typeof f.name !== 'string' || typeof f.type !== 'string') {
      throw badDesc(`malformed field in ${path}`, r.offset);
    }
    const n = f.array_len;
    if (n !== undefined) {
      if (!Number.isInteger(n) || n < 0 || n > MAX_ARRAY)
        throw badDesc(`${path}.${f.name}: bad array_len ${n}`, r.offset);
      for (let i = 0; i < n; i++) pushIndexed(out, f.name, decodeField(r, f, depth, path));
    } else if (f.index !== undefined) {
      pushIndexed(out, f.name, decodeField(r, f, depth, path));
    } else {
      out.set(f.name, decodeField(r, f, depth, path));
    }
  }
}

function pushIndexed(out: StateMap, name: string, v: StateValue): void {
  const a = out.get(name);
  if (Array.isArray(a)) a.push(v);
  else out.set(name, [v]);
}

function decodeField(r: ByteReader, f: VmdescField, depth: number, path: string): StateValue {
  const where = `${path}.${f.name}`;
  if (--valuesLeft < 0) throw badDesc(`more than ${MAX_VALUES} values in one device`, r.offset);
  if (f.type === 'struct' && f.struct !== undefined) return decodeStruct(r, f.struct, depth + 1, where);
  if (f.type === 'capability') return latin1String(r.bytesView(r.u8(where), where));
  const size = f.size;
  if (!Number.isInteger(size) || size < 0 || size > 0x7fff_ffff)
    throw badDesc(`${where}: bad size ${String(size)}`, r.offset);
  const b = r.bytesView(size, where);
  if (f.type === 'bool') return size > 0 && b[0] !== 0;
  const signed = SIGNED.has(f.type);
  if (signed || UNSIGNED.has(f.type)) {
    let hex = '0x';
    for (let i = 0; i < size; i++) hex += HEX[b[i] as number];
    if (signed && size > 0 && (b[0] as number) & 0x80) {
      const u = BigInt(hex);
      return `${hex} (${(u - (1n << BigInt(8 * size))).toString()})`;
    }
    return hex;
  }
  return hexBytes(b);
}

function decodeSubsections(
  r: ByteReader,
  parent: string | undefined,
  subs: VmdescVmsd[] | undefined,
  out: StateMap,
  depth: number,
  path: string,
): void {
  if (parent === undefined || typeof parent !== 'string') return;
  for (;;) {
    if (r.peekU8(0) !== QEMU_VM_SUBSECTION) return;
    const len = r.peekU8(1);
    if (len === undefined) {
      r.need(2, 'subsection name length');
      return;
    }
    if (len < parent.length + 1) return;
    r.need(2 + len, 'subsection name');
    const start = r.position + 2;
    const name = latin1String(r.bytes.subarray(start, start + len));
    if (!name.startsWith(parent)) return;
    const desc = Array.isArray(subs) ? subs.find((s) => s?.vmsd_name === name) : undefined;
    const at = r.offset;
    if (desc === undefined) {
      throw new MigrationStreamError(
        'E_DEVICE_DECODE',
        `subsection "${name}" of ${path} at byte offset ${at} is not in the vmdesc`,
        { offset: at, record: name },
      );
    }
    r.skip(2 + len);
    r.u32be('subsection version');
    out.set(name, decodeStruct(r, desc, depth + 1, name));
  }
}

function badDesc(why: string, offset: number): MigrationStreamError {
  return new MigrationStreamError('E_BAD_VMDESC', `vmdesc does not describe the stream: ${why}`, {
    offset,
    record: 'vmdesc',
  });
}
