import { type DiscardRange, MigrationStreamError } from '@e2k-migrate/migration';
import type { Userfault } from '@e2k-migrate/native';
import type { PostcopyBlock } from './postcopy-block.js';
import { hex } from './postcopy-protocol-error.js';

/**
 * Applies one POSTCOPY_RAM_DISCARD command (spec §9.2 step 5): every range must lie inside the
 * block and be aligned to its host page (QEMU's ram_discard_range), then its pages are dropped —
 * MADV_DONTNEED / fallocate(PUNCH_HOLE) through the userfault object, so they read as zero and,
 * once registered at LISTEN, fault — and cleared in the received bitmap (they must come again).
 * @returns the bytes discarded.
 */
export function applyDiscard(uf: Userfault, block: PostcopyBlock, ranges: readonly DiscardRange[], at: number): number {
  const hps = block.hostPageSize;
  let bytes = 0;
  for (const r of ranges) {
    const where = `POSTCOPY_RAM_DISCARD at byte offset ${at}: range [${hex(r.start)}, +${hex(r.length)}) of block "${block.name}"`;
    if (r.start + r.length > block.size || r.start < 0 || r.length < 0) {
      throw new MigrationStreamError('E_BAD_RAM_OFFSET', `${where} is outside its used_length ${hex(block.size)}`, {
        offset: at,
        record: 'command POSTCOPY_RAM_DISCARD',
      });
    }
    if (r.start % hps !== 0 || r.length % hps !== 0) {
      throw new MigrationStreamError('E_BAD_RAM_OFFSET', `${where} is not aligned to its ${hps}-byte host pages`, {
        offset: at,
        record: 'command POSTCOPY_RAM_DISCARD',
      });
    }
    if (r.length === 0) continue;
    uf.discard(block.memory, r.start, r.length);
    block.clearRange(r.start, r.length);
    bytes += r.length;
  }
  return bytes;
}
