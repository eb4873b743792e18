import type { ExtraChannel, RamSink, RamState } from '@e2k-migrate/migration';
import { PostcopyProtocolError } from './postcopy-protocol-error.js';
import { readPreemptChannel } from './preempt-reader.js';

/**
 * The destination's postcopy-preempt connection: attached when accepted (after the main one, and
 * again after a recovery), read from POSTCOPY_LISTEN (or POSTCOPY_RESUME) to its final EOS. A read
 * error while it matters goes to `onError` (the driver then pauses); a pause drops the channel.
 */
export class PreemptChannel {
  private readonly onError: (err: Error) => void;
  private ch: ExtraChannel | undefined;
  private task: Promise<void> | undefined;
  private generation = 0;
  private lost = false;
  /** Bytes read up to the final EOS. */
  bytes = 0;

  constructor(onError: (err: Error) => void) {
    this.onError = onError;
  }

  attach(ch: ExtraChannel): void {
    this.ch?.cancel('replaced by a new postcopy-preempt connection');
    this.generation++;
    this.ch = ch;
    this.task = undefined;
    this.lost = false;
  }

  /** Starts reading (once per connection). */
  start(ram: RamState, sink: RamSink): void {
    const ch = this.ch;
    if (ch === undefined || this.task !== undefined) return;
    const gen = this.generation;
    this.task = readPreemptChannel(ch, ram, sink).then((r) => {
      this.bytes += r.bytes;
      void ch.close().catch(() => undefined);
    });
    this.task.catch((err: Error) => {
      if (gen === this.generation) this.onError(err);
    });
  }

  /** Stops reading and drops the connection (pause, abort). */
  drop(reason: Error): void {
    this.generation++;
    if (this.ch !== undefined) this.lost = true;
    this.ch?.cancel(reason);
    this.ch = undefined;
    this.task = undefined;
  }

  /**
   * The main stream ended: resolves once the channel's final EOS was read. A connection lost in a
   * pause and never reconnected carries nothing more (the source sends everything on the main one).
   */
  async finished(): Promise<void> {
    if (this.task === undefined) {
      if (this.lost && this.ch === undefined) return;
      throw new PostcopyProtocolError(
        'E_POSTCOPY_SEQUENCE',
        'the main stream ended but the postcopy-preempt channel was never connected and read',
        { channel: 'preempt', record: 'preempt channel' },
      );
    }
    await this.task;
  }
}
