export { Channel, MAX_EXACT_READ } from './channel.js';
export type { ChannelIo } from './channel-io.js';
export {
  type ChannelCloseInfo,
  type ChannelInfo,
  type ChannelOptions,
  type ChannelTlsInfo,
  DEFAULT_CHANNEL_OPTIONS,
} from './channel-types.js';
export { connect } from './connect.js';
export type { DeadlineOptions } from './deadline.js';
export {
  isTransportError,
  TransportError,
  type TransportErrorCode,
  type TransportErrorDetails,
} from './errors.js';
export { STDERR_TAIL_BYTES } from './exec-io.js';
export { type FdKind, fdKind } from './fd-io.js';
export { formatUri } from './format-uri.js';
export { listen } from './listen.js';
export type { AcceptOptions, Listener } from './listener.js';
export { parseUri } from './parse-uri.js';
export {
  type Authorizer,
  type AuthzFormat,
  AuthzList,
  AuthzListFile,
  type AuthzPolicy,
  type AuthzRule,
  authzSimple,
} from './tls/authz.js';
export { type Ava, dnEquals, parseDn, type Rdn, subjectDn } from './tls/distinguished-name.js';
export { globMatch } from './tls/glob.js';
export { TLS_CLI_HELP, type TlsCliFlags, tlsSettingsFromCli } from './tls/tls-cli.js';
export {
  type LoadTlsCredsOptions,
  loadTlsCredsX509,
  QCRYPTO_TLS_CREDS_DH_PARAMS,
  QCRYPTO_TLS_CREDS_X509_CA_CERT,
  QCRYPTO_TLS_CREDS_X509_CA_CRL,
  QCRYPTO_TLS_CREDS_X509_CLIENT_CERT,
  QCRYPTO_TLS_CREDS_X509_CLIENT_KEY,
  QCRYPTO_TLS_CREDS_X509_SERVER_CERT,
  QCRYPTO_TLS_CREDS_X509_SERVER_KEY,
  type TlsCredsX509,
  type TlsEndpoint,
} from './tls/tls-creds.js';
export { type MigrationTlsParameters, type QomObjectAdd, TlsCredsRegistry } from './tls/tls-creds-registry.js';
export type { TlsSettings } from './tls/tls-settings.js';
export {
  type ConnectOptions,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  type ListenOptions,
} from './transport-options.js';
export {
  ACCEPTED_URI_FORMS,
  type ExecUri,
  type FdUri,
  type FileUri,
  type MigrationUri,
  type TcpUri,
  type TransportKind,
  UNIX_PATH_MAX,
  type UnixUri,
} from './uri.js';
