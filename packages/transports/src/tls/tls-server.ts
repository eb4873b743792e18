import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { errnoOf, messageOf, TransportError } from '../errors.js';
import { subjectDn } from './distinguished-name.js';
import type { TlsSession } from './tls-client.js';
import type { TlsSettings } from './tls-settings.js';

type VerifyError = Error & { code?: string };

/** node internals a server-side TLSSocket needs when it is not created by a tls.Server. */
interface ServerTlsInternals {
  ssl?: { verifyError?: () => VerifyError | null };
  _releaseControl?: () => boolean;
}

/**
 * Runs the server side of the TLS handshake over an accepted socket. With verify-peer the
 * client must present a certificate signed by the CA; with `authz` its subject DN must be allowed.
 * @throws TransportError E_TLS (no/untrusted client certificate, handshake failure), E_TLS_AUTHZ
 * (DN not allowed) or E_TLS_CREDS.
 */
export function tlsServerHandshake(raw: Socket, settings: TlsSettings, uri: string): Promise<TlsSession> {
  const { creds, authz } = settings;
  if (creds.endpoint !== 'server') {
    raw.destroy();
    return Promise.reject(
      new TransportError(
        'E_TLS_CREDS',
        `${uri}: TLS credentials ${creds.id ?? creds.dir} are for endpoint "${creds.endpoint}"; listening needs "server"`,
        { uri },
      ),
    );
  }
  return new Promise<TlsSession>((resolve, reject) => {
    const sock = new TLSSocket(raw, {
      isServer: true,
      secureContext: creds.secureContext,
      requestCert: creds.verifyPeer,
      rejectUnauthorized: creds.verifyPeer,
    });
    const internals = sock as unknown as ServerTlsInternals;
    let settled = false;
    const refuse = (err: TransportError): void => {
      if (settled) return;
      settled = true;
      sock.destroy();
      raw.destroy();
      reject(err);
    };
    const onError = (err: unknown): void =>
      refuse(
        new TransportError('E_TLS', `${uri}: TLS handshake with client failed: ${messageOf(err)}`, {
          uri,
          errno: errnoOf(err),
          cause: err,
        }),
      );
    sock.on('error', onError);
    // Before control is released node reports handshake errors on this internal event only.
    sock.on('_tlsError', onError);
    const onClose = (): void => onError(new Error('the client closed the connection during the TLS handshake'));
    sock.once('close', onClose);
    sock.once('end', onClose);
    sock.once('secure', () => {
      const cert = sock.getPeerX509Certificate();
      const peerDn = cert ? subjectDn(cert) : null;
      if (creds.verifyPeer) {
        const verify = internals.ssl?.verifyError;
        const verifyError: VerifyError | null =
          typeof verify === 'function' ? verify.call(internals.ssl) : new Error('cannot verify');
        if (verifyError || cert === undefined) {
          const why = verifyError ? (verifyError.code ?? verifyError.message) : 'no client certificate';
          refuse(
            new TransportError(
              'E_TLS',
              `${uri}: client certificate refused (${why})${peerDn ? ` for ${peerDn}` : ''}`,
              {
                uri,
                errno: verifyError?.code,
                peerDn: peerDn ?? undefined,
              },
            ),
          );
          return;
        }
      }
      if (authz && (peerDn === null || !authz.isAllowed(peerDn))) {
        refuse(
          new TransportError(
            'E_TLS_AUTHZ',
            `${uri}: client ${peerDn === null ? 'without a certificate' : `"${peerDn}"`} is not allowed by tls-authz "${authz.id}"`,
            { uri, peerDn: peerDn ?? undefined },
          ),
        );
        return;
      }
      if (settled) return;
      settled = true;
      sock.off('close', onClose);
      sock.off('end', onClose);
      sock.off('error', onError);
      sock.off('_tlsError', onError);
      internals._releaseControl?.();
      resolve({ sock, peerDn });
    });
  });
}
