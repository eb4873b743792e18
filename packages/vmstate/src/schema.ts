import { VmstateError } from './errors.js';

/**
 * The VMState schema DSL: QEMU's `VMStateDescription` as data.
 *
 * A {@link Vmsd} lists fields in wire order, then subsections. State is a plain object; a field
 * name is a dotted path into it (`"env.eip"` reads `state.env.eip`), and the same name is what
 * the vmdesc JSON shows. Values: 8–32-bit ints are numbers, 64-bit ints and timers are bigints,
 * bools are booleans, buffers are Uint8Arrays, arrays are JS arrays, structs are nested objects.
 *
 * ```ts
 * const timer = vmsd({
 *   name: 'timer', version: 2, minimumVersion: 1,
 *   fields: [field.int64('cpu_ticks_offset'), field.unused(8), field.int64('cpu_clock_offset', { version: 2 })],
 * });
 * ```
 */

/** Integer VMStateInfo types, named as QEMU names them in the vmdesc. */
export type IntType = 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64';

export const INT_SIZES: Readonly<Record<IntType, 1 | 2 | 4 | 8>> = {
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  int64: 8,
  uint64: 8,
};

/** Load-time checks QEMU attaches to some integer infos (`uint32 equal`, `int32 le`). */
export type IntCheck = 'equal' | 'le';

// biome-ignore lint/suspicious/noExplicitAny: hooks see the caller's concrete state type
export type AnyState = any;

export interface FieldGate {
  /** The field is on the wire only when the section/subsection version is ≥ this (VMSTATE_*_V). */
  version?: number;
  /** QEMU's `field_exists(opaque, version_id)`; when given, it alone decides presence. */
  exists?: (state: AnyState, version: number) => boolean;
}

/** Element count taken from another field of the same state (VMS_VARRAY_* / VBUFFER). */
export interface CountRef {
  /** Dotted path of the (earlier) field holding the count. */
  field: string;
  /** Multiply the count by this (VMS_MULTIPLY_ELEMENTS / VMS_MULTIPLY). */
  multiply?: number;
}

export type ElementSpec =
  | { kind: 'int'; type: IntType; check?: IntCheck }
  | { kind: 'bool' }
  | { kind: 'timer' }
  | { kind: 'struct'; vmsd: Vmsd };

export type FieldSpec = FieldGate & { name: string; path: readonly string[] } & (
    | { kind: 'int'; type: IntType; check?: IntCheck }
    | { kind: 'bool' }
    | { kind: 'timer' }
    | { kind: 'buffer'; size: number | CountRef }
    | { kind: 'unused'; size: number }
    | { kind: 'array'; of: ElementSpec; count: number | CountRef }
    | { kind: 'struct'; vmsd: Vmsd }
  );

/** A VMStateDescription. Subsections operate on the same state object as their parent. */
export interface Vmsd<S = AnyState> {
  readonly name: string;
  readonly version: number;
  readonly minimumVersion: number;
  readonly fields: readonly FieldSpec[];
  readonly subsections: readonly Vmsd<S>[];
  /** For subsections and top-level devices: send only when true (default: always). */
  readonly needed?: (state: S) => boolean;
  /** Runs before encoding (QEMU pre_save). */
  readonly preSave?: (state: S) => void;
  /** Runs after decoding the fields and subsections (QEMU post_load); throw a typed error to reject. */
  readonly postLoad?: (state: S, version: number) => void;
}

export interface VmsdInit<S> {
  name: string;
  version: number;
  /** Oldest version this loader accepts (default: `version`). */
  minimumVersion?: number;
  fields: FieldSpec[];
  subsections?: Vmsd<S>[];
  needed?: (state: S) => boolean;
  preSave?: (state: S) => void;
  postLoad?: (state: S, version: number) => void;
}

/** Declares a VMSD, validating the schema itself (names, sizes, versions, subsection prefixes). */
export function vmsd<S = AnyState>(init: VmsdInit<S>): Vmsd<S> {
  const d: Vmsd<S> = {
    name: init.name,
    version: init.version,
    minimumVersion: init.minimumVersion ?? init.version,
    fields: init.fields,
    subsections: init.subsections ?? [],
    ...(init.needed ? { needed: init.needed } : {}),
    ...(init.preSave ? { preSave: init.preSave } : {}),
    ...(init.postLoad ? { postLoad: init.postLoad } : {}),
  };
  validateSchema(d);
  return d;
}

function validateSchema(d: Vmsd): void {
  const bad = (msg: string): never => {
    throw new VmstateError('E_BAD_SCHEMA', `vmsd "${d.name}": ${msg}`, { vmsd: d.name });
  };
  if (!d.name || d.name.length > 255) bad('name must be 1–255 bytes');
  if (!Number.isInteger(d.version) || d.version < 0 || d.version > 0xffff_ffff) bad(`bad version ${d.version}`);
  if (!Number.isInteger(d.minimumVersion) || d.minimumVersion < 0 || d.minimumVersion > d.version) {
    bad(`minimumVersion ${d.minimumVersion} must be in [0, ${d.version}]`);
  }
  const seen = new Set<string>();
  for (const f of d.fields) {
    if (f.kind === 'buffer' || f.kind === 'unused') {
      if (typeof f.size === 'number' && (!Number.isInteger(f.size) || f.size < 0)) bad(`field ${f.name}: bad size`);
    }
    if (f.kind === 'array' && typeof f.count === 'number' && (!Number.isInteger(f.count) || f.count < 0)) {
      bad(`field ${f.name}: bad count`);
    }
    for (const ref of [f.kind === 'array' ? f.count : undefined, f.kind === 'buffer' ? f.size : undefined]) {
      if (ref !== undefined && typeof ref !== 'number' && !seen.has(ref.field)) {
        bad(`field ${f.name}: count field "${ref.field}" must be declared earlier`);
      }
    }
    seen.add(f.name);
  }
  for (const s of d.subsections) {
    if (!s.name.startsWith(d.name) || s.name.length < d.name.length + 1) {
      bad(`subsection "${s.name}" must be named "${d.name}/…" (QEMU matches subsections by the parent-name prefix)`);
    }
  }
}

type IntOpts = FieldGate & { check?: IntCheck };

function intField(type: IntType) {
  return (name: string, opts: IntOpts = {}): FieldSpec => ({ name, path: splitPath(name), kind: 'int', type, ...opts });
}

/** Field builders, one per QEMU VMSTATE_* macro family. */
export const field = {
  int8: intField('int8'),
  uint8: intField('uint8'),
  int16: intField('int16'),
  uint16: intField('uint16'),
  int32: intField('int32'),
  uint32: intField('uint32'),
  int64: intField('int64'),
  uint64: intField('uint64'),
  bool: (name: string, opts: FieldGate = {}): FieldSpec => ({ name, path: splitPath(name), kind: 'bool', ...opts }),
  /** QEMUTimer: be64 expiry in ns, -1 when not armed (value: signed bigint). */
  timer: (name: string, opts: FieldGate = {}): FieldSpec => ({ name, path: splitPath(name), kind: 'timer', ...opts }),
  /** Raw bytes; static size, or a byte count read from an earlier field (VBUFFER). */
  buffer: (name: string, size: number | CountRef, opts: FieldGate = {}): FieldSpec => ({
    name,
    path: splitPath(name),
    kind: 'buffer',
    size,
    ...opts,
  }),
  /** VMSTATE_UNUSED: `size` zero bytes, ignored on load. Named "unused" in the vmdesc. */
  unused: (size: number, opts: FieldGate = {}): FieldSpec => ({
    name: 'unused',
    path: [],
    kind: 'unused',
    size,
    ...opts,
  }),
  /** Fixed (count: number) or counted (count from an earlier field) array; no count prefix on the wire. */
  array: (name: string, of: ElementSpec, count: number | CountRef, opts: FieldGate = {}): FieldSpec => ({
    name,
    path: splitPath(name),
    kind: 'array',
    of,
    count,
    ...opts,
  }),
  /** A nested VMSD, encoded with its own current version (not transmitted). */
  struct: (name: string, vmsd: Vmsd, opts: FieldGate = {}): FieldSpec => ({
    name,
    path: splitPath(name),
    kind: 'struct',
    vmsd,
    ...opts,
  }),
} as const;

/** Array element builders. */
export const element = {
  int8: { kind: 'int', type: 'int8' },
  uint8: { kind: 'int', type: 'uint8' },
  int16: { kind: 'int', type: 'int16' },
  uint16: { kind: 'int', type: 'uint16' },
  int32: { kind: 'int', type: 'int32' },
  uint32: { kind: 'int', type: 'uint32' },
  int64: { kind: 'int', type: 'int64' },
  uint64: { kind: 'int', type: 'uint64' },
  bool: { kind: 'bool' },
  timer: { kind: 'timer' },
  struct: (vmsd: Vmsd): ElementSpec => ({ kind: 'struct', vmsd }),
} as const satisfies Record<string, ElementSpec | ((v: Vmsd) => ElementSpec)>;

function splitPath(name: string): readonly string[] {
  const parts = name.split('.');
  if (parts.some((p) => p === '')) {
    throw new VmstateError('E_BAD_SCHEMA', `field name "${name}" has an empty path component`);
  }
  return parts;
}

/** Whether a field is on the wire for this state at this version. */
export function fieldPresent(f: FieldSpec, state: AnyState, version: number): boolean {
  if (f.exists) return f.exists(state, version);
  return f.version === undefined || version >= f.version;
}

/** Reads a dotted path; undefined when an intermediate object is missing. */
export function getPath(state: AnyState, path: readonly string[]): unknown {
  let cur: unknown = state;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** Writes a dotted path, creating intermediate objects. */
export function setPath(state: AnyState, path: readonly string[], value: unknown): void {
  let cur = state as Record<string, unknown>;
  for (let i = 0; i < path.length - 1; i++) {
    const k = path[i] as string;
    let next = cur[k];
    if (next === null || typeof next !== 'object') {
      next = {};
      cur[k] = next;
    }
    cur = next as Record<string, unknown>;
  }
  cur[path[path.length - 1] as string] = value;
}
