/**
 * The shared control block of one vCPU (a SharedArrayBuffer both threads map):
 *
 * | Int32 word | name | written by |
 * |---|---|---|
 * | 0 | `SEQ`: bumped after every command, the worker waits on it | main |
 * | 1 | `REQ`: requested run state (`RUN`, `STOP`, `EXIT`) | main |
 * | 2 | `STATE`: actual run state (`CREATED` … `EXITED`), notified on change | worker |
 * | 3 | `THROTTLE`: percent of time the vCPU sleeps (auto-converge) | main |
 * | 4 | `RING_HEAD`: serial ring write index | worker |
 * | 5 | `RING_TAIL`: serial ring read index | main |
 * | 6 | `FAULT_LEN`: bytes of the fault message | worker |
 * | 7 | `ACK`: the `SEQ` under which the worker last parked, notified | worker |
 * | 8 | `TID`: the vCPU thread's kernel thread id (0 until it started) | worker |
 *
 * Float64 slots (byte 64): `STEPS` executed, `STOP_AT` (∞ = none), `PACE` steps/s (0 = unpaced),
 * `TX` serial bytes sent, `TX_DROPPED`. Bytes 128–383: the fault message; 512–4607: the serial ring.
 */
export const REQ = { RUN: 0, STOP: 1, EXIT: 2 } as const;
export const VSTATE = { CREATED: 0, RUNNING: 1, STOPPED: 2, HALTED: 3, FAULTED: 4, EXITED: 5 } as const;
export type VcpuStateCode = (typeof VSTATE)[keyof typeof VSTATE];

const W = { SEQ: 0, REQ: 1, STATE: 2, THROTTLE: 3, RING_HEAD: 4, RING_TAIL: 5, FAULT_LEN: 6, ACK: 7, TID: 8 } as const;
const F = { STEPS: 0, STOP_AT: 1, PACE: 2, TX: 3, TX_DROPPED: 4 } as const;
const F64_OFFSET = 64;
const FAULT_OFFSET = 128;
const FAULT_BYTES = 256;
const RING_OFFSET = 512;
export const SERIAL_RING_BYTES = 4096;
const CONTROL_BYTES = RING_OFFSET + SERIAL_RING_BYTES;
/** Ring indices run modulo twice the ring size, so full and empty differ. */
const RING_WRAP = 2 * SERIAL_RING_BYTES;
const ringUsed = (head: number, tail: number) => (head - tail + RING_WRAP) % RING_WRAP;

export class VcpuControl {
  readonly buffer: SharedArrayBuffer;
  readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly bytes: Uint8Array;

  constructor(buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(CONTROL_BYTES);
    this.i32 = new Int32Array(this.buffer, 0, 16);
    this.f64 = new Float64Array(this.buffer, F64_OFFSET, 8);
    this.bytes = new Uint8Array(this.buffer);
    if (!buffer) {
      this.i32[W.REQ] = REQ.STOP;
      this.f64[F.STOP_AT] = Number.POSITIVE_INFINITY;
    }
  }

  // ---- commands (main thread) ----
  /** Applies a command and wakes the worker; returns the new SEQ (see {@link waitParked}). */
  private command(fn: () => void): number {
    fn();
    const seq = Atomics.add(this.i32, W.SEQ, 1) + 1;
    this.lastSeq = seq;
    Atomics.notify(this.i32, W.SEQ);
    return seq;
  }

  /** Main side (not shared): the SEQ of the last command issued through this object. */
  lastSeq = 0;

  /** True when the worker has parked since the last command (its STATE word is then current). */
  get parkedSinceLastCommand(): boolean {
    return this.ack >= this.lastSeq;
  }
  request(req: (typeof REQ)[keyof typeof REQ]): number {
    return this.command(() => Atomics.store(this.i32, W.REQ, req));
  }
  setStopAt(step: number): void {
    this.command(() => {
      this.f64[F.STOP_AT] = step;
    });
  }
  setPace(stepsPerSecond: number): void {
    this.command(() => {
      this.f64[F.PACE] = stepsPerSecond;
    });
  }
  setThrottle(percent: number): void {
    this.command(() => Atomics.store(this.i32, W.THROTTLE, Math.max(0, Math.min(99, Math.round(percent)))));
  }
  /** Only while stopped: sets the executed-step counter (restoring a migrated machine). */
  setSteps(steps: number): void {
    this.f64[F.STEPS] = steps;
  }
  /** Only while stopped (restore): marks the vCPU halted/faulted, or runnable again (`STOPPED`). */
  setState(state: VcpuStateCode): void {
    Atomics.store(this.i32, W.STATE, state);
    Atomics.notify(this.i32, W.STATE);
  }

  // ---- shared reads ----
  get seq(): number {
    return Atomics.load(this.i32, W.SEQ);
  }
  get req(): number {
    return Atomics.load(this.i32, W.REQ);
  }
  get state(): VcpuStateCode {
    return Atomics.load(this.i32, W.STATE) as VcpuStateCode;
  }
  get steps(): number {
    return this.f64[F.STEPS] as number;
  }
  get stopAt(): number {
    return this.f64[F.STOP_AT] as number;
  }
  get pace(): number {
    return this.f64[F.PACE] as number;
  }
  get throttle(): number {
    return Atomics.load(this.i32, W.THROTTLE);
  }
  get txBytes(): number {
    return this.f64[F.TX] as number;
  }
  get txDropped(): number {
    return this.f64[F.TX_DROPPED] as number;
  }
  /** The fault message the worker recorded. */
  get fault(): string {
    const n = Atomics.load(this.i32, W.FAULT_LEN);
    return new TextDecoder().decode(this.bytes.slice(FAULT_OFFSET, FAULT_OFFSET + n));
  }

  /** Kernel thread id of the vCPU thread (0 before it started). */
  get tid(): number {
    return Atomics.load(this.i32, W.TID);
  }

  /** Worker: records its kernel thread id. */
  setTid(tid: number): void {
    Atomics.store(this.i32, W.TID, tid);
  }

  get ack(): number {
    return Atomics.load(this.i32, W.ACK);
  }

  /**
   * Resolves once the worker has parked after seeing command `seq` (so it executes no bundle until
   * the next command). Rejects after `timeoutMs` without an acknowledgement.
   */
  async waitParked(seq: number, timeoutMs = 30_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const ack = Atomics.load(this.i32, W.ACK);
      if (ack >= seq) return;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`vCPU did not park within ${timeoutMs} ms (ack ${ack} < ${seq})`);
      const r = Atomics.waitAsync(this.i32, W.ACK, ack, Math.min(left, 1000));
      if (r.async) await r.value;
    }
  }

  // ---- worker side ----
  /** Worker: parked (or exiting) having seen command `seq`. */
  parkAck(seq: number): void {
    Atomics.store(this.i32, W.ACK, seq);
    Atomics.notify(this.i32, W.ACK);
  }
  addSteps(n: number): void {
    this.f64[F.STEPS] = (this.f64[F.STEPS] as number) + n;
  }
  setFault(message: string): void {
    const enc = new TextEncoder().encode(message).subarray(0, FAULT_BYTES);
    this.bytes.set(enc, FAULT_OFFSET);
    Atomics.store(this.i32, W.FAULT_LEN, enc.length);
  }
  /** Serial transmit from the vCPU: into the ring, or counted as dropped when it is full. */
  serialPush(byte: number): void {
    const head = Atomics.load(this.i32, W.RING_HEAD);
    const tail = Atomics.load(this.i32, W.RING_TAIL);
    this.f64[F.TX] = (this.f64[F.TX] as number) + 1;
    if (ringUsed(head, tail) >= SERIAL_RING_BYTES) {
      this.f64[F.TX_DROPPED] = (this.f64[F.TX_DROPPED] as number) + 1;
      return;
    }
    this.bytes[RING_OFFSET + (head % SERIAL_RING_BYTES)] = byte;
    Atomics.store(this.i32, W.RING_HEAD, (head + 1) % RING_WRAP);
  }

  /** Main side: takes the bytes the vCPU has sent since the last drain. */
  serialDrain(): Uint8Array {
    const head = Atomics.load(this.i32, W.RING_HEAD);
    const tail = Atomics.load(this.i32, W.RING_TAIL);
    const out = new Uint8Array(ringUsed(head, tail));
    for (let i = 0; i < out.length; i++) out[i] = this.bytes[RING_OFFSET + ((tail + i) % SERIAL_RING_BYTES)] as number;
    Atomics.store(this.i32, W.RING_TAIL, head);
    return out;
  }

  /** Main side, while stopped: resets the serial counters (restore). */
  resetSerial(): void {
    this.f64[F.TX] = 0;
    this.f64[F.TX_DROPPED] = 0;
    Atomics.store(this.i32, W.RING_TAIL, Atomics.load(this.i32, W.RING_HEAD));
  }

  /** Resolves when the worker parks again (ACK moves past `ack`), or after `timeoutMs`. */
  async waitAck(ack: number, timeoutMs = 1000): Promise<void> {
    const r = Atomics.waitAsync(this.i32, W.ACK, ack, timeoutMs);
    if (r.async) await r.value;
  }
}
