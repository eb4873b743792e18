import { encodeVmsd } from './codec.js';
import { ByteWriter } from './cursor.js';
import { VmstateError } from './errors.js';
import {
  type AnyState,
  type CountRef,
  type ElementSpec,
  type FieldSpec,
  fieldPresent,
  getPath,
  type Vmsd,
} from './schema.js';
import type { Vmdesc, VmdescDevice, VmdescField, VmdescVmsd } from './vmdesc-types.js';

/**
 * Builds the vmdesc entry QEMU writes for one FULL section of `d` holding `state`: the fields
 * actually written (with `array_len` for compressible arrays, `index` per element otherwise,
 * `[k]` suffixes on duplicated names, byte sizes measured by encoding), then the subsections
 * whose `needed` is true.
 */
export function describeDevice<S>(name: string, instanceId: number, d: Vmsd<S>, state: S): VmdescDevice {
  const body = describeVmsd(d, state);
  return { name, instance_id: instanceId, ...body };
}

/** The `{vmsd_name, version, fields, subsections?}` description of `d` at its current version. */
export function describeVmsd<S>(d: Vmsd<S>, state: S): VmdescVmsd {
  const names = duplicateNames(d.fields);
  const fields: VmdescField[] = [];
  for (const f of d.fields) {
    if (!fieldPresent(f, state, d.version)) continue;
    const shownName = names.has(f.name) ? `${f.name}[${suffixIndex(d.fields, f)}]` : f.name;
    if (f.kind === 'array') {
      const count = countOf(f.count, state);
      const values = getPath(state, f.path) as ArrayLike<unknown>;
      const compress = canCompress(f);
      for (let i = 0; i < count; i++) {
        const entry: VmdescField = { name: shownName } as VmdescField;
        if (count > 1) {
          if (compress) entry.array_len = count;
          else entry.index = i;
        }
        fillElement(entry, f.of, values[i]);
        fields.push(entry);
        if (compress) break;
      }
      continue;
    }
    if ((f.kind === 'buffer' || f.kind === 'unused') && sizeOf(f, state) === 0) continue;
    const entry: VmdescField = { name: shownName } as VmdescField;
    switch (f.kind) {
      case 'buffer':
        entry.type = 'buffer';
        entry.size = sizeOf(f, state);
        break;
      case 'unused':
        entry.type = 'unused_buffer';
        entry.size = f.size;
        break;
      default:
        fillElement(entry, f, getPath(state, f.path));
    }
    fields.push(entry);
  }
  const out: VmdescVmsd = { vmsd_name: d.name, version: d.version, fields };
  const subs = d.subsections.filter((s) => !s.needed || s.needed(state)).map((s) => describeVmsd(s, state));
  if (subs.length) out.subsections = subs;
  return out;
}

function fillElement(entry: VmdescField, e: ElementSpec, value: unknown): void {
  switch (e.kind) {
    case 'int':
      entry.type =
        e.check === 'equal'
          ? e.type === 'uint64'
            ? 'int64 equal'
            : `${e.type} equal`
          : e.check === 'le'
            ? `${e.type} le`
            : e.type;
      entry.size = sizeOfInt(e.type);
      return;
    case 'bool':
      entry.type = 'bool';
      entry.size = 1;
      return;
    case 'timer':
      entry.type = 'timer';
      entry.size = 8;
      return;
    case 'struct': {
      entry.type = 'struct';
      entry.struct = describeVmsd(e.vmsd, value);
      entry.size = encodeVmsd(e.vmsd, value, new ByteWriter(64)).length;
      return;
    }
  }
}

function sizeOfInt(t: string): number {
  return t.endsWith('64') ? 8 : t.endsWith('32') ? 4 : t.endsWith('16') ? 2 : 1;
}

/** QEMU: an array is compressible unless it has a field_exists test or is a struct whose VMSD
 * (recursively) has such fields or has subsections. */
function canCompress(f: FieldSpec): boolean {
  if (f.exists) return false;
  if (f.kind !== 'array') return true;
  return f.of.kind !== 'struct' || structCompressible(f.of.vmsd);
}

function structCompressible(d: Vmsd): boolean {
  if (d.subsections.length) return false;
  return d.fields.every((f) => !f.exists && (f.kind !== 'struct' || structCompressible(f.vmsd)) && canCompress(f));
}

function duplicateNames(fields: readonly FieldSpec[]): Set<string> {
  const counts = new Map<string, number>();
  for (const f of fields) counts.set(f.name, (counts.get(f.name) ?? 0) + 1);
  return new Set([...counts].filter(([, n]) => n > 1).map(([k]) => k));
}

function suffixIndex(fields: readonly FieldSpec[], f: FieldSpec): number {
  let k = 0;
  for (const g of fields) {
    if (g === f) return k;
    if (g.name === f.name) k++;
  }
  return k;
}

function countOf(c: number | CountRef, state: AnyState): number {
  if (typeof c === 'number') return c;
  const raw = getPath(state, c.field.split('.'));
  return Number(raw) * (c.multiply ?? 1);
}

function sizeOf(f: FieldSpec & { kind: 'buffer' | 'unused' }, state: AnyState): number {
  return typeof f.size === 'number' ? f.size : countOf(f.size, state);
}

/**
 * Serializes a vmdesc exactly as QEMU 7.2's JSON writer does: compact, `", "` and `": "`
 * separators, keys in insertion order, `\uXXXX` (upper-case hex) for control characters and
 * everything ≥ 0x7F, `/` unescaped.
 */
export function formatVmdesc(v: Vmdesc | VmdescDevice | VmdescVmsd): string {
  return formatValue(v);
}

function formatValue(v: unknown): string {
  if (typeof v === 'string') return quote(v);
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new VmstateError('E_BAD_VMDESC', `vmdesc number ${v} is not an integer`);
    return String(v);
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `[${v.map(formatValue).join(', ')}]`;
  if (typeof v === 'object') {
    const parts: string[] = [];
    for (const [k, x] of Object.entries(v)) if (x !== undefined) parts.push(`${quote(k)}: ${formatValue(x)}`);
    return `{${parts.join(', ')}}`;
  }
  throw new VmstateError('E_BAD_VMDESC', `cannot format ${typeof v} in a vmdesc`);
}

const SHORT_ESCAPES: Record<number, string> = {
  34: '\\"',
  92: '\\\\',
  8: '\\b',
  12: '\\f',
  10: '\\n',
  13: '\\r',
  9: '\\t',
};

function quote(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const short = SHORT_ESCAPES[c];
    if (short) out += short;
    else if (c < 0x20 || c >= 0x7f) out += `\\u${c.toString(16).toUpperCase().padStart(4, '0')}`;
    else out += s[i];
  }
  return `${out}"`;
}

/** Parses and shape-checks a vmdesc JSON document (typed E_BAD_VMDESC on anything unexpected). */
export function parseVmdesc(json: string | Uint8Array): Vmdesc {
  const text = typeof json === 'string' ? json : new TextDecoder('utf-8').decode(json);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new VmstateError('E_BAD_VMDESC', `vmdesc is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const o = v as Partial<Vmdesc>;
  if (!o || typeof o !== 'object' || typeof o.page_size !== 'number' || !Array.isArray(o.devices)) {
    throw new VmstateError('E_BAD_VMDESC', 'vmdesc must be an object with numeric "page_size" and a "devices" array');
  }
  for (const [i, dev] of o.devices.entries()) checkDevice(dev, `devices[${i}]`);
  return o as Vmdesc;
}

function checkDevice(d: unknown, where: string): void {
  const o = d as Partial<VmdescDevice>;
  if (!o || typeof o !== 'object' || typeof o.name !== 'string' || typeof o.instance_id !== 'number') {
    throw new VmstateError('E_BAD_VMDESC', `${where}: a device needs string "name" and numeric "instance_id"`);
  }
  checkFields(o.fields, `${where} (${o.name})`);
  for (const [i, s] of (o.subsections ?? []).entries()) checkVmsd(s, `${where}.subsections[${i}]`);
}

function checkVmsd(d: unknown, where: string): void {
  const o = d as Partial<VmdescVmsd>;
  if (!o || typeof o !== 'object' || typeof o.vmsd_name !== 'string') {
    throw new VmstateError('E_BAD_VMDESC', `${where}: a nested description needs "vmsd_name"`);
  }
  checkFields(o.fields, `${where} (${o.vmsd_name})`);
  for (const [i, s] of (o.subsections ?? []).entries()) checkVmsd(s, `${where}.subsections[${i}]`);
}

function checkFields(fields: unknown, where: string): void {
  if (!Array.isArray(fields)) throw new VmstateError('E_BAD_VMDESC', `${where}: "fields" must be an array`);
  fields.forEach((f: Partial<VmdescField>, i) => {
    const at = `${where}.fields[${i}]`;
    if (!f || typeof f.name !== 'string' || typeof f.type !== 'string' || typeof f.size !== 'number' || f.size < 0) {
      throw new VmstateError('E_BAD_VMDESC', `${at}: a field needs "name", "type" and a non-negative "size"`);
    }
    if (f.array_len !== undefined && (!Number.isInteger(f.array_len) || f.array_len < 0)) {
      throw new VmstateError('E_BAD_VMDESC', `${at}: bad "array_len"`);
    }
    if (f.struct !== undefined) checkVmsd(f.struct, `${at}.struct`);
    if (f.fields !== undefined) checkFields(f.fields, at);
  });
}
