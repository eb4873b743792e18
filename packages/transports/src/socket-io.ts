import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ChannelIo } from './channel-io.js';
import type { ChannelInfo, ChannelTlsInfo } from './channel-types.js';
import { errnoOf, messageOf, TransportError } from './errors.js';
import type { TransportKind } from './uri.js';

/**
 * ChannelIo over a connected socket (`sock`), which may be a TLS session over `raw`.
 * Aborting resets the TCP connection (RST) so the peer sees an error rather than a clean end.
 */
export function socketIo(sock: Socket, raw: Socket, uri: string): ChannelIo {
  const released = new Promise<void>((resolve) => {
    if (sock.closed) resolve();
    else sock.once('close', () => resolve());
  });
  return {
    readable: sock,
    writable: sock,
    released,
    abort() {
      if (!raw.destroyed) {
        // Only the TCP socket: a TLS session over it closes itself when it closes. (Destroying the
        // TLS socket in the same tick as the reset crashes node 20 in TLSWrap.)
        try {
          raw.resetAndDestroy();
          return;
        } catch {
          raw.destroy();
        }
      }
      if (!sock.destroyed && sock === raw) sock.destroy();
    },
    release() {
      if (!sock.destroyed) sock.destroy();
    },
    explain: (err) => socketError(err, uri),
  };
}

/** Typed error for a socket / TLS stream failure. */
export function socketError(err: unknown, uri: string): TransportError {
  const errno = errnoOf(err);
  if (isTlsFailure(err)) {
    return new TransportError('E_TLS', `${uri}: TLS failure: ${messageOf(err)}`, { uri, errno, cause: err });
  }
  const what =
    errno === 'ECONNRESET'
      ? 'connection reset by peer'
      : errno === 'EPIPE'
        ? 'peer closed the connection (broken pipe)'
        : errno === 'ETIMEDOUT'
          ? 'connection timed out'
          : `connection failed: ${messageOf(err)}`;
  return new TransportError('E_CLOSED', `${uri}: ${what}`, { uri, errno, cause: err });
}

/** True for OpenSSL / node:tls errors. */
export function isTlsFailure(err: unknown): boolean {
  const errno = errnoOf(err) ?? '';
  if (errno.startsWith('ERR_SSL') || errno.startsWith('ERR_TLS')) return true;
  return typeof err === 'object' && err !== null && 'library' in err && err.library === 'SSL routines';
}

/** ChannelInfo of a connected socket. */
export function socketInfo(
  sock: Socket,
  transport: TransportKind,
  uri: string,
  unixPath: string | null,
  tls: ChannelTlsInfo | null,
): ChannelInfo {
  const info: ChannelInfo = { transport, uri, peer: unixPath ?? '', readable: true, writable: true, tls };
  if (sock.localAddress !== undefined) info.localAddress = sock.localAddress;
  if (sock.localPort !== undefined) info.localPort = sock.localPort;
  if (sock.remoteAddress !== undefined) info.remoteAddress = sock.remoteAddress;
  if (sock.remotePort !== undefined) info.remotePort = sock.remotePort;
  if (unixPath === null && sock.remoteAddress !== undefined) {
    const host = sock.remoteAddress.includes(':') ? `[${sock.remoteAddress}]` : sock.remoteAddress;
    info.peer = `${host}:${sock.remotePort ?? '?'}`;
  }
  return info;
}

/** TLS facts of an established session. */
export function tlsInfo(sock: TLSSocket, peerDn: string | null): ChannelTlsInfo {
  return { protocol: sock.getProtocol(), cipher: sock.getCipher()?.name ?? null, peerDn };
}
