import type { Authorizer } from './authz.js';
import type { TlsCredsX509 } from './tls-creds.js';

/**
 * TLS for one connect or listen: QEMU's migration parameters `tls-creds`, `tls-hostname` and
 * `tls-authz`, resolved to objects.
 */
export interface TlsSettings {
  /** Credentials for this side (endpoint `client` to connect, `server` to listen). */
  creds: TlsCredsX509;
  /**
   * Client only: the name the server certificate must match (`tls-hostname`). Default: the
   * host of the URI; required for `unix:` and `fd:` when the peer is verified.
   */
  hostname?: string;
  /** Server only: which client identities (certificate subject DNs) may connect (`tls-authz`). */
  authz?: Authorizer;
}
