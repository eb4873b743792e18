import { E2kError } from '../errors.js';

const UNITS: Record<string, number> = { '': 1, B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/**
 * Parses a size as QEMU's `-m` does: a number with an optional K/M/G/T suffix (binary units,
 * case-insensitive, optional trailing `B`/`iB`); a bare number means bytes here.
 */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(text);
  if (!m) throw new E2kError('E_MACHINE_CONFIG', `size "${text}" is not a number with an optional K/M/G/T suffix`);
  const unit = UNITS[(m[2] ?? '').toUpperCase()] as number;
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(bytes))
    throw new E2kError('E_MACHINE_CONFIG', `size "${text}" is not a whole number of bytes`);
  return bytes;
}

/** A byte count for humans: `64 MiB`, `1.5 GiB`. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i]}`;
}
