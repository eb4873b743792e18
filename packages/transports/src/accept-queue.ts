import type { Channel } from './channel.js';
import { armDeadline } from './deadline.js';
import type { TransportError } from './errors.js';
import type { AcceptOptions } from './listener.js';

type Waiter = { deliver: (ch: Promise<Channel>) => void; fail: (e: TransportError) => void };

/**
 * Arrived connections in arrival order and the accept calls waiting for them. An entry is a
 * promise because a TLS connection is queued at arrival, before its handshake ends; the
 * accept deadline covers only the wait for an arrival.
 */
export class AcceptQueue {
  readonly #uri: string;
  #ready: Promise<Channel>[] = [];
  #waiters: Waiter[] = [];
  #closed: TransportError | null = null;

  constructor(uri: string) {
    this.#uri = uri;
  }

  get pending(): number {
    return this.#ready.length;
  }

  get closed(): boolean {
    return this.#closed !== null;
  }

  push(entry: Promise<Channel>): void {
    entry.catch(() => undefined);
    if (this.#closed) {
      entry.then(
        (ch) => ch.cancel('listener closed before the connection was accepted'),
        () => undefined,
      );
      return;
    }
    const w = this.#waiters.shift();
    if (w) w.deliver(entry);
    else this.#ready.push(entry);
  }

  accept(opts: AcceptOptions = {}): Promise<Channel> {
    const next = this.#ready.shift();
    if (next) return next;
    if (this.#closed) return Promise.reject(this.#closed);
    return new Promise<Channel>((resolve, reject) => {
      let disarm = (): void => undefined;
      const w: Waiter = {
        deliver: (entry) => {
          disarm();
          resolve(entry);
        },
        fail: (e) => {
          disarm();
          reject(e);
        },
      };
      this.#waiters.push(w);
      disarm = armDeadline(opts, 'accept on', this.#uri, (err) => {
        this.#waiters = this.#waiters.filter((x) => x !== w);
        reject(err);
      });
    });
  }

  /** Rejects waiting accepts with `err`; cancels arrived, unaccepted connections. */
  close(err: TransportError): void {
    if (this.#closed) return;
    this.#closed = err;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.fail(err);
    const ready = this.#ready;
    this.#ready = [];
    for (const entry of ready) {
      entry.then(
        (ch) => ch.cancel('listener closed before the connection was accepted'),
        () => undefined,
      );
    }
  }
}
