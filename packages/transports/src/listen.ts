import { TransportError } from './errors.js';
import { execChannel } from './exec-io.js';
import { fdChannel } from './fd-io.js';
import { fileChannel } from './file-io.js';
import { formatUri } from './format-uri.js';
import type { Listener } from './listener.js';
import { parseUri } from './parse-uri.js';
import { SingleListener } from './single-listener.js';
import { SocketListener } from './socket-listener.js';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, type ListenOptions } from './transport-options.js';
import type { MigrationUri } from './uri.js';

/**
 * Opens the incoming side of a migration URI (`-incoming` / `migrate-incoming`): listens on a
 * socket (TLS server when `options.tls` is set; `tcp:HOST:0` picks a free port, see
 * `listener.uri`), or starts the single `exec:` / `file:` / `fd:` channel.
 * @throws TransportError E_BAD_URI, E_LISTEN, E_TLS, E_EXEC, E_FILE, E_FD.
 */
export async function listen(target: string | MigrationUri, options: ListenOptions = {}): Promise<Listener> {
  const uri = typeof target === 'string' ? parseUri(target) : target;
  const text = typeof target === 'string' ? target : formatUri(target);
  if (options.tls && (uri.transport === 'exec' || uri.transport === 'file')) {
    throw new TransportError('E_TLS', `${text}: TLS is only available on tcp:, unix: and fd: sockets`, { uri: text });
  }
  switch (uri.transport) {
    case 'tcp':
    case 'unix':
      return SocketListener.open(uri, options);
    case 'fd': {
      const timeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
      return new SingleListener(uri, await fdChannel(uri.fd, 'in', text, { ...options, timeoutMs }));
    }
    case 'exec':
      return new SingleListener(uri, await execChannel(uri.command, 'in', text, options));
    case 'file':
      return new SingleListener(uri, await fileChannel(uri.path, uri.offset, 'in', text, options));
  }
}
