import type { ChannelOptions } from './channel-types.js';
import type { DeadlineOptions } from './deadline.js';
import type { TlsSettings } from './tls/tls-settings.js';

/** Default connect time limit (connect plus TLS handshake). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
/** Default time an accepted connection gets to finish its TLS handshake. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 30_000;

/** Options of {@link connect}. */
export interface ConnectOptions extends ChannelOptions, DeadlineOptions {
  /**
   * Time limit for connecting and the TLS handshake, default 30 s; 0 = none. For `exec:` and
   * `file:` it bounds starting the process / opening the file.
   */
  timeoutMs?: number;
  /** TLS on a socket transport (tcp:, unix:, fd: socket). */
  tls?: TlsSettings | null;
  /** `exec:`: receives the command's stderr as it arrives (a tail is always kept for errors). */
  onStderr?: (chunk: Uint8Array) => void;
  /** `file:`: fsync the file before `end()` resolves. */
  fsync?: boolean;
}

/** Options of {@link listen}. */
export interface ListenOptions extends ChannelOptions {
  /** TLS on a socket transport: server credentials and optional authz. */
  tls?: TlsSettings | null;
  /** listen(2) backlog (default 511, node's default). */
  backlog?: number;
  /** Time each accepted connection gets for its TLS handshake (default 30 s). */
  handshakeTimeoutMs?: number;
  /** Arrived-but-unaccepted connections kept; more are refused (default 64). */
  maxPending?: number;
  /** `exec:`: receives the command's stderr as it arrives. */
  onStderr?: (chunk: Uint8Array) => void;
}
