import { connect as netConnect, type Socket } from 'node:net';
import { Channel } from './channel.js';
import { withDeadline } from './deadline.js';
import { errnoOf, messageOf, TransportError } from './errors.js';
import { socketInfo, socketIo, tlsInfo } from './socket-io.js';
import { tlsClientHandshake } from './tls/tls-client.js';
import type { ConnectOptions } from './transport-options.js';
import type { TcpUri, UnixUri } from './uri.js';

/** Connects a tcp: or unix: URI (plus TLS when asked) within the time limit. */
export async function connectSocket(target: TcpUri | UnixUri, uri: string, opts: ConnectOptions): Promise<Channel> {
  const raw =
    target.transport === 'tcp'
      ? netConnect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true })
      : netConnect({ path: target.path, allowHalfOpen: true });
  const connected = new Promise<void>((resolve, reject) => {
    const onError = (e: unknown): void => {
      raw.off('connect', onConnect);
      reject(
        new TransportError('E_CONNECT', `cannot connect to ${uri}: ${messageOf(e)}`, {
          uri,
          errno: errnoOf(e),
          cause: e,
        }),
      );
    };
    const onConnect = (): void => {
      raw.off('error', onError);
      resolve();
    };
    raw.once('error', onError);
    raw.once('connect', onConnect);
  });
  const work = connected
    .then(() => finish(raw, target, uri, opts))
    .catch((e: unknown) => {
      raw.destroy();
      throw e;
    });
  return withDeadline(work, opts, 'connect to', uri, () => {
    raw.on('error', () => undefined);
    raw.destroy();
  });
}

async function finish(raw: Socket, target: TcpUri | UnixUri, uri: string, opts: ConnectOptions): Promise<Channel> {
  const unixPath = target.transport === 'unix' ? target.path : null;
  if (!opts.tls)
    return new Channel(socketIo(raw, raw, uri), socketInfo(raw, target.transport, uri, unixPath, null), opts);
  raw.on('error', () => undefined); // surfaced through the TLS socket
  const host = target.transport === 'tcp' ? target.host : null;
  const { sock, peerDn } = await tlsClientHandshake(raw, opts.tls, host, uri);
  return new Channel(
    socketIo(sock, raw, uri),
    socketInfo(raw, target.transport, uri, unixPath, tlsInfo(sock, peerDn)),
    opts,
  );
}
