import { recvBitmapSize } from '@e2k-migrate/migration';
import type { PageBitmap } from '@e2k-migrate/migration-ram';
import { PostcopySourceError } from './errors.js';

/**
 * QEMU's ram_dirty_bitmap_reload: a recovery's RECV_BITMAP blob (bit i = target page i received,
 * little-endian 64-bit words) must be exactly `recvBitmapSize(pages)` bytes; the migration bitmap
 * becomes its complement — every page the destination does not have is sent again, which covers
 * pages lost in flight when the connection broke. Returns the number of pages to send.
 * @throws PostcopySourceError E_BAD_RECV_BITMAP on a size mismatch.
 */
export function dirtyFromReceived(bitmap: PageBitmap, blob: Uint8Array, block: string): number {
  const expected = recvBitmapSize(bitmap.pages);
  if (blob.length !== expected) {
    throw new PostcopySourceError(
      'E_BAD_RECV_BITMAP',
      `RECV_BITMAP of "${block}" is ${blob.length} bytes, expected ${expected} for ${bitmap.pages} target pages`,
      { block },
    );
  }
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const words = bitmap.words;
  const last = words.length - 1;
  const tail = bitmap.pages & 31;
  for (let w = 0; w <= last; w++) {
    let v = ~dv.getUint32(w * 4, true) >>> 0;
    if (w === last && tail !== 0) v = (v & ((1 << tail) - 1)) >>> 0;
    words[w] = v;
  }
  return bitmap.count();
}
