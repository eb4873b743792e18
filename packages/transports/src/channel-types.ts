import type { TransportError } from './errors.js';
import type { TransportKind } from './uri.js';

/** Tuning of a {@link Channel}'s buffers. */
export interface ChannelOptions {
  /**
   * Received-but-unread bytes at which the channel stops reading from the transport until the
   * reader catches up (default 4 MiB). An exact read larger than this still completes.
   */
  readHighWaterMark?: number;
  /** Accepted-but-unsent bytes above which `write` waits (default 4 MiB). */
  writeHighWaterMark?: number;
  /** Size of the buffer small writes are copied into (default 256 KiB). */
  batchBytes?: number;
  /** Writes up to this size are copied into the batch; larger ones are sent by reference (default 16 KiB). */
  copyMaxBytes?: number;
}

export const DEFAULT_CHANNEL_OPTIONS: Required<ChannelOptions> = {
  readHighWaterMark: 4 << 20,
  writeHighWaterMark: 4 << 20,
  batchBytes: 256 << 10,
  copyMaxBytes: 16 << 10,
};

/** TLS session facts of a channel. */
export interface ChannelTlsInfo {
  protocol: string | null;
  cipher: string | null;
  /** Peer certificate subject as an RFC 4514 DN (see distinguished-name.ts), null without one. */
  peerDn: string | null;
}

/** What a channel is connected to. */
export interface ChannelInfo {
  transport: TransportKind;
  /** The URI this channel was made from (for listeners: the listener's URI). */
  uri: string;
  /** Human-readable peer: `127.0.0.1:40122`, a unix path, `fd 5`, `pid 1234 (sh -c …)`, a file path. */
  peer: string;
  readable: boolean;
  writable: boolean;
  localAddress?: string;
  localPort?: number;
  remoteAddress?: string;
  remotePort?: number;
  tls: ChannelTlsInfo | null;
}

/** How a channel ended: the value of `channel.closed` (which never rejects). */
export type ChannelCloseInfo =
  | { reason: 'ended' }
  | { reason: 'error'; error: TransportError }
  | { reason: 'cancelled'; error: TransportError };
