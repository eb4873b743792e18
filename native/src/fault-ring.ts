import { REQ_HEAD, REQ_SIGNAL, REQ_TAIL, RING_BASE, RING_CAP, SLOT_INTS } from './control.js';

/**
 * The cooperative fault-request ring in a region's control block (see control.ts): vCPU threads
 * (many producers) publish a request for a missing page; the postcopy thread (one consumer) reads
 * them in order. A slot is published by storing `seq = claimed index + 1` last.
 */
export interface RingRequest {
  page: number;
  tid: number;
  flags: number;
  timestampNs: bigint;
}

/** Publishes a request for `page`; waits (briefly, repeatedly) while the ring is full. */
export function postFaultRequest(ctl: Int32Array, page: number, tid: number, flags: number): void {
  for (;;) {
    const head = Atomics.load(ctl, REQ_HEAD);
    const tail = Atomics.load(ctl, REQ_TAIL);
    if (((head - tail) | 0) >= RING_CAP) {
      Atomics.wait(ctl, REQ_TAIL, tail, 50);
      continue;
    }
    if (Atomics.compareExchange(ctl, REQ_HEAD, head, (head + 1) | 0) !== head) continue;
    const base = RING_BASE + ((head >>> 0) % RING_CAP) * SLOT_INTS;
    const ts = process.hrtime.bigint();
    ctl[base + 1] = page;
    ctl[base + 2] = tid;
    ctl[base + 3] = flags;
    ctl[base + 4] = Number(ts & 0xffffffffn) | 0;
    ctl[base + 5] = Number(ts >> 32n) | 0;
    Atomics.store(ctl, base, (head + 1) | 0);
    Atomics.add(ctl, REQ_SIGNAL, 1);
    Atomics.notify(ctl, REQ_SIGNAL);
    return;
  }
}

/** Reads the published requests, at most `max` (consumer side); frees their slots. */
export function drainFaultRequests(ctl: Int32Array, out: RingRequest[], max = Number.POSITIVE_INFINITY): void {
  for (let n = 0; n < max; n++) {
    const tail = Atomics.load(ctl, REQ_TAIL);
    if (tail === Atomics.load(ctl, REQ_HEAD)) return;
    const base = RING_BASE + ((tail >>> 0) % RING_CAP) * SLOT_INTS;
    if (Atomics.load(ctl, base) !== ((tail + 1) | 0)) return; // claimed, not yet published
    const lo = BigInt((ctl[base + 4] as number) >>> 0);
    const hi = BigInt((ctl[base + 5] as number) >>> 0);
    out.push({
      page: ctl[base + 1] as number,
      tid: ctl[base + 2] as number,
      flags: ctl[base + 3] as number,
      timestampNs: (hi << 32n) | lo,
    });
    Atomics.store(ctl, REQ_TAIL, (tail + 1) | 0);
    Atomics.notify(ctl, REQ_TAIL);
  }
}
