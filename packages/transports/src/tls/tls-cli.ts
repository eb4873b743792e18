import { AuthzList } from './authz.js';
import { loadTlsCredsX509, type TlsEndpoint } from './tls-creds.js';
import type { TlsSettings } from './tls-settings.js';

/** The TLS flags of an `e2k-migrate` command line. */
export interface TlsCliFlags {
  /** `--tls-creds DIR`: a QEMU x509 credentials directory. */
  tlsCreds?: string;
  /** `--tls-hostname NAME` (client): the name the server certificate must match. */
  tlsHostname?: string;
  /** `--tls-authz DN` (server, repeatable): client identities allowed, RFC 4514 order. */
  tlsAuthz?: string | readonly string[];
  /** `--no-tls-verify-peer`: turn off peer verification (QEMU's verify-peer=off). */
  tlsVerifyPeer?: boolean;
}

/** One-line help texts for the flags, for commands that offer them. */
export const TLS_CLI_HELP = {
  'tls-creds':
    'QEMU x509 credentials directory: ca-cert.pem, server-cert.pem/server-key.pem, client-cert.pem/client-key.pem',
  'tls-hostname': 'name the server certificate must carry (default: the URI host)',
  'tls-authz':
    'allowed client certificate subject, RFC 4514 order, e.g. "CN=client.example,O=e2k-migrate" (repeatable)',
} as const;

/**
 * Builds TLS settings from `--tls-creds DIR` (and `--tls-hostname`, `--tls-authz`), as if
 * `object-add tls-creds-x509 dir=DIR endpoint=ENDPOINT` and `authz-list` had been issued.
 * Returns null without `--tls-creds`.
 */
export async function tlsSettingsFromCli(flags: TlsCliFlags, endpoint: TlsEndpoint): Promise<TlsSettings | null> {
  if (!flags.tlsCreds) return null;
  const creds = await loadTlsCredsX509(flags.tlsCreds, endpoint, { verifyPeer: flags.tlsVerifyPeer ?? true });
  const settings: TlsSettings = { creds };
  if (endpoint === 'client' && flags.tlsHostname) settings.hostname = flags.tlsHostname;
  const allowed =
    flags.tlsAuthz === undefined ? [] : typeof flags.tlsAuthz === 'string' ? [flags.tlsAuthz] : flags.tlsAuthz;
  if (endpoint === 'server' && allowed.length > 0) {
    settings.authz = new AuthzList(
      'cli-tls-authz',
      allowed.map((match) => ({ match, policy: 'allow' as const, format: 'exact' as const })),
      'deny',
    );
  }
  return settings;
}
