import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { errnoOf, messageOf, TransportError } from '../errors.js';
import { subjectDn } from './distinguished-name.js';

/** File names of QEMU's x509 credentials directory (`tls-creds-x509` `dir`). */
export const QCRYPTO_TLS_CREDS_X509_CA_CERT = 'ca-cert.pem';
export const QCRYPTO_TLS_CREDS_X509_CA_CRL = 'ca-crl.pem';
export const QCRYPTO_TLS_CREDS_X509_SERVER_CERT = 'server-cert.pem';
export const QCRYPTO_TLS_CREDS_X509_SERVER_KEY = 'server-key.pem';
export const QCRYPTO_TLS_CREDS_X509_CLIENT_CERT = 'client-cert.pem';
export const QCRYPTO_TLS_CREDS_X509_CLIENT_KEY = 'client-key.pem';
/** Present in QEMU directories; ignored here (node negotiates ECDHE). */
export const QCRYPTO_TLS_CREDS_DH_PARAMS = 'dh-params.pem';

export type TlsEndpoint = 'server' | 'client';

/** Loaded x509 credentials for one endpoint, ready for node:tls. */
export interface TlsCredsX509 {
  /** QOM object id when registered with object-add, else null. */
  readonly id: string | null;
  readonly dir: string;
  readonly endpoint: TlsEndpoint;
  /** Server: require and verify a client certificate. Client: verify the server's. */
  readonly verifyPeer: boolean;
  readonly secureContext: SecureContext;
  /** Subject DN (RFC 4514) of this endpoint's own certificate, null for a client without one. */
  readonly ownDn: string | null;
}

export interface LoadTlsCredsOptions {
  id?: string | null;
  /** Default true, as QEMU's `verify-peer`. */
  verifyPeer?: boolean;
  /**
   * Default true, as QEMU's `sanity-check`: the own certificate must be signed by the CA,
   * be within its validity period and match its key.
   */
  sanityCheck?: boolean;
}

/**
 * Loads a QEMU-layout credentials directory for `endpoint`: `ca-cert.pem` always (optional
 * `ca-crl.pem`); the server needs `server-cert.pem` + `server-key.pem`; a client uses
 * `client-cert.pem` + `client-key.pem` when present (a server with verify-peer requires them).
 * @throws TransportError E_TLS_CREDS naming the directory and the file at fault.
 */
export async function loadTlsCredsX509(
  dir: string,
  endpoint: TlsEndpoint,
  options: LoadTlsCredsOptions = {},
): Promise<TlsCredsX509> {
  const verifyPeer = options.verifyPeer ?? true;
  const [certName, keyName] =
    endpoint === 'server'
      ? [QCRYPTO_TLS_CREDS_X509_SERVER_CERT, QCRYPTO_TLS_CREDS_X509_SERVER_KEY]
      : [QCRYPTO_TLS_CREDS_X509_CLIENT_CERT, QCRYPTO_TLS_CREDS_X509_CLIENT_KEY];
  const ownRequired = endpoint === 'server';
  const settled = await Promise.allSettled([
    readPem(dir, QCRYPTO_TLS_CREDS_X509_CA_CERT, true, endpoint),
    readPem(dir, QCRYPTO_TLS_CREDS_X509_CA_CRL, false, endpoint),
    readPem(dir, certName, ownRequired, endpoint),
    readPem(dir, keyName, ownRequired, endpoint),
  ]);
  // report the first problem in a fixed order (ca, crl, cert, key)
  const [ca, crl, cert, key] = settled.map((r) => {
    if (r.status === 'rejected') throw r.reason;
    return r.value;
  }) as [Buffer | null, Buffer | null, Buffer | null, Buffer | null];
  if ((cert === null) !== (key === null)) {
    const missing = cert === null ? certName : keyName;
    throw credsError(dir, `${missing} is missing while its pair is present`, missing);
  }
  let ownDn: string | null = null;
  if (cert && key && ca) {
    const own = parseCert(dir, certName, cert);
    ownDn = subjectDn(own);
    if (options.sanityCheck ?? true) sanityCheck(dir, certName, keyName, own, key, ca);
  }
  let secureContext: SecureContext;
  try {
    secureContext = createSecureContext({
      ca: ca ?? undefined,
      crl: crl ?? undefined,
      cert: cert ?? undefined,
      key: key ?? undefined,
      minVersion: 'TLSv1.2',
    });
  } catch (e) {
    throw credsError(dir, `unusable certificate/key: ${messageOf(e)}`, undefined, e);
  }
  return { id: options.id ?? null, dir, endpoint, verifyPeer, secureContext, ownDn };
}

async function readPem(dir: string, name: string, required: boolean, endpoint: TlsEndpoint): Promise<Buffer | null> {
  try {
    return await readFile(join(dir, name));
  } catch (e) {
    if (errnoOf(e) === 'ENOENT' && !required) return null;
    const why = errnoOf(e) === 'ENOENT' ? `missing ${name} (needed for endpoint ${endpoint})` : messageOf(e);
    throw credsError(dir, why, name, e);
  }
}

function parseCert(dir: string, name: string, pem: Buffer): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (e) {
    throw credsError(dir, `${name} is not a PEM certificate: ${messageOf(e)}`, name, e);
  }
}

function sanityCheck(
  dir: string,
  certName: string,
  keyName: string,
  own: X509Certificate,
  key: Buffer,
  ca: Buffer,
): void {
  const now = Date.now();
  if (Date.parse(own.validFrom) > now || Date.parse(own.validTo) < now) {
    throw credsError(dir, `${certName} is not valid now (valid ${own.validFrom} to ${own.validTo})`, certName);
  }
  const cas = splitPem(ca).map((p) => parseCert(dir, QCRYPTO_TLS_CREDS_X509_CA_CERT, Buffer.from(p)));
  if (!cas.some((c) => own.checkIssued(c) && own.verify(c.publicKey))) {
    throw credsError(
      dir,
      `${certName} (${subjectDn(own)}) is not signed by ${QCRYPTO_TLS_CREDS_X509_CA_CERT}`,
      certName,
    );
  }
  let matches = false;
  try {
    matches = own.checkPrivateKey(createPrivateKey(key));
  } catch (e) {
    throw credsError(dir, `${keyName} is not a usable private key: ${messageOf(e)}`, keyName, e);
  }
  if (!matches) throw credsError(dir, `${keyName} does not belong to ${certName}`, keyName);
}

function splitPem(pem: Buffer): string[] {
  return pem.toString('utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

function credsError(dir: string, what: string, file?: string, cause?: unknown): TransportError {
  return new TransportError('E_TLS_CREDS', `TLS credentials directory ${dir}: ${what}`, {
    uri: file ? join(dir, file) : dir,
    errno: errnoOf(cause),
    cause,
  });
}
