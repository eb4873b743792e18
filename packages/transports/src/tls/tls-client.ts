import { isIP, type Socket } from 'node:net';
import { checkServerIdentity, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { errnoOf, messageOf, TransportError } from '../errors.js';
import { subjectDn } from './distinguished-name.js';
import type { TlsSettings } from './tls-settings.js';

/** An established TLS session and the peer's certificate subject. */
export interface TlsSession {
  sock: TLSSocket;
  peerDn: string | null;
}

/**
 * Runs the client side of the TLS handshake over a connected socket: verifies the server
 * certificate against the CA and against `hostname` (default `uriHost`), presents the client
 * certificate when the credentials hold one.
 * @throws TransportError E_TLS (untrusted server, hostname mismatch, handshake failure) or E_TLS_CREDS.
 */
export function tlsClientHandshake(
  raw: Socket,
  settings: TlsSettings,
  uriHost: string | null,
  uri: string,
): Promise<TlsSession> {
  const { creds } = settings;
  if (creds.endpoint !== 'client') {
    return Promise.reject(
      new TransportError(
        'E_TLS_CREDS',
        `${uri}: TLS credentials ${creds.id ?? creds.dir} are for endpoint "${creds.endpoint}"; connecting needs "client"`,
        { uri },
      ),
    );
  }
  const hostname = settings.hostname || uriHost || '';
  if (hostname === '' && creds.verifyPeer) {
    return Promise.reject(
      new TransportError('E_TLS', `${uri}: no host name to check the server certificate against; set tls-hostname`, {
        uri,
      }),
    );
  }
  return new Promise<TlsSession>((resolve, reject) => {
    const sock = tlsConnect({
      socket: raw,
      secureContext: creds.secureContext,
      servername: hostname !== '' && isIP(hostname) === 0 ? hostname : undefined,
      rejectUnauthorized: creds.verifyPeer,
      checkServerIdentity: (_name, cert) => checkServerIdentity(hostname, cert),
      minVersion: 'TLSv1.2',
    });
    const fail = (err: unknown): void => {
      cleanup();
      sock.destroy();
      const errno = errnoOf(err);
      const what =
        errno === 'ERR_TLS_CERT_ALTNAME_INVALID'
          ? `server certificate does not match host name "${hostname}"`
          : `TLS handshake failed`;
      reject(new TransportError('E_TLS', `${uri}: ${what}: ${messageOf(err)}`, { uri, errno, cause: err }));
    };
    const onClose = (): void => fail(new Error('the server closed the connection during the TLS handshake'));
    const onSecure = (): void => {
      cleanup();
      const cert = sock.getPeerX509Certificate();
      resolve({ sock, peerDn: cert ? subjectDn(cert) : null });
    };
    const cleanup = (): void => {
      sock.off('error', fail);
      sock.off('close', onClose);
      sock.off('end', onClose);
      sock.off('secureConnect', onSecure);
    };
    sock.once('error', fail);
    sock.once('close', onClose);
    sock.once('end', onClose);
    sock.once('secureConnect', onSecure);
  });
}
