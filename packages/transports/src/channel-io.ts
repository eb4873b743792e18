import type { Readable, Writable } from 'node:stream';
import type { TransportError } from './errors.js';

/**
 * What a transport gives a {@link Channel}: the byte streams plus how to stop them and how to
 * explain their failures. One implementation per transport family (socket, exec, file).
 */
export interface ChannelIo {
  /** Source of incoming bytes; null for a write-only channel. */
  readonly readable: Readable | null;
  /** Sink of outgoing bytes; null for a read-only channel. */
  readonly writable: Writable | null;
  /** Resolves when every OS resource (socket, process, descriptor) is released. */
  readonly released: Promise<void>;
  /** Hard stop: reset the connection, kill the process, close the descriptor. */
  abort(): void;
  /** Orderly release after use (no reset). */
  release(): void;
  /** Turns a stream error into a typed error (may wait, e.g. for a process's exit status). */
  explain(err: unknown): TransportError | Promise<TransportError>;
  /** Called at a clean end of `readable`; may turn it into an error (exec: non-zero exit). */
  checkEof?(): Promise<TransportError | null>;
  /** Called once `writable` has finished after `end()` (exec: wait for exit; file: closed). */
  checkEnd?(): Promise<TransportError | null>;
  /** Registers the channel's failure callback for failures not seen on the streams. */
  watch?(fail: (e: TransportError) => void): void;
}
