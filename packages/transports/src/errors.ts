/**
 * Errors raised by the transports package. Callers branch on `code`, never on the message.
 *
 * | code          | meaning                                                                  |
 * |---------------|--------------------------------------------------------------------------|
 * | E_BAD_URI     | the migration URI is malformed or names an unsupported transport         |
 * | E_BAD_ARGUMENT| an API argument is out of range (negative length, bad option)            |
 * | E_CONNECT     | the outgoing connection could not be made (refused, no such socket …)    |
 * | E_LISTEN      | the incoming side could not listen (address in use, permission …)       |
 * | E_TIMEOUT     | connect / accept / TLS handshake did not finish in time                  |
 * | E_TLS         | TLS handshake or verification failed (untrusted peer, hostname mismatch) |
 * | E_TLS_AUTHZ   | the client certificate is valid but its DN is not in the allow list      |
 * | E_TLS_CREDS   | a credentials directory is missing a file or holds an unusable one       |
 * | E_BAD_OBJECT  | an `object-add` / registry lookup names a bad or unknown object          |
 * | E_CLOSED      | the channel or listener is closed, or the peer reset the connection     |
 * | E_EOF         | the stream ended before an exact read could be satisfied                 |
 * | E_CANCELLED   | `cancel()` or an AbortSignal stopped the operation                       |
 * | E_EXEC        | the `exec:` command failed (exit status, signal, stderr tail)           |
 * | E_FILE        | a `file:` path could not be opened, read or written                      |
 * | E_FD          | an `fd:` descriptor is not open or is of an unusable kind                |
 * | E_ONE_WAY     | read on a write-only channel or write on a read-only one                 |
 */
export type TransportErrorCode =
  | 'E_BAD_URI'
  | 'E_BAD_ARGUMENT'
  | 'E_CONNECT'
  | 'E_LISTEN'
  | 'E_TIMEOUT'
  | 'E_TLS'
  | 'E_TLS_AUTHZ'
  | 'E_TLS_CREDS'
  | 'E_BAD_OBJECT'
  | 'E_CLOSED'
  | 'E_EOF'
  | 'E_CANCELLED'
  | 'E_EXEC'
  | 'E_FILE'
  | 'E_FD'
  | 'E_ONE_WAY';

export interface TransportErrorDetails {
  /** The migration URI (or path / object id) concerned. */
  uri?: string;
  /** Node / libc error name, e.g. `ECONNREFUSED`, `ENOENT`, `UNABLE_TO_VERIFY_LEAF_SIGNATURE`. */
  errno?: string;
  /** Bytes an exact read expected. */
  expected?: number;
  /** Bytes it got before the stream ended. */
  got?: number;
  /** Stream offset (bytes read before the failed read) where it happened. */
  offset?: number;
  /** `exec:` exit status (null when killed by a signal). */
  exitCode?: number | null;
  /** `exec:` terminating signal. */
  signal?: string | null;
  /** `exec:` last bytes of the command's stderr. */
  stderrTail?: string;
  /** Peer certificate subject DN (RFC 4514) for TLS / authz errors. */
  peerDn?: string;
  cause?: unknown;
}

/** The one error class of this package; see {@link TransportErrorCode}. */
export class TransportError extends Error {
  readonly code: TransportErrorCode;
  readonly uri: string | undefined;
  readonly errno: string | undefined;
  readonly expected: number | undefined;
  readonly got: number | undefined;
  readonly offset: number | undefined;
  readonly exitCode: number | null | undefined;
  readonly signal: string | null | undefined;
  readonly stderrTail: string | undefined;
  readonly peerDn: string | undefined;

  constructor(code: TransportErrorCode, message: string, details: TransportErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'TransportError';
    this.code = code;
    this.uri = details.uri;
    this.errno = details.errno;
    this.expected = details.expected;
    this.got = details.got;
    this.offset = details.offset;
    this.exitCode = details.exitCode;
    this.signal = details.signal;
    this.stderrTail = details.stderrTail;
    this.peerDn = details.peerDn;
  }
}

/** True when `e` is a TransportError, optionally with the given code. */
export function isTransportError(e: unknown, code?: TransportErrorCode): e is TransportError {
  return e instanceof TransportError && (code === undefined || e.code === code);
}

/** The `code` string of a Node system / OpenSSL error (`ECONNRESET`, `ERR_SSL_…`), if any. */
export function errnoOf(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string') return e.code;
  return undefined;
}

/** Message of any thrown value. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
