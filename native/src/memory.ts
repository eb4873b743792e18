import { isMainThread, threadId } from 'node:worker_threads';
import { createControl } from './control.js';
import { fromNative, InvalidArgumentError } from './errors.js';
import { GuestMemoryImpl, type RegionOps } from './guest-memory.js';
import { nativeAddon, requireAddon } from './loader.js';
import { hashBytes } from './page-hash.js';
import type { BackendName, GuestMemory, MemoryHandle, RegionKind, RegionOptions } from './types.js';
import { checkUint } from './validate.js';
import { zeroPageBitmap } from './zero-pages.js';

/** Bytes per view: typed arrays stop at 4 GiB on Node 20; 1 GiB keeps offsets in 30 bits. */
export const VIEW_BYTES = 2 ** 30;
export const SMALL_PAGE = 4096;
export const HUGE_PAGE = 2 * 1024 * 1024;

const KIND_CODE: Record<RegionKind, number> = { anonymous: 0, memfd: 1, hugetlb: 2 };
let fallbackIds = 0;

export function pageSizeOf(kind: RegionKind): number {
  return kind === 'hugetlb' ? HUGE_PAGE : SMALL_PAGE;
}

/**
 * Creates a guest RAM region with the loaded backend (native mmap, or SharedArrayBuffers) and
 * returns this thread's memory object. Post `mem.handle` to workers and `attachGuestMemory` there.
 */
export function createGuestMemory(opts: RegionOptions): GuestMemory {
  return createGuestMemoryWith(nativeAddon() ? 'native' : 'fallback', opts);
}

/**
 * Like {@link createGuestMemory} with an explicit backend (the contract tests run both in one
 * process; `native` throws E_NATIVE_UNAVAILABLE without the addon).
 */
export function createGuestMemoryWith(backend: BackendName, opts: RegionOptions): GuestMemory {
  if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('options', 'an object', opts);
  const kind = opts.kind ?? 'anonymous';
  if (!(kind in KIND_CODE)) throw new InvalidArgumentError('kind', 'anonymous, memfd or hugetlb', kind);
  const pageSize = pageSizeOf(kind);
  const size = checkUint('size', opts.size);
  if (size === 0 || size % pageSize !== 0) {
    throw new InvalidArgumentError('size', `a positive multiple of the ${pageSize}-byte page`, size);
  }
  const name = opts.name ?? `e2k-ram-${kind}`;
  if (typeof name !== 'string') throw new InvalidArgumentError('name', 'a string', name);
  const pages = size / pageSize;
  if (backend !== 'native' && backend !== 'fallback')
    throw new InvalidArgumentError('backend', 'native or fallback', backend);
  if (backend === 'native') {
    const addon = requireAddon('a native region');
    let id: number;
    try {
      id = addon.createRegion(KIND_CODE[kind], size, name);
    } catch (err) {
      const e = fromNative(err, `createGuestMemory(${kind}, ${size} bytes)`);
      if (kind === 'hugetlb' && e.errno === 12) {
        e.message += ' — not enough free 2 MiB huge pages (see /proc/sys/vm/nr_hugepages, HugePages_Free)';
      }
      throw e;
    }
    const handle: MemoryHandle = {
      backend: 'native',
      id,
      kind,
      name,
      size,
      pageSize,
      viewBytes: VIEW_BYTES,
      control: createControl(pages),
    };
    return attachGuestMemory(handle);
  }
  const buffers: SharedArrayBuffer[] = [];
  for (let off = 0; off < size; off += VIEW_BYTES)
    buffers.push(new SharedArrayBuffer(Math.min(VIEW_BYTES, size - off)));
  const handle: MemoryHandle = {
    backend: 'fallback',
    id: ++fallbackIds,
    kind,
    name,
    size,
    pageSize,
    viewBytes: VIEW_BYTES,
    control: createControl(pages),
    buffers,
  };
  return attachGuestMemory(handle);
}

/** Maps a region described by `handle` in this thread (by id through the addon, or its SABs). */
export function attachGuestMemory(handle: MemoryHandle): GuestMemory {
  checkHandle(handle);
  if (handle.backend === 'native') {
    const addon = requireAddon('attaching a native region');
    let buffers: ArrayBuffer[];
    try {
      buffers = addon.attach(handle.id);
    } catch (err) {
      throw fromNative(err, `attachGuestMemory(region ${handle.id})`);
    }
    if (!isMainThread) addon.recordThread(threadId);
    const id = handle.id;
    const ops: RegionOps = {
      zeroPages: (offset, length, out) => {
        try {
          addon.zeroBitmap(id, offset, length, out);
        } catch (err) {
          throw fromNative(err, 'zeroPages');
        }
      },
      hash: (offset, length) => {
        try {
          return addon.hashRange(id, offset, length);
        } catch (err) {
          throw fromNative(err, 'hash');
        }
      },
      close: () => {
        try {
          addon.closeRegion(id);
        } catch (err) {
          throw fromNative(err, `close(region ${id})`);
        }
      },
      detach: () => addon.detach(id),
    };
    return new GuestMemoryImpl(handle, buffers, ops);
  }
  const buffers = handle.buffers as readonly SharedArrayBuffer[];
  const ops: RegionOps = {
    zeroPages: (offset, length, out) => {
      for (let done = 0; done < length; ) {
        const a = offset + done;
        const v = Math.floor(a / handle.viewBytes);
        const off = a - v * handle.viewBytes;
        const n = Math.min(length - done, (buffers[v] as SharedArrayBuffer).byteLength - off);
        zeroPageBitmap(
          new Uint8Array(buffers[v] as SharedArrayBuffer, off, n),
          handle.pageSize,
          out,
          done / handle.pageSize,
        );
        done += n;
      }
    },
    hash: (offset, length) => {
      const v = Math.floor(offset / handle.viewBytes);
      const off = offset - v * handle.viewBytes;
      const buf = buffers[v] as SharedArrayBuffer;
      if (off + length <= buf.byteLength) return hashBytes(new Uint8Array(buf, off, length));
      const tmp = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const a = offset + done;
        const vi = Math.floor(a / handle.viewBytes);
        const o = a - vi * handle.viewBytes;
        const b = buffers[vi] as SharedArrayBuffer;
        const n = Math.min(length - done, b.byteLength - o);
        tmp.set(new Uint8Array(b, o, n), done);
        done += n;
      }
      return hashBytes(tmp);
    },
    close: () => {},
    detach: () => {},
  };
  return new GuestMemoryImpl(handle, buffers, ops);
}

function checkHandle(h: MemoryHandle): void {
  if (typeof h !== 'object' || h === null) throw new InvalidArgumentError('handle', 'a MemoryHandle', h);
  if (h.backend !== 'native' && h.backend !== 'fallback')
    throw new InvalidArgumentError('handle.backend', 'native or fallback', h.backend);
  if (!(h.control instanceof SharedArrayBuffer))
    throw new InvalidArgumentError('handle.control', 'a SharedArrayBuffer', h.control);
  checkUint('handle.size', h.size);
  if (h.pageSize !== pageSizeOf(h.kind))
    throw new InvalidArgumentError('handle.pageSize', String(pageSizeOf(h.kind)), h.pageSize);
  if (h.backend === 'fallback') {
    const ok = Array.isArray(h.buffers) && h.buffers.every((b) => b instanceof SharedArrayBuffer);
    if (!ok) throw new InvalidArgumentError('handle.buffers', 'SharedArrayBuffers', h.buffers);
  }
}
