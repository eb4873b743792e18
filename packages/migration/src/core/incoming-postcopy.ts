import type { SectionLoader } from '../stream/section-loader.js';
import type { MigCommand } from '../wire/command.js';
import type { RpMessage } from '../wire/return-path.js';

/** QEMU's PostcopyState on the destination (spec §9.2): NONE → ADVISE → DISCARD → LISTENING → RUNNING → END. */
export type PostcopyPhase = 'none' | 'advise' | 'discard' | 'listening' | 'running' | 'end';

/** The current main connection, as the postcopy destination sees it. */
export interface MainLink {
  /** Sends one return-path message to the source; rejects when the connection is gone. */
  send(m: RpMessage): Promise<void>;
  /**
   * Breaks the main connection with `err` (the preempt channel failed): the driver's reader
   * stops and the migration pauses with `err` as the reason.
   */
  fail(err: Error): void;
}

/** An extra accepted connection (the postcopy-preempt channel): its bytes, and how to drop it. */
export interface ExtraChannel {
  chunks(): AsyncIterable<Uint8Array>;
  cancel(reason?: string | Error): void;
  close(): Promise<unknown>;
}

/**
 * What a destination driver (`IncomingMigration`, the store receiver) needs from a postcopy
 * destination. Implemented by `@e2k-migrate/postcopy` (`PostcopyIncoming`), injected here so the
 * core does not depend on userfaultfd. The driver owns the connections and the reading loop;
 * this object owns guest-memory placement, page requests, the preempt channel and statistics.
 */
export interface IncomingPostcopy {
  /** The destination's postcopy state. */
  readonly phase: PostcopyPhase;
  /** The postcopy-preempt capability is on: a second connection carries urgent pages. */
  readonly preempt: boolean;
  /**
   * Handles a postcopy command of the main stream: POSTCOPY_ADVISE, POSTCOPY_RAM_DISCARD,
   * POSTCOPY_LISTEN, POSTCOPY_RUN, RECV_BITMAP, POSTCOPY_RESUME (others are not its business).
   * Typed errors (`E_POSTCOPY_*`, `E_BAD_RAM_OFFSET`) name the byte offset `at`.
   */
  command(c: MigCommand, at: number): Promise<void>;
  /**
   * Wraps the `ram` section loader: bodies read before POSTCOPY_LISTEN go to `inner` (precopy),
   * later ones through the postcopy placement path (PostcopyTmpPage of channel 0).
   */
  wrapRamLoader(inner: SectionLoader): SectionLoader;
  /** The current main connection with its open return path (undefined while paused). */
  attachMain(link: MainLink | undefined): void;
  /** Hands over the postcopy-preempt connection (accepted after the main one, also after recovery). */
  attachPreempt(ch: ExtraChannel): void;
  /**
   * The migration broke while running (postcopy-paused): drop partially assembled host pages,
   * stop reading the preempt channel; keep userfaultfd registered and every placed page.
   */
  pause(reason: Error): void;
  /** Recovery connected (postcopy-recover): reading starts again on a new connection. */
  recovering(): void;
  /**
   * The main stream reached EOF: waits for the preempt channel's final EOS, places what is left,
   * unregisters userfaultfd (the phase becomes `end`). Rejects with a typed error.
   */
  finish(): Promise<void>;
  /** A failure before RUN (or a shutdown): unregisters and releases everything. Idempotent. */
  abort(reason?: Error): void;
  /** `query-migrate` fields: postcopy-blocktime, postcopy-vcpu-blocktime, postcopy-latency…, x-postcopy-*. */
  query(): Record<string, unknown>;
}
