import type { Channel } from './channel.js';
import { TransportError } from './errors.js';
import { formatUri } from './format-uri.js';
import type { AcceptOptions, Listener } from './listener.js';
import type { MigrationUri } from './uri.js';

/**
 * The incoming side of `exec:`, `file:` and `fd:`: exactly one channel, which exists from the
 * start. A second accept fails: extra channels (multifd, postcopy-preempt) need tcp: or unix:.
 */
export class SingleListener implements Listener {
  readonly uri: string;
  readonly address: MigrationUri;
  #channel: Channel | null;
  #closed = false;

  constructor(address: MigrationUri, channel: Channel) {
    this.address = address;
    this.uri = formatUri(address);
    this.#channel = channel;
  }

  get pending(): number {
    return this.#channel ? 1 : 0;
  }

  accept(_options?: AcceptOptions): Promise<Channel> {
    const ch = this.#channel;
    if (ch && !this.#closed) {
      this.#channel = null;
      return Promise.resolve(ch);
    }
    const why = this.#closed
      ? `listener ${this.uri} is closed`
      : `${this.address.transport}: carries a single channel and it was already accepted; extra channels (multifd, postcopy-preempt) need tcp: or unix:`;
    return Promise.reject(new TransportError('E_CLOSED', `${this.uri}: ${why}`, { uri: this.uri }));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#channel?.cancel('listener closed before the channel was accepted');
    this.#channel = null;
  }
}
