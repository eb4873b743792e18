import { FLAG_DEMAND, INSTALL_SEQ, REGISTRATIONS, REQ_SIGNAL, setBits, setFlag, testBit } from './control.js';
import { AlreadyPlacedError, BusyError, InvalidArgumentError } from './errors.js';
import { drainFaultRequests, type RingRequest } from './fault-ring.js';
import type { GuestMemoryImpl } from './guest-memory.js';
import type { FaultEvent, GuestMemory, InstallOptions, RegisterOptions, Userfault } from './types.js';
import { checkInstall, checkPages, checkWait, memImpl, resolveRange } from './userfault-args.js';
import { isZeroWords } from './zero-pages.js';

/**
 * The fallback's demand paging: no kernel help. Registering clears the received bits of the
 * range's missing pages (all-zero pages: the fallback cannot tell "never written" from "written
 * with zeros") and switches the region's demand-paging mode on; a thread that touches a missing
 * page through the memory API posts a request in the shared ring and sleeps on Atomics.wait; this
 * object reads the ring on its thread (Atomics.waitAsync) and hands the requests to the fault
 * handler; `copy` writes the bytes, sets the received bits and wakes the sleepers.
 */
export class CooperativeUserfault implements Userfault {
  readonly backend = 'cooperative' as const;
  readonly features: readonly string[] = [];
  readonly source = 'none' as const;
  private handler: ((events: FaultEvent[]) => void) | undefined;
  private readonly regs = new Map<GuestMemoryImpl, { ranges: number; stop: () => void }>();
  private closed = false;

  constructor(onFaults?: (events: FaultEvent[]) => void) {
    this.handler = onFaults;
  }

  setFaultHandler(onFaults: ((events: FaultEvent[]) => void) | undefined): void {
    this.handler = onFaults;
    // Requests posted while there was no handler wait in the rings: have the readers look again.
    for (const m of this.regs.keys()) poke(m.controlViews().ctl);
  }

  waitFaults(timeoutMs: number, max = 64): FaultEvent[] {
    this.live();
    checkWait(timeoutMs, max);
    if (this.handler) throw new BusyError('waitFaults: a fault handler is set; clear it first');
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const regs = [...this.regs.keys()];
      const seen = regs.map((m) => Atomics.load(m.controlViews().ctl, REQ_SIGNAL));
      const events: FaultEvent[] = [];
      for (const m of regs) if (events.length < max) events.push(...this.drain(m, max - events.length));
      const left = deadline - performance.now();
      if (events.length > 0 || left <= 0) return events;
      // One region: sleep on its ring's signal; several: look at each in 1 ms slices.
      const [one] = regs;
      if (one && regs.length === 1) Atomics.wait(one.controlViews().ctl, REQ_SIGNAL, seen[0] as number, left);
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, regs.length === 0 ? left : Math.min(left, 1));
    }
  }

  register(mem: GuestMemory, opts: RegisterOptions = {}): void {
    this.live();
    const m = this.mem(mem, 'register');
    const r = resolveRange(m, 'register', opts.offset, opts.length);
    if (opts.wp)
      throw new InvalidArgumentError('register: wp', 'false (the fallback has no write-protect faults)', true);
    const { received, ctl } = m.controlViews();
    const views = m.views();
    for (let off = r.offset; off < r.offset + r.length; off += m.pageSize) {
      const v = Math.floor(off / m.handle.viewBytes);
      const within = off - v * m.handle.viewBytes;
      const view = views[v] as Uint8Array;
      const words = new Int32Array(view.buffer, view.byteOffset + within, m.pageSize >>> 2);
      setBits(received, off / m.pageSize, 1, !isZeroWords(words, 0, words.length));
    }
    Atomics.add(ctl, REGISTRATIONS, 1);
    setFlag(ctl, FLAG_DEMAND, true);
    const reg = this.regs.get(m);
    if (reg) reg.ranges++;
    else this.regs.set(m, { ranges: 1, stop: this.consume(m) });
  }

  unregister(mem: GuestMemory, offset?: number, length?: number): void {
    const m = this.mem(mem, 'unregister');
    const r = resolveRange(m, 'unregister', offset, length);
    const reg = this.regs.get(m);
    if (!reg) return;
    const { received, ctl } = m.controlViews();
    setBits(received, r.offset / m.pageSize, r.length / m.pageSize, true);
    const whole = offset === undefined && length === undefined;
    const drop = whole ? reg.ranges : 1;
    reg.ranges -= drop;
    if (Atomics.sub(ctl, REGISTRATIONS, drop) - drop <= 0) {
      Atomics.store(ctl, REGISTRATIONS, 0);
      setFlag(ctl, FLAG_DEMAND, false);
    }
    if (reg.ranges <= 0) {
      reg.stop();
      this.regs.delete(m);
    }
    wakeAll(ctl);
  }

  copy(mem: GuestMemory, offset: number, src: Uint8Array, opts: InstallOptions = {}): number {
    this.live();
    const m = this.mem(mem, 'copy');
    checkInstall(m, 'copy', offset, src);
    const { received, ctl } = m.controlViews();
    const first = offset / m.pageSize;
    const pages = src.length / m.pageSize;
    for (let i = 0; i < pages; i++) {
      if (testBit(received, first + i)) {
        throw new AlreadyPlacedError(`copy: page at offset ${offset + i * m.pageSize} is already present`, {
          errno: 17,
          syscall: 'cooperative copy',
          copied: i * m.pageSize,
        });
      }
      this.install(m, (first + i) * m.pageSize, src.subarray(i * m.pageSize, (i + 1) * m.pageSize));
    }
    if (opts.wake ?? true) wakeAll(ctl);
    return src.length;
  }

  copyPages(mem: GuestMemory, offsets: ArrayLike<number>, src: Uint8Array, opts: InstallOptions = {}): number {
    this.live();
    const m = this.mem(mem, 'copyPages');
    const offs = checkPages(m, 'copyPages', offsets, src);
    const { received, ctl } = m.controlViews();
    let copied = 0;
    for (let i = 0; i < offs.length; i++) {
      const off = offs[i] as number;
      if (testBit(received, off / m.pageSize)) continue;
      this.install(m, off, src.subarray(i * m.pageSize, (i + 1) * m.pageSize));
      copied += m.pageSize;
    }
    if (opts.wake ?? true) wakeAll(ctl);
    return copied;
  }

  zeroPage(mem: GuestMemory, offset: number, length: number, opts: InstallOptions = {}): number {
    this.live();
    const m = this.mem(mem, 'zeroPage');
    const r = resolveRange(m, 'zeroPage', offset, length);
    return this.copy(m, r.offset, new Uint8Array(r.length), opts);
  }

  wake(mem: GuestMemory, offset: number, length: number): void {
    const m = this.mem(mem, 'wake');
    resolveRange(m, 'wake', offset, length);
    wakeAll(m.controlViews().ctl);
  }

  discard(mem: GuestMemory, offset: number, length: number): void {
    const m = this.mem(mem, 'discard');
    const r = resolveRange(m, 'discard', offset, length);
    writeRaw(m, r.offset, new Uint8Array(r.length));
    setBits(m.controlViews().received, r.offset / m.pageSize, r.length / m.pageSize, false);
  }

  close(): void {
    if (this.closed) return;
    if (this.regs.size > 0) throw new BusyError('userfault still has registered ranges; unregister them first');
    this.closed = true;
  }

  private install(m: GuestMemoryImpl, offset: number, page: Uint8Array): void {
    writeRaw(m, offset, page);
    // Publish after the bytes: a waiter that sees the bit sees the page.
    setBits(m.controlViews().received, offset / m.pageSize, 1, true);
  }

  /** Reads the region's request ring whenever a request is published; returns a stop function. */
  private consume(m: GuestMemoryImpl): () => void {
    const { ctl } = m.controlViews();
    let active = true;
    const loop = async (): Promise<void> => {
      while (active) {
        const seen = Atomics.load(ctl, REQ_SIGNAL);
        // Without a handler the requests stay in the ring (for waitFaults, or a later handler).
        const handler = this.handler;
        const events = handler ? this.drain(m) : [];
        if (handler && events.length > 0) {
          handler(events);
          continue;
        }
        const w = waitAsync(ctl, REQ_SIGNAL, seen);
        if (w.async) await w.value;
      }
    };
    void loop();
    return () => {
      active = false;
      poke(ctl);
    };
  }

  /** The region's pending requests as fault events, at most `max`. */
  private drain(m: GuestMemoryImpl, max?: number): FaultEvent[] {
    const batch: RingRequest[] = [];
    drainFaultRequests(m.controlViews().ctl, batch, max);
    return batch.map((q) => ({
      regionId: m.handle.id,
      offset: q.page * m.pageSize,
      address: q.page * m.pageSize,
      flags: q.flags,
      tid: q.tid,
      timestampNs: q.timestampNs,
    }));
  }

  private live(): void {
    if (this.closed) throw new InvalidArgumentError('userfault', 'an open userfault', 'closed');
  }

  private mem(mem: GuestMemory, what: string): GuestMemoryImpl {
    const m = memImpl(mem, what);
    m.checkLive(what);
    return m;
  }
}

/** Atomics.waitAsync (ES2024; present in Node 20, absent from the es2023 lib typings). */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(ta: Int32Array, index: number, value: number): { async: boolean; value: Promise<string> | string };
  }
).waitAsync;

/** Wakes the ring's readers without a request (they look again). */
function poke(ctl: Int32Array): void {
  Atomics.add(ctl, REQ_SIGNAL, 1);
  Atomics.notify(ctl, REQ_SIGNAL);
}

function wakeAll(ctl: Int32Array): void {
  Atomics.add(ctl, INSTALL_SEQ, 1);
  Atomics.notify(ctl, INSTALL_SEQ);
}

/** Writes bytes into the region's views, bypassing the memory API's modes (an install). */
function writeRaw(m: GuestMemoryImpl, offset: number, bytes: Uint8Array): void {
  const views = m.views();
  let done = 0;
  while (done < bytes.length) {
    const a = offset + done;
    const v = Math.floor(a / m.handle.viewBytes);
    const off = a - v * m.handle.viewBytes;
    const view = views[v] as Uint8Array;
    const n = Math.min(bytes.length - done, view.length - off);
    view.set(bytes.subarray(done, done + n), off);
    done += n;
  }
}
