import { type ByteReader, ByteWriter } from '@e2k-migrate/vmstate';
import { MigrationStreamError, toStreamError } from '../errors.js';
import { RAM_SAVE_FLAG_MEM_SIZE } from './constants.js';

/** One RAMBlock of the START section's block list (spec §4.3). */
export interface RamBlockEntry {
  /** RAMBlock idstr, e.g. `pc.ram`, `/rom@etc/acpi/tables`. */
  name: string;
  /** Bytes in use (`used_length`). */
  usedLength: number;
  /** Postcopy only: the block's page size when it differs from the host page size (e.g. 2 MiB). */
  pageSize?: number;
  /** x-ignore-shared only: the MemoryRegion `addr` of the block. */
  mrAddr?: number;
}

/** The MEM_SIZE record: `be64 total | 0x04`, the block list. */
export interface MemSizeList {
  total: number;
  blocks: RamBlockEntry[];
}

/** What the decoder must know that the list itself does not say. */
export interface MemSizeOptions {
  targetPageSize: number;
  /** Capability x-ignore-shared (from the configuration record): every entry carries mr_addr. */
  ignoreShared?: boolean;
  /** POSTCOPY_ADVISE page-size summary (OR of all block page sizes), when it preceded START. */
  postcopyPageSizeSummary?: number;
}

/** Writes the whole MEM_SIZE record: word, then each `idstr, be64 used_length[, page_size][, mr_addr]`. */
export function encodeMemSizeList(list: MemSizeList, w: ByteWriter = new ByteWriter(256)): ByteWriter {
  w.u64be(BigInt(list.total) | BigInt(RAM_SAVE_FLAG_MEM_SIZE));
  for (const b of list.blocks) {
    w.idstr(b.name).u64be(b.usedLength);
    if (b.pageSize !== undefined) w.u64be(b.pageSize);
    if (b.mrAddr !== undefined) w.u64be(b.mrAddr);
  }
  return w;
}

/**
 * Decodes the block list after the MEM_SIZE word (whose value is `total`): entries until their
 * used_lengths add up to `total`. An entry's optional page_size is recognised as in spec §4.3: a
 * power of two larger than the target page size whose bit is set in the POSTCOPY_ADVISE summary
 * (no name length byte or EOS word can look like that).
 */
export function decodeMemSizeList(r: ByteReader, total: number, opts: MemSizeOptions): RamBlockEntry[] {
  const blocks: RamBlockEntry[] = [];
  const seen = new Set<string>();
  let sum = 0;
  try {
    while (sum < total) {
      const at = r.offset;
      const name = r.idstr('RAM block name');
      if (name.length === 0) {
        throw new MigrationStreamError(
          'E_BAD_RAM_BLOCK',
          `empty RAM block name in the block list at byte offset ${at}`,
          {
            offset: at,
            record: 'ram MEM_SIZE',
          },
        );
      }
      if (seen.has(name)) {
        throw new MigrationStreamError('E_BAD_RAM_BLOCK', `RAM block "${name}" listed twice (byte offset ${at})`, {
          offset: at,
          record: 'ram MEM_SIZE',
        });
      }
      seen.add(name);
      const lenAt = r.offset;
      const usedLength = r.u64beNumber('RAM block used_length');
      sum += usedLength;
      if (sum > total) {
        throw new MigrationStreamError(
          'E_BAD_LENGTH',
          `RAM block "${name}" (used_length ${usedLength} at byte offset ${lenAt}) takes the block list past its total ${total}`,
          { offset: lenAt, record: 'ram MEM_SIZE' },
        );
      }
      const entry: RamBlockEntry = { name, usedLength };
      const summary = opts.postcopyPageSizeSummary;
      if (summary !== undefined && summary !== opts.targetPageSize) {
        // Something of 8 bytes always follows an entry (the next entry's name or EOS).
        r.need(8, 'RAM block page_size look-ahead');
        const hi = r.bytes[r.position] === 0 && r.bytes[r.position + 1] === 0 ? peekU64(r) : -1;
        if (hi > opts.targetPageSize && isPowerOfTwo(hi) && bitSet(summary, hi)) {
          entry.pageSize = r.u64beNumber('RAM block page_size');
        }
      }
      if (opts.ignoreShared) entry.mrAddr = r.u64beNumber('RAM block mr_addr');
      blocks.push(entry);
    }
    return blocks;
  } catch (err) {
    throw toStreamError(err, { record: 'ram MEM_SIZE' });
  }
}

function peekU64(r: ByteReader): number {
  const p = r.position;
  const b = r.bytes;
  let v = 0;
  for (let i = 0; i < 8; i++) v = v * 256 + (b[p + i] as number);
  return v;
}

function isPowerOfTwo(v: number): boolean {
  return v > 0 && Number.isSafeInteger(v) && 2 ** Math.round(Math.log2(v)) === v;
}

function bitSet(summary: number, bit: number): boolean {
  return Math.floor(summary / bit) % 2 === 1;
}
