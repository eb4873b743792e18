import { MigrationStreamError } from '../errors.js';
import { MigrationFile, type MigrationSink } from './migration-file.js';
import { type PageRequest, SourceReturnPath } from './source-return-path.js';

/** How long the source waits for the destination's SHUT after the last byte. */
export const SHUT_TIMEOUT_MS = 60_000;

/** The outgoing connection: a transports `Channel` fits. */
export interface OutgoingChannel extends MigrationSink {
  /** Closes the sending side after the last byte (socket half-close, file close, exec exit). */
  end(): Promise<void>;
  /** Aborts: pending writes fail, the peer sees a reset. */
  cancel(reason?: string | Error): void;
  /** The receiving direction (sockets only): the return path is read from it. */
  chunks?(): AsyncIterable<Uint8Array>;
  /** Whether the channel can be read (false for exec:, file:). */
  readonly info?: { readonly readable: boolean };
}

/** Opens one connection to the destination (connect + TLS); the signal aborts it. */
export type OpenChannel = (signal: AbortSignal) => Promise<OutgoingChannel>;

export interface OutgoingLinkOptions {
  /** Read the return path on the main channel (`return-path` or `postcopy-ram`). */
  returnPath: boolean;
  /** Connect the postcopy-preempt channel right after the main one (QEMU 7.2 does it at start). */
  preempt: boolean;
  onRequest?(req: PageRequest): void;
  /** The return path failed (a reader error or its end without SHUT). */
  onReturnPathFailure?(err: Error): void;
}

/**
 * The connections of one outgoing migration (or of one postcopy recovery): the main channel and
 * its stream, the return path read from the main channel's other direction, and the
 * postcopy-preempt channel — a second connection to the same address, opened right after the
 * main one so that the destination, which assigns channels by accept order, sees main first.
 */
export class OutgoingLink {
  readonly channel: OutgoingChannel;
  readonly file: MigrationFile;
  readonly rp: SourceReturnPath | undefined;
  private preemptChannel: OutgoingChannel | undefined;
  private preemptFile: MigrationFile | undefined;
  private preemptError: Error | undefined;
  private readonly preemptOpen: Promise<void> | undefined;
  private cancelled: Error | undefined;
  private preemptInUse = false;

  private constructor(channel: OutgoingChannel, open: OpenChannel, signal: AbortSignal, o: OutgoingLinkOptions) {
    this.channel = channel;
    this.file = new MigrationFile(channel);
    if (o.returnPath) {
      if (!channel.chunks || channel.info?.readable === false) {
        throw new MigrationStreamError(
          'E_UNSUPPORTED_FEATURE',
          'the return path (return-path / postcopy-ram) needs a two-way channel (tcp:, unix:, fd: socket), not a pipe or file',
          { channel: 'return-path' },
        );
      }
      this.rp = new SourceReturnPath(channel.chunks(), {
        ...(o.onRequest ? { onRequest: o.onRequest } : {}),
        ...(o.onReturnPathFailure ? { onFailure: o.onReturnPathFailure } : {}),
      });
    }
    if (o.preempt) {
      this.preemptOpen = open(signal).then(
        (ch) => {
          if (this.cancelled) {
            ch.cancel(this.cancelled);
            return;
          }
          this.preemptChannel = ch;
          this.preemptFile = new MigrationFile(ch, { bufferBytes: 256 << 10 });
        },
        (err: unknown) => {
          this.preemptError = err instanceof Error ? err : new Error(String(err));
        },
      );
    }
  }

  /** Connects the main channel (and starts connecting the preempt channel). */
  static async open(open: OpenChannel, signal: AbortSignal, o: OutgoingLinkOptions): Promise<OutgoingLink> {
    const ch = await open(signal);
    try {
      return new OutgoingLink(ch, open, signal, o);
    } catch (err) {
      ch.cancel(err as Error);
      throw err;
    }
  }

  /**
   * The preempt channel's stream once connected (postcopy switchover step 1); rejects if it
   * failed. From then on its failures count (before, an unused preempt channel may break freely).
   */
  async preempt(): Promise<MigrationFile> {
    await this.preemptOpen;
    if (this.preemptError) throw this.preemptError;
    if (!this.preemptFile) {
      throw new MigrationStreamError('E_BAD_VALUE', 'postcopy-preempt is not enabled for this migration');
    }
    this.preemptInUse = true;
    return this.preemptFile;
  }

  /** The preempt channel's stream, if it is connected. */
  get preemptStream(): MigrationFile | undefined {
    return this.preemptFile;
  }

  /** Bytes written on every channel of this link. */
  get bytesWritten(): number {
    return this.file.bytesWritten + (this.preemptFile?.bytesWritten ?? 0);
  }

  /** Throws the first failure of a channel or of the return path. */
  throwIfFailed(): void {
    this.file.throwIfFailed();
    if (this.preemptInUse) this.preemptFile?.throwIfFailed();
    this.rp?.throwIfFailed();
  }

  /**
   * Ends the sending sides after the last byte. The preempt channel is ended when postcopy used
   * it (its EOS was flushed before); an unused one (the migration completed in precopy) is dropped.
   */
  async end(): Promise<void> {
    await this.channel.end();
    if (!this.preemptChannel) return;
    if (this.preemptInUse) await this.preemptChannel.end();
    else this.preemptChannel.cancel('migration completed in precopy: the preempt channel was not used');
  }

  /** Aborts every channel; later writes fail with `reason`. */
  cancel(reason: Error): void {
    this.cancelled ??= reason;
    this.file.fail(reason);
    this.preemptFile?.fail(reason);
    this.channel.cancel(reason);
    this.preemptChannel?.cancel(reason);
  }
}
