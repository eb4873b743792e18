import {
  type ControlViews,
  controlViews,
  FLAG_CLOSED,
  FLAG_DEMAND,
  FLAG_DIRTY,
  FLAGS,
  INSTALL_SEQ,
  REGISTRATIONS,
  setFlag,
} from './control.js';
import { BusyError, ClosedError, InvalidArgumentError, OutOfRangeError } from './errors.js';
import { postFaultRequest } from './fault-ring.js';
import { gettid } from './gettid.js';
import type { BackendName, GuestMemory, MemoryHandle, RegionKind } from './types.js';
import { checkRange, checkUint } from './validate.js';

/** What differs between the backends behind one memory object. */
export interface RegionOps {
  /** Zero-page bitmap of a validated, page-aligned range into `out` (zeroed). */
  zeroPages(offset: number, length: number, out: Uint32Array): void;
  hash(offset: number, length: number): bigint;
  /** Closes the region everywhere (native: detaches every thread's views, then unmaps). */
  close(): void;
  /** Releases this thread's views. */
  detach(): void;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The memory interface over a region's views (native ArrayBuffers or fallback
 * SharedArrayBuffers). Fast path: an in-range access to the first view (≤ 1 GiB) with every mode
 * off is one flags read, one bounds check and one typed-array access. Everything else takes the
 * slow path: validation, closed check, cooperative wait for missing pages, access (split across
 * views if needed), then dirty marking (after the write, so a concurrent collection that clears
 * the bit either sees the new bytes or leaves the bit set for the next round).
 */
export class GuestMemoryImpl implements GuestMemory {
  readonly handle: MemoryHandle;
  readonly backend: BackendName;
  readonly kind: RegionKind;
  readonly size: number;
  readonly pageSize: number;
  readonly pageCount: number;
  private readonly ctl: Int32Array;
  private readonly control: ControlViews;
  private readonly ops: RegionOps;
  private readonly u8s: Uint8Array[];
  private readonly dvs: DataView[];
  private readonly viewBytes: number;
  // first-view fast path
  private readonly u8: Uint8Array;
  private readonly u16: Uint16Array;
  private readonly u32: Uint32Array;
  private readonly u64: BigUint64Array;
  private lim: number;
  private readonly scratch = new Uint8Array(8);
  private readonly scratchDv = new DataView(this.scratch.buffer);
  private detached = false;
  private tid = -1;

  constructor(handle: MemoryHandle, buffers: readonly (ArrayBuffer | SharedArrayBuffer)[], ops: RegionOps) {
    this.handle = handle;
    this.backend = handle.backend;
    this.kind = handle.kind;
    this.size = handle.size;
    this.pageSize = handle.pageSize;
    this.pageCount = handle.size / handle.pageSize;
    this.viewBytes = handle.viewBytes;
    this.control = controlViews(handle.control, this.pageCount);
    this.ctl = this.control.ctl;
    this.ops = ops;
    this.u8s = buffers.map((b) => new Uint8Array(b));
    this.dvs = buffers.map((b) => new DataView(b));
    const first = buffers[0] as ArrayBuffer;
    this.u8 = this.u8s[0] as Uint8Array;
    this.u16 = new Uint16Array(first);
    this.u32 = new Uint32Array(first);
    this.u64 = new BigUint64Array(first);
    // Typed arrays are host-endian: use the fast path only on little-endian hosts.
    this.lim = LITTLE_ENDIAN ? this.u8.length : 0;
  }

  get closed(): boolean {
    return (Atomics.load(this.ctl, FLAGS) & FLAG_CLOSED) !== 0;
  }

  /** The shared control views (bitmaps, ring) for the trackers and the cooperative userfault. */
  controlViews(): ControlViews {
    return this.control;
  }

  load8(addr: number): number {
    if (this.ctl[0] !== 0 || addr >>> 0 !== addr || addr >= this.lim) return this.slowLoad(addr, 1) as number;
    return this.u8[addr] as number;
  }
  load16(addr: number): number {
    if (this.ctl[0] !== 0 || (addr & 1) !== 0 || addr >>> 0 !== addr || addr >= this.lim) {
      return this.slowLoad(addr, 2) as number;
    }
    return this.u16[addr >>> 1] as number;
  }
  load32(addr: number): number {
    if (this.ctl[0] !== 0 || (addr & 3) !== 0 || addr >>> 0 !== addr || addr >= this.lim) {
      return this.slowLoad(addr, 4) as number;
    }
    return this.u32[addr >>> 2] as number;
  }
  load64(addr: number): bigint {
    if (this.ctl[0] !== 0 || (addr & 7) !== 0 || addr >>> 0 !== addr || addr >= this.lim) {
      return this.slowLoad(addr, 8) as bigint;
    }
    return this.u64[addr >>> 3] as bigint;
  }
  store8(addr: number, value: number): void {
    if (this.ctl[0] !== 0 || addr >>> 0 !== addr || addr >= this.lim) {
      this.slowStore(addr, 1, value);
      return;
    }
    this.u8[addr] = value;
  }
  store16(addr: number, value: number): void {
    if (this.ctl[0] !== 0 || (addr & 1) !== 0 || addr >>> 0 !== addr || addr >= this.lim) {
      this.slowStore(addr, 2, value);
      return;
    }
    this.u16[addr >>> 1] = value;
  }
  store32(addr: number, value: number): void {
    if (this.ctl[0] !== 0 || (addr & 3) !== 0 || addr >>> 0 !== addr || addr >= this.lim) {
      this.slowStore(addr, 4, value);
      return;
    }
    this.u32[addr >>> 2] = value;
  }
  store64(addr: number, value: bigint): void {
    if (this.ctl[0] !== 0 || (addr & 7) !== 0 || addr >>> 0 !== addr || addr >= this.lim) {
      this.slowStore(addr, 8, value);
      return;
    }
    this.u64[addr >>> 3] = value;
  }

  readBytes(addr: number, dst: Uint8Array): void {
    if (!(dst instanceof Uint8Array)) throw new InvalidArgumentError('readBytes: dst', 'a Uint8Array', dst);
    this.enter('readBytes', addr, dst.length);
    this.copyOut(addr, dst);
  }
  writeBytes(addr: number, src: Uint8Array): void {
    if (!(src instanceof Uint8Array)) throw new InvalidArgumentError('writeBytes: src', 'a Uint8Array', src);
    this.enter('writeBytes', addr, src.length);
    this.copyIn(addr, src);
    if ((this.ctl[0] as number) & FLAG_DIRTY) this.markDirty(addr, src.length);
  }

  pageView(page: number, count = 1): Uint8Array {
    this.checkLive('pageView');
    checkUint('pageView: page', page);
    checkUint('pageView: count', count);
    const { offset, length } = checkRange('pageView', page * this.pageSize, count * this.pageSize, this.size, 1);
    const v = Math.floor(offset / this.viewBytes);
    const off = offset - v * this.viewBytes;
    const view = this.u8s[v] as Uint8Array;
    if (off + length > view.length) {
      throw new InvalidArgumentError(
        'pageView: pages',
        `a range inside one ${this.viewBytes}-byte view`,
        `[${offset}, +${length})`,
      );
    }
    return view.subarray(off, off + length);
  }
  views(): readonly Uint8Array[] {
    this.checkLive('views');
    return this.u8s;
  }

  zeroPages(offset: number, length: number): Uint32Array {
    this.checkLive('zeroPages');
    const r = checkRange('zeroPages', offset, length, this.size, this.pageSize);
    const out = new Uint32Array(Math.ceil(r.length / this.pageSize / 32));
    if (r.length > 0) this.ops.zeroPages(r.offset, r.length, out);
    return out;
  }
  hash(offset: number, length: number): bigint {
    this.checkLive('hash');
    const r = checkRange('hash', offset, length, this.size, 1);
    return this.ops.hash(r.offset, r.length);
  }

  setDirtyMarking(on: boolean): void {
    this.checkLive('setDirtyMarking');
    setFlag(this.ctl, FLAG_DIRTY, on);
  }
  setDemandPaging(on: boolean): void {
    this.checkLive('setDemandPaging');
    setFlag(this.ctl, FLAG_DEMAND, on);
    if (!on) {
      Atomics.add(this.ctl, INSTALL_SEQ, 1);
      Atomics.notify(this.ctl, INSTALL_SEQ);
    }
  }

  close(): void {
    if (this.closed) return;
    if (Atomics.load(this.ctl, REGISTRATIONS) > 0) {
      throw new BusyError(`region ${this.handle.id} has userfault ranges registered; unregister them first`);
    }
    // Flag first: every thread's next access throws before its views are detached.
    setFlag(this.ctl, FLAG_CLOSED, true);
    try {
      this.ops.close();
    } catch (err) {
      setFlag(this.ctl, FLAG_CLOSED, false);
      throw err;
    }
    this.lim = 0;
    // Wake cooperative waiters so they observe the close.
    Atomics.add(this.ctl, INSTALL_SEQ, 1);
    Atomics.notify(this.ctl, INSTALL_SEQ);
    this.detached = true;
  }
  detach(): void {
    if (this.detached) return;
    this.detached = true;
    this.lim = 0;
    this.ops.detach();
  }

  /** Throws unless this thread can still use the region. */
  checkLive(what: string): void {
    if (this.detached || this.closed) {
      throw new ClosedError(
        `${what}: region ${this.handle.id} (${this.handle.name})${this.detached && !this.closed ? ' in this thread (detached)' : ''}`,
      );
    }
  }

  // ---- slow path ------------------------------------------------------------------------------

  private enter(what: string, addr: number, len: number): void {
    this.checkLive(what);
    if (typeof addr !== 'number' || !Number.isSafeInteger(addr) || addr < 0 || addr + len > this.size) {
      if (typeof addr !== 'number' || !Number.isSafeInteger(addr) || addr < 0) {
        throw new InvalidArgumentError(`${what}: address`, 'a non-negative safe integer', addr);
      }
      throw new OutOfRangeError(what, addr, len, this.size);
    }
    if (((this.ctl[0] as number) & FLAG_DEMAND) !== 0 && len > 0) this.ensurePresent(addr, len);
  }

  private slowLoad(addr: number, size: number): number | bigint {
    this.enter(`load${size * 8}`, addr, size);
    const v = Math.floor(addr / this.viewBytes);
    const off = addr - v * this.viewBytes;
    let dv = this.dvs[v] as DataView;
    let at = off;
    if (off + size > dv.byteLength) {
      this.copyOut(addr, this.scratch.subarray(0, size));
      dv = this.scratchDv;
      at = 0;
    }
    switch (size) {
      case 1:
        return dv.getUint8(at);
      case 2:
        return dv.getUint16(at, true);
      case 4:
        return dv.getUint32(at, true);
      default:
        return dv.getBigUint64(at, true);
    }
  }

  private slowStore(addr: number, size: number, value: number | bigint): void {
    this.enter(`store${size * 8}`, addr, size);
    const v = Math.floor(addr / this.viewBytes);
    const off = addr - v * this.viewBytes;
    const dv = this.dvs[v] as DataView;
    const crosses = off + size > dv.byteLength;
    const target = crosses ? this.scratchDv : dv;
    const at = crosses ? 0 : off;
    switch (size) {
      case 1:
        target.setUint8(at, Number(value));
        break;
      case 2:
        target.setUint16(at, Number(value), true);
        break;
      case 4:
        target.setUint32(at, Number(value), true);
        break;
      default:
        target.setBigUint64(at, BigInt.asUintN(64, value as bigint), true);
    }
    if (crosses) this.copyIn(addr, this.scratch.subarray(0, size));
    if ((this.ctl[0] as number) & FLAG_DIRTY) this.markDirty(addr, size);
  }

  private copyOut(addr: number, dst: Uint8Array): void {
    let done = 0;
    while (done < dst.length) {
      const a = addr + done;
      const v = Math.floor(a / this.viewBytes);
      const off = a - v * this.viewBytes;
      const view = this.u8s[v] as Uint8Array;
      const n = Math.min(dst.length - done, view.length - off);
      dst.set(view.subarray(off, off + n), done);
      done += n;
    }
  }

  private copyIn(addr: number, src: Uint8Array): void {
    let done = 0;
    while (done < src.length) {
      const a = addr + done;
      const v = Math.floor(a / this.viewBytes);
      const off = a - v * this.viewBytes;
      const view = this.u8s[v] as Uint8Array;
      const n = Math.min(src.length - done, view.length - off);
      view.set(src.subarray(done, done + n), off);
      done += n;
    }
  }

  /** Software dirty marking: a plain read first, the atomic OR only when the bit is still clear. */
  private markDirty(addr: number, len: number): void {
    const bm = this.control.dirty;
    const first = Math.floor(addr / this.pageSize);
    const last = Math.floor((addr + len - 1) / this.pageSize);
    for (let p = first; p <= last; p++) {
      const w = p >>> 5;
      const bit = 1 << (p & 31);
      if (((bm[w] as number) & bit) === 0) Atomics.or(bm, w, bit);
    }
  }

  /** Cooperative demand paging: request each missing page and sleep until it is installed. */
  private ensurePresent(addr: number, len: number): void {
    const rx = this.control.received;
    const first = Math.floor(addr / this.pageSize);
    const last = Math.floor((addr + len - 1) / this.pageSize);
    for (let p = first; p <= last; p++) {
      const w = p >>> 5;
      const bit = 1 << (p & 31);
      if ((Atomics.load(rx, w) & bit) !== 0) continue;
      if (this.tid < 0) this.tid = gettid();
      postFaultRequest(this.ctl, p, this.tid, 0);
      for (;;) {
        const seq = Atomics.load(this.ctl, INSTALL_SEQ);
        if ((Atomics.load(rx, w) & bit) !== 0) break;
        const flags = Atomics.load(this.ctl, FLAGS);
        if (flags & FLAG_CLOSED) throw new ClosedError(`region ${this.handle.id} (while waiting for page ${p})`);
        if ((flags & FLAG_DEMAND) === 0) break;
        Atomics.wait(this.ctl, INSTALL_SEQ, seq, 1000);
      }
    }
  }
}
