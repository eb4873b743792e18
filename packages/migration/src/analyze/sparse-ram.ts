import { createHash } from 'node:crypto';
import { MigrationStreamError } from '../errors.js';

/** Allocation granule of a reconstructed RAM block. A multiple of every target page size. */
export const RAM_CHUNK_SIZE = 256 * 1024;

const ZERO_CHUNK = new Uint8Array(RAM_CHUNK_SIZE);

/** Caps the memory all reconstructed blocks may allocate together (`--max-ram`). */
export class RamBudget {
  readonly max: number;
  allocated = 0;

  constructor(max: number) {
    this.max = max;
  }

  take(bytes: number, block: string): void {
    if (this.allocated + bytes > this.max) {
      throw new MigrationStreamError(
        'E_RAM_LIMIT',
        `reconstructing RAM block "${block}" needs more than --max-ram ${this.max} bytes (${this.allocated} allocated)`,
        { record: `ram block ${block}` },
      );
    }
    this.allocated += bytes;
  }

  give(bytes: number): void {
    this.allocated -= bytes;
  }
}

/**
 * A RAM block rebuilt from a stream, allocated lazily and sparsely: a chunk gets memory on its
 * first non-zero write; zero pages on untouched chunks allocate nothing. Unallocated chunks read
 * as zeros (and become holes when extracted).
 */
export class SparseRam {
  readonly name: string;
  readonly size: number;
  private readonly chunks: (Uint8Array | undefined)[];
  private readonly budget: RamBudget;
  /** sha256 of the current content, until the next change. */
  private hash: string | undefined;

  /** @throws MigrationStreamError E_RAM_LIMIT when the block alone is larger than the budget. */
  constructor(name: string, size: number, budget: RamBudget) {
    if (size > budget.max) {
      throw new MigrationStreamError(
        'E_RAM_LIMIT',
        `RAM block "${name}" is ${size} bytes, more than --max-ram ${budget.max}`,
        { record: `ram block ${name}` },
      );
    }
    this.name = name;
    this.size = size;
    this.budget = budget;
    this.chunks = new Array(Math.ceil(size / RAM_CHUNK_SIZE));
  }

  /** Bytes actually allocated. */
  get allocatedBytes(): number {
    let n = 0;
    for (const c of this.chunks) if (c) n += c.length;
    return n;
  }

  /** Copies one page (or any range inside one chunk) in. */
  write(offset: number, data: Uint8Array): void {
    this.hash = undefined;
    const i = Math.floor(offset / RAM_CHUNK_SIZE);
    const chunk = this.chunks[i] ?? this.allocate(i);
    chunk.set(data, offset - i * RAM_CHUNK_SIZE);
  }

  /** A ZERO record: a page filled with `fill`. Allocates only for a non-zero fill. */
  fill(offset: number, length: number, fill: number): void {
    this.hash = undefined;
    const i = Math.floor(offset / RAM_CHUNK_SIZE);
    let chunk = this.chunks[i];
    if (chunk === undefined) {
      if (fill === 0) return;
      chunk = this.allocate(i);
    }
    const o = offset - i * RAM_CHUNK_SIZE;
    chunk.fill(fill, o, o + length);
  }

  /** A writable view of `length` bytes at `offset` (inside one chunk), allocating the chunk. */
  view(offset: number, length: number): Uint8Array {
    this.hash = undefined;
    const i = Math.floor(offset / RAM_CHUNK_SIZE);
    const chunk = this.chunks[i] ?? this.allocate(i);
    const o = offset - i * RAM_CHUNK_SIZE;
    return chunk.subarray(o, o + length);
  }

  /** Copies `length` bytes at `offset` (inside one chunk) into `out`. */
  read(offset: number, out: Uint8Array): Uint8Array {
    const i = Math.floor(offset / RAM_CHUNK_SIZE);
    const chunk = this.chunks[i];
    const o = offset - i * RAM_CHUNK_SIZE;
    if (chunk === undefined) out.fill(0);
    else out.set(chunk.subarray(o, o + out.length));
    return out;
  }

  /** Zeroes a byte range (postcopy discard); whole chunks are released. */
  discard(start: number, length: number): void {
    this.hash = undefined;
    let pos = start;
    const end = start + length;
    while (pos < end) {
      const i = Math.floor(pos / RAM_CHUNK_SIZE);
      const cStart = i * RAM_CHUNK_SIZE;
      const cEnd = Math.min(cStart + RAM_CHUNK_SIZE, this.size);
      const stop = Math.min(end, cEnd);
      const chunk = this.chunks[i];
      if (chunk !== undefined) {
        if (pos === cStart && stop === cEnd) {
          this.chunks[i] = undefined;
          this.budget.give(chunk.length);
        } else chunk.fill(0, pos - cStart, stop - cStart);
      }
      pos = stop;
    }
  }

  /** Allocated chunks in order, with their offsets (holes are skipped). */
  *allocated(): Generator<{ offset: number; bytes: Uint8Array }> {
    for (let i = 0; i < this.chunks.length; i++) {
      const c = this.chunks[i];
      if (c) yield { offset: i * RAM_CHUNK_SIZE, bytes: c };
    }
  }

  /** sha256 of the whole block as a file would hold it (holes hash as zeros). */
  sha256(): string {
    if (this.hash !== undefined) return this.hash;
    const h = createHash('sha256');
    for (let i = 0; i < this.chunks.length; i++) {
      const len = Math.min(RAM_CHUNK_SIZE, this.size - i * RAM_CHUNK_SIZE);
      const c = this.chunks[i];
      h.update(c ?? (len === RAM_CHUNK_SIZE ? ZERO_CHUNK : ZERO_CHUNK.subarray(0, len)));
    }
    this.hash = h.digest('hex');
    return this.hash;
  }

  private allocate(i: number): Uint8Array {
    const len = Math.min(RAM_CHUNK_SIZE, this.size - i * RAM_CHUNK_SIZE);
    this.budget.take(len, this.name);
    const c = new Uint8Array(len);
    this.chunks[i] = c;
    return c;
  }
}
