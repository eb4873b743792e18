import { lstat, unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { AcceptQueue } from './accept-queue.js';
import { Channel } from './channel.js';
import { withDeadline } from './deadline.js';
import { errnoOf, messageOf, TransportError } from './errors.js';
import { formatUri } from './format-uri.js';
import type { AcceptOptions, Listener } from './listener.js';
import { socketInfo, socketIo, tlsInfo } from './socket-io.js';
import { tlsServerHandshake } from './tls/tls-server.js';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, type ListenOptions } from './transport-options.js';
import type { TcpUri, UnixUri } from './uri.js';

/** A listening tcp: or unix: socket handing out channels in arrival order. */
export class SocketListener implements Listener {
  readonly uri: string;
  readonly address: TcpUri | UnixUri;
  readonly #server: Server;
  readonly #queue: AcceptQueue;
  readonly #opts: ListenOptions;
  /** Raw sockets whose TLS handshake is still running (destroyed when the listener closes). */
  readonly #handshaking = new Set<Socket>();

  private constructor(server: Server, address: TcpUri | UnixUri, opts: ListenOptions) {
    this.#server = server;
    this.address = address;
    this.uri = formatUri(address);
    this.#opts = opts;
    this.#queue = new AcceptQueue(this.uri);
    server.on('connection', (raw: Socket) => this.#onConnection(raw));
    server.on('error', (e) => this.#queue.close(listenError(this.uri, e)));
  }

  /** Binds and listens. @throws TransportError E_LISTEN. */
  static async open(target: TcpUri | UnixUri, opts: ListenOptions): Promise<SocketListener> {
    const uri = formatUri(target);
    if (target.transport === 'unix') await removeStaleSocket(target.path, uri);
    const server = createServer({ allowHalfOpen: true, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(listenError(uri, e)));
      const backlog = opts.backlog ?? 511;
      if (target.transport === 'tcp') {
        server.listen({ host: target.host === '' ? undefined : target.host, port: target.port, backlog }, resolve);
      } else server.listen({ path: target.path, backlog }, resolve);
    });
    server.removeAllListeners('error');
    let address: TcpUri | UnixUri = target;
    const bound = server.address();
    if (target.transport === 'tcp' && bound !== null && typeof bound === 'object') {
      address = { transport: 'tcp', host: target.host === '' ? bound.address : target.host, port: bound.port };
    }
    return new SocketListener(server, address, opts);
  }

  get pending(): number {
    return this.#queue.pending;
  }

  accept(options?: AcceptOptions): Promise<Channel> {
    return this.#queue.accept(options);
  }

  close(): Promise<void> {
    this.#queue.close(new TransportError('E_CLOSED', `listener ${this.uri} is closed`, { uri: this.uri }));
    for (const raw of this.#handshaking) raw.destroy();
    this.#handshaking.clear();
    return new Promise((resolve) => {
      if (!this.#server.listening) return resolve();
      this.#server.close();
      setImmediate(resolve);
    });
  }

  #onConnection(raw: Socket): void {
    const { uri } = this;
    raw.on('error', () => undefined); // the channel or the TLS layer reports errors
    if (this.#queue.closed || this.#queue.pending >= (this.#opts.maxPending ?? 64)) {
      raw.destroy();
      return;
    }
    const unixPath = this.address.transport === 'unix' ? this.address.path : null;
    const kind = this.address.transport;
    const tls = this.#opts.tls;
    if (!tls) {
      this.#queue.push(
        Promise.resolve(new Channel(socketIo(raw, raw, uri), socketInfo(raw, kind, uri, unixPath, null), this.#opts)),
      );
      return;
    }
    this.#handshaking.add(raw);
    const handshake = tlsServerHandshake(raw, tls, uri)
      .finally(() => this.#handshaking.delete(raw))
      .then(
        ({ sock, peerDn }) =>
          new Channel(
            socketIo(sock, raw, uri),
            socketInfo(raw, kind, uri, unixPath, tlsInfo(sock, peerDn)),
            this.#opts,
          ),
      );
    const timeoutMs = this.#opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    this.#queue.push(withDeadline(handshake, { timeoutMs }, 'TLS handshake on', uri, () => raw.destroy()));
  }
}

/** QEMU removes an old socket file before binding; anything else at the path is an error. */
async function removeStaleSocket(path: string, uri: string): Promise<void> {
  try {
    const st = await lstat(path);
    if (!st.isSocket()) {
      throw new TransportError('E_LISTEN', `cannot listen on ${uri}: ${path} exists and is not a socket`, {
        uri,
        errno: 'EEXIST',
      });
    }
    await unlink(path);
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return;
    if (e instanceof TransportError) throw e;
    throw listenError(uri, e);
  }
}

function listenError(uri: string, e: unknown): TransportError {
  return new TransportError('E_LISTEN', `cannot listen on ${uri}: ${messageOf(e)}`, {
    uri,
    errno: errnoOf(e),
    cause: e,
  });
}
