import { endianness } from 'node:os';
import { E2kError } from '../errors.js';
import { CPU_LAYOUT, type CpuLayout } from './cpu-layout.js';
import { cloneCpuState, type E2kCpuState, resetCpuState } from './state.js';

if (endianness() !== 'LE') {
  throw new E2kError(
    'E_MACHINE_STATE',
    'the E2K interpreter needs a little-endian host (guest words are read as host u32)',
  );
}

/**
 * One vCPU's architectural state in a SharedArrayBuffer ({@link CPU_LAYOUT}): the worker running
 * the vCPU and the main thread share it without copying. Read or write it as a whole only while
 * the vCPU is stopped (at a bundle boundary).
 */
export class CpuView {
  readonly buffer: SharedArrayBuffer;
  readonly layout: CpuLayout;
  readonly u64: BigUint64Array;
  readonly f64: Float64Array;
  readonly u32: Uint32Array;
  readonly u8: Uint8Array;

  /** Attaches to `buffer`, or allocates a new zeroed one. */
  constructor(buffer?: SharedArrayBuffer) {
    this.layout = CPU_LAYOUT;
    this.buffer = buffer ?? new SharedArrayBuffer(CPU_LAYOUT.byteLength);
    if (this.buffer.byteLength < CPU_LAYOUT.byteLength) {
      throw new E2kError(
        'E_MACHINE_STATE',
        `cpu state buffer has ${this.buffer.byteLength} bytes, the layout needs ${CPU_LAYOUT.byteLength}`,
      );
    }
    this.u64 = new BigUint64Array(this.buffer, 0, CPU_LAYOUT.slots);
    this.f64 = new Float64Array(this.buffer, 0, CPU_LAYOUT.slots);
    this.u32 = new Uint32Array(this.buffer, 0, CPU_LAYOUT.slots * 2);
    this.u8 = new Uint8Array(this.buffer, 0, CPU_LAYOUT.byteLength);
  }

  /** A fresh state object holding the buffer's values. */
  read(): E2kCpuState {
    const s = cloneCpuState(TEMPLATE);
    for (const leaf of this.layout.leaves) {
      let v: unknown;
      switch (leaf.kind) {
        case 'u64':
          v = this.u64[leaf.slot];
          break;
        case 'num':
          v = this.f64[leaf.slot];
          break;
        case 'bool':
          v = this.f64[leaf.slot] !== 0;
          break;
        case 'bytes':
          v = this.u8.slice(leaf.slot * 8, leaf.slot * 8 + (leaf.bytes ?? 0));
          break;
      }
      setLeaf(s, leaf.path, v);
    }
    return s;
  }

  /** Stores `state` into the buffer; a value of the wrong type or an array too short is `E_MACHINE_STATE`. */
  write(state: E2kCpuState): void {
    for (const leaf of this.layout.leaves) {
      const v = getLeaf(state, leaf.path);
      const where = leaf.path.join('.');
      switch (leaf.kind) {
        case 'u64':
          if (typeof v !== 'bigint' || v < 0n || v >= 1n << 64n) throw badLeaf(where, 'a u64 bigint', v);
          this.u64[leaf.slot] = v;
          break;
        case 'num':
          if (typeof v !== 'number' || !Number.isInteger(v)) throw badLeaf(where, 'an integer', v);
          this.f64[leaf.slot] = v;
          break;
        case 'bool':
          if (typeof v !== 'boolean') throw badLeaf(where, 'a boolean', v);
          this.f64[leaf.slot] = v ? 1 : 0;
          break;
        case 'bytes': {
          const n = leaf.bytes ?? 0;
          if (!(v instanceof Uint8Array) || v.length !== n) throw badLeaf(where, `${n} bytes`, v);
          this.u8.set(v, leaf.slot * 8);
          break;
        }
      }
    }
  }
}

const TEMPLATE = resetCpuState();

function getLeaf(s: unknown, path: readonly (string | number)[]): unknown {
  let cur = s;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[k];
  }
  return cur;
}

function setLeaf(s: unknown, path: readonly (string | number)[], v: unknown): void {
  let cur = s as Record<string | number, unknown>;
  for (let i = 0; i < path.length - 1; i++) cur = cur[path[i] as string | number] as Record<string | number, unknown>;
  cur[path[path.length - 1] as string | number] = v;
}

function badLeaf(where: string, expected: string, got: unknown): E2kError {
  const shown =
    typeof got === 'bigint' ? `${got}n` : got instanceof Uint8Array ? `Uint8Array(${got.length})` : String(got);
  return new E2kError('E_MACHINE_STATE', `cpu state field ${where}: expected ${expected}, got ${shown}`);
}
