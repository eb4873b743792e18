import { createReadStream, createWriteStream, fstatSync } from 'node:fs';
import { Socket } from 'node:net';
import { Channel } from './channel.js';
import type { ChannelOptions } from './channel-types.js';
import { withDeadline } from './deadline.js';
import { errnoOf, messageOf, TransportError } from './errors.js';
import { fileInfo, fileIo } from './file-io.js';
import { socketInfo, socketIo, tlsInfo } from './socket-io.js';
import { tlsClientHandshake } from './tls/tls-client.js';
import { tlsServerHandshake } from './tls/tls-server.js';
import type { TlsSettings } from './tls/tls-settings.js';

/** What an inherited descriptor refers to (from fstat). */
export type FdKind = 'socket' | 'fifo' | 'file' | 'char-device' | 'block-device' | 'directory' | 'other';

/** Classifies a descriptor with fstat. @throws TransportError E_FD when it is not open. */
export function fdKind(fd: number, uri = `fd:${fd}`): FdKind {
  let st: ReturnType<typeof fstatSync>;
  try {
    st = fstatSync(fd);
  } catch (e) {
    throw new TransportError('E_FD', `${uri}: descriptor ${fd} is not usable: ${messageOf(e)}`, {
      uri,
      errno: errnoOf(e),
      cause: e,
    });
  }
  if (st.isSocket()) return 'socket';
  if (st.isFIFO()) return 'fifo';
  if (st.isFile()) return 'file';
  if (st.isCharacterDevice()) return 'char-device';
  if (st.isBlockDevice()) return 'block-device';
  if (st.isDirectory()) return 'directory';
  return 'other';
}

export interface FdChannelOptions extends ChannelOptions {
  tls?: TlsSettings | null;
  /** Time limit for the TLS handshake (default none). */
  timeoutMs?: number;
}

/**
 * Wraps an inherited descriptor; the channel owns it from now on and closes it. A socket is
 * duplex (and may carry TLS); a pipe, file or device is one-way: written for an outgoing
 * migration, read for an incoming one, from its current position.
 */
export async function fdChannel(
  fd: number,
  direction: 'in' | 'out',
  uri: string,
  opts: FdChannelOptions,
): Promise<Channel> {
  const kind = fdKind(fd, uri);
  if (kind === 'directory' || kind === 'other') {
    throw new TransportError('E_FD', `${uri}: descriptor ${fd} is a ${kind}, not a socket, pipe or file`, { uri });
  }
  if (opts.tls && kind !== 'socket') {
    throw new TransportError('E_TLS', `${uri}: TLS needs a socket, descriptor ${fd} is a ${kind}`, { uri });
  }
  if (kind === 'socket' || kind === 'fifo') {
    const duplex = kind === 'socket';
    const sock = new Socket({
      fd,
      readable: duplex || direction === 'in',
      writable: duplex || direction === 'out',
      allowHalfOpen: true,
    });
    const peer = `fd ${fd} (${kind})`;
    if (!opts.tls) {
      const info = {
        ...socketInfo(sock, 'fd', uri, peer, null),
        readable: duplex || direction === 'in',
        writable: duplex || direction === 'out',
      };
      return new Channel(socketIo(sock, sock, uri), info, opts);
    }
    sock.on('error', () => undefined);
    const handshake =
      direction === 'out' ? tlsClientHandshake(sock, opts.tls, null, uri) : tlsServerHandshake(sock, opts.tls, uri);
    const { sock: tlsSock, peerDn } = await withDeadline(handshake, opts, 'TLS handshake on', uri, () =>
      sock.destroy(),
    );
    return new Channel(socketIo(tlsSock, sock, uri), socketInfo(sock, 'fd', uri, peer, tlsInfo(tlsSock, peerDn)), opts);
  }
  const stream =
    direction === 'out'
      ? createWriteStream('', { fd, autoClose: true })
      : createReadStream('', { fd, autoClose: true, highWaterMark: 1 << 20 });
  return new Channel(fileIo(stream, direction, uri), fileInfo('fd', uri, `fd ${fd} (${kind})`, direction), opts);
}
