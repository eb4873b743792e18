import type { MigCommand } from '@e2k-migrate/migration';
import { HUGE_PAGE } from '@e2k-migrate/native';
import { TARGET_PAGE_SIZE } from './postcopy-block.js';
import { hex, PostcopyProtocolError } from './postcopy-protocol-error.js';

/** Host page sizes a destination can give a block: 4 KiB, 2 MiB (hugetlb). */
export const SUPPORTED_PAGE_SIZES = TARGET_PAGE_SIZE | HUGE_PAGE;

/**
 * QEMU's loadvm_postcopy_handle_advise checks: the 16-byte form (postcopy-ram), the source's
 * page-size summary (OR of its RAM blocks' page sizes) equal to ours, its target page size equal
 * to ours. `local` undefined = a destination that mirrors the source's blocks (the store): the
 * summary must then only hold page sizes we can back, and is checked against the block list later.
 * @returns the advised page-size summary.
 */
export function checkAdvise(
  c: Extract<MigCommand, { cmd: 'POSTCOPY_ADVISE' }>,
  at: number,
  local: number | undefined,
): number {
  const err = (msg: string) =>
    new PostcopyProtocolError('E_POSTCOPY_ADVISE', `POSTCOPY_ADVISE at byte offset ${at}: ${msg}`, {
      offset: at,
      record: 'command POSTCOPY_ADVISE',
    });
  if (c.pageSizeSummary === undefined || c.targetPageSize === undefined) {
    throw err('postcopy-ram is enabled here but the source advised no RAM page sizes (0-byte advise)');
  }
  if (c.targetPageSize !== TARGET_PAGE_SIZE) {
    throw err(`the source's target page size ${c.targetPageSize} differs from ours (${TARGET_PAGE_SIZE})`);
  }
  const s = c.pageSizeSummary;
  if (local !== undefined && s !== local) {
    throw err(`postcopy needs matching RAM page sizes: source ${hex(s)}, destination ${hex(local)}`);
  }
  if (s === 0 || (s & ~SUPPORTED_PAGE_SIZES) !== 0) {
    throw err(`page-size summary ${hex(s)} holds page sizes this destination cannot back (only 4 KiB and 2 MiB)`);
  }
  return s;
}
