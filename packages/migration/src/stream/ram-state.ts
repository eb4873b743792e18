import { MigrationStreamError } from '../errors.js';
import type { MemSizeList, RamBlockEntry } from '../wire/mem-size.js';

/** A RAM block known from the START section's block list. */
export interface RamBlockInfo extends RamBlockEntry {
  /** Position in the block list. */
  index: number;
}

/** Channel numbers for "last block" bookkeeping: the main stream and the postcopy-preempt channel. */
export const RAM_CHANNEL_MAIN = 0;
export const RAM_CHANNEL_PREEMPT = 1;

/**
 * RAM bookkeeping shared by every channel of one migration: the block list and, per channel,
 * the block named by the last record (what CONTINUE refers to; kept across sections).
 */
export class RamState {
  blocks: RamBlockInfo[] = [];
  list: MemSizeList | undefined;
  private readonly byName = new Map<string, RamBlockInfo>();
  private readonly last: (RamBlockInfo | undefined)[] = [];

  /** Installs the block list of a MEM_SIZE record (a later list replaces an earlier one). */
  setBlocks(list: MemSizeList): void {
    this.list = list;
    this.blocks = list.blocks.map((b, index) => ({ ...b, index }));
    this.byName.clear();
    for (const b of this.blocks) this.byName.set(b.name, b);
  }

  get(name: string): RamBlockInfo | undefined {
    return this.byName.get(name);
  }

  /** Resolves a named record's block and remembers it for CONTINUE on `channel`. */
  named(name: string, channel: number, at: number, section?: string): RamBlockInfo {
    const b = this.byName.get(name);
    if (b === undefined) {
      throw new MigrationStreamError(
        'E_BAD_RAM_BLOCK',
        `RAM record at byte offset ${at} names unknown block "${name}"${this.blocks.length ? '' : ' (no block list seen yet)'}`,
        { offset: at, section, record: 'ram record' },
      );
    }
    this.last[channel] = b;
    return b;
  }

  /** The block a CONTINUE record on `channel` refers to. */
  continued(channel: number, at: number, section?: string): RamBlockInfo {
    const b = this.last[channel];
    if (b === undefined) {
      throw new MigrationStreamError(
        'E_BAD_RAM_BLOCK',
        `RAM record at byte offset ${at} has CONTINUE but no block was named before on this channel`,
        { offset: at, section, record: 'ram record' },
      );
    }
    return b;
  }

  /** Forgets the last block of a channel (postcopy start, recovery). */
  resetLast(channel?: number): void {
    if (channel === undefined) this.last.length = 0;
    else this.last[channel] = undefined;
  }
}
