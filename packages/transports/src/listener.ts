import type { Channel } from './channel.js';
import type { DeadlineOptions } from './deadline.js';
import type { MigrationUri } from './uri.js';

/** Options of {@link Listener.accept}: a time limit for a connection to arrive, or a signal. */
export type AcceptOptions = DeadlineOptions;

/**
 * The incoming side of a migration URI. Connections are handed out **in arrival order**: the
 * first accepted channel is QEMU's main stream, later ones are multifd or postcopy-preempt
 * channels (identified by their content, not their position). `exec:`, `file:` and `fd:`
 * carry exactly one channel.
 */
export interface Listener {
  /** The URI as actually bound (`tcp:HOST:0` reports the chosen port). */
  readonly uri: string;
  readonly address: MigrationUri;
  /** Connections that arrived and were not accepted yet. */
  readonly pending: number;
  /**
   * The next channel in arrival order. Rejects with E_TIMEOUT / E_CANCELLED when none arrives
   * in time, E_TLS / E_TLS_AUTHZ / E_TIMEOUT when that connection's TLS handshake failed (the
   * next accept returns the connection after it), E_CLOSED once closed.
   */
  accept(options?: AcceptOptions): Promise<Channel>;
  /** Stops listening. Accepted channels stay open; arrived but unaccepted ones are cancelled. */
  close(): Promise<void>;
}
