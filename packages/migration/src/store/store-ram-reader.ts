import { type FileHandle, open } from 'node:fs/promises';
import { MigrationStreamError } from '../errors.js';
import type { StoredMigration } from './open-store.js';

/**
 * Random access to the pages of a stored migration's RAM block files (one open handle per
 * block). The precopy sender reads blocks front to back; a postcopy sender serves page requests
 * through the same reader.
 */
export class StoreRamReader {
  readonly pageSize: number;
  private readonly handles: FileHandle[];
  private readonly sizes: number[];
  private readonly names: string[];

  private constructor(handles: FileHandle[], sizes: number[], names: string[], pageSize: number) {
    this.handles = handles;
    this.sizes = sizes;
    this.names = names;
    this.pageSize = pageSize;
  }

  static async open(store: StoredMigration): Promise<StoreRamReader> {
    const handles: FileHandle[] = [];
    try {
      for (const path of store.blockPaths) handles.push(await open(path, 'r'));
    } catch (err) {
      await Promise.all(handles.map((h) => h.close()));
      throw new MigrationStreamError('E_STORE_INVALID', `cannot open a RAM block file: ${(err as Error).message}`, {
        record: 'stored migration',
        cause: err,
      });
    }
    return new StoreRamReader(
      handles,
      store.manifest.blocks.map((b) => b.usedLength),
      store.manifest.blocks.map((b) => b.idstr),
      store.manifest.targetPageSize,
    );
  }

  /** Pages in block `index`. */
  pages(index: number): number {
    return (this.sizes[index] as number) / this.pageSize;
  }

  /**
   * Reads `count` pages from page `first` of block `index` into `out` (which must hold them).
   * @returns the filled part of `out`.
   */
  async read(index: number, first: number, count: number, out: Uint8Array): Promise<Uint8Array> {
    const fh = this.handles[index];
    const len = count * this.pageSize;
    if (fh === undefined || first < 0 || first + count > this.pages(index) || out.length < len) {
      throw new MigrationStreamError(
        'E_BAD_VALUE',
        `page range ${first}+${count} is outside RAM block ${index} (${this.names[index] ?? '?'})`,
      );
    }
    let got = 0;
    while (got < len) {
      const { bytesRead } = await fh.read(out, got, len - got, first * this.pageSize + got);
      if (bytesRead === 0) {
        throw new MigrationStreamError(
          'E_STORE_INVALID',
          `RAM block "${this.names[index]}" file ended at byte ${first * this.pageSize + got}, before its used_length`,
          { record: 'stored migration' },
        );
      }
      got += bytesRead;
    }
    return out.subarray(0, len);
  }

  async close(): Promise<void> {
    await Promise.all(this.handles.map((h) => h.close()));
  }
}
