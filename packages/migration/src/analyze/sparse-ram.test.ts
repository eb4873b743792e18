import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { catchStreamError } from '../test-util/catch.js';
import { RAM_CHUNK_SIZE, RamBudget, SparseRam } from './sparse-ram.js';

describe('SparseRam', () => {
  it('allocates lazily: zero pages on untouched chunks cost nothing', () => {
    const budget = new RamBudget(1 << 30);
    const ram = new SparseRam('pc.ram', 64 << 20, budget);
    for (let o = 0; o < 64 << 20; o += 4096) ram.fill(o, 4096, 0);
    expect(ram.allocatedBytes).toBe(0);
    ram.write(5 * 4096, new Uint8Array(4096).fill(1));
    expect(ram.allocatedBytes).toBe(RAM_CHUNK_SIZE);
    expect(budget.allocated).toBe(RAM_CHUNK_SIZE);
    ram.fill(5 * 4096, 4096, 0);
    expect(ram.read(5 * 4096, new Uint8Array(4096))).toEqual(new Uint8Array(4096));
  });

  it('hashes like the dense image, holes included, with a short last chunk', () => {
    const size = RAM_CHUNK_SIZE * 2 + 8192;
    const ram = new SparseRam('b', size, new RamBudget(1 << 30));
    const dense = new Uint8Array(size);
    const p = new Uint8Array(4096).fill(0x5a);
    for (const o of [0, RAM_CHUNK_SIZE * 2 + 4096]) {
      ram.write(o, p);
      dense.set(p, o);
    }
    ram.fill(8192, 4096, 0x11);
    dense.fill(0x11, 8192, 8192 + 4096);
    expect(ram.sha256()).toBe(createHash('sha256').update(dense).digest('hex'));
  });

  it('discard zeroes ranges and releases whole chunks', () => {
    const budget = new RamBudget(1 << 30);
    const ram = new SparseRam('b', RAM_CHUNK_SIZE * 4, budget);
    for (let c = 0; c < 4; c++) ram.write(c * RAM_CHUNK_SIZE, new Uint8Array(4096).fill(c + 1));
    ram.discard(4096, RAM_CHUNK_SIZE * 3 - 4096);
    expect(budget.allocated).toBe(RAM_CHUNK_SIZE * 2);
    expect(ram.read(0, new Uint8Array(1))[0]).toBe(1);
    expect(ram.read(3 * RAM_CHUNK_SIZE, new Uint8Array(1))[0]).toBe(4);
    expect([...ram.allocated()].map((c) => c.offset)).toEqual([0, 3 * RAM_CHUNK_SIZE]);
  });

  it('is bounded by --max-ram: a larger block, or more allocation, is a typed error', () => {
    expect(catchStreamError(() => new SparseRam('huge', 2 ** 40, new RamBudget(1 << 30))).code).toBe('E_RAM_LIMIT');
    const ram = new SparseRam('b', RAM_CHUNK_SIZE * 4, new RamBudget(RAM_CHUNK_SIZE * 4));
    const other = new SparseRam('c', RAM_CHUNK_SIZE, (ram as unknown as { budget: RamBudget }).budget);
    for (let c = 0; c < 4; c++) ram.write(c * RAM_CHUNK_SIZE, new Uint8Array(1).fill(1));
    expect(catchStreamError(() => other.write(0, new Uint8Array(1).fill(1))).code).toBe('E_RAM_LIMIT');
  });
});
