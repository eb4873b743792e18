import type { Channel } from './channel.js';
import { TransportError } from './errors.js';
import { execChannel } from './exec-io.js';
import { fdChannel } from './fd-io.js';
import { fileChannel } from './file-io.js';
import { formatUri } from './format-uri.js';
import { parseUri } from './parse-uri.js';
import { connectSocket } from './socket-connect.js';
import { type ConnectOptions, DEFAULT_CONNECT_TIMEOUT_MS } from './transport-options.js';
import type { MigrationUri } from './uri.js';

/**
 * Opens the outgoing side of a migration URI (QMP `migrate`): connects a socket (with TLS when
 * `options.tls` is set), runs an `exec:` command to write into, creates a `file:`, or wraps an
 * `fd:`. Extra channels (multifd, preempt) are further `connect` calls to the same URI.
 * @throws TransportError E_BAD_URI, E_CONNECT, E_TIMEOUT, E_CANCELLED, E_TLS, E_EXEC, E_FILE, E_FD.
 */
export async function connect(target: string | MigrationUri, options: ConnectOptions = {}): Promise<Channel> {
  const uri = typeof target === 'string' ? parseUri(target) : target;
  const text = typeof target === 'string' ? target : formatUri(target);
  const opts = { ...options, timeoutMs: options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS };
  if (opts.signal?.aborted) {
    throw new TransportError('E_CANCELLED', `connect to ${text}: cancelled before it started`, { uri: text });
  }
  if (opts.tls && (uri.transport === 'exec' || uri.transport === 'file')) {
    throw new TransportError('E_TLS', `${text}: TLS is only available on tcp:, unix: and fd: sockets`, { uri: text });
  }
  switch (uri.transport) {
    case 'tcp':
      if (uri.host === '') throw badTarget(text, 'connecting needs a host name or address');
      if (uri.port === 0) throw badTarget(text, 'port 0 means "any free port" and is only valid for listening');
      return connectSocket(uri, text, opts);
    case 'unix':
      return connectSocket(uri, text, opts);
    case 'fd':
      return fdChannel(uri.fd, 'out', text, opts);
    case 'exec':
      return execChannel(uri.command, 'out', text, opts);
    case 'file':
      return fileChannel(uri.path, uri.offset, 'out', text, opts);
  }
}

function badTarget(uri: string, what: string): TransportError {
  return new TransportError('E_BAD_URI', `bad migration URI "${uri}" for connect: ${what}`, { uri });
}
