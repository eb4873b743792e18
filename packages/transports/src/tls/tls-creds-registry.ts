import { TransportError } from '../errors.js';
import { type Authorizer, AuthzList, AuthzListFile, authzSimple, parseAuthzPolicy, parseAuthzRules } from './authz.js';
import { loadTlsCredsX509, type TlsCredsX509, type TlsEndpoint } from './tls-creds.js';
import type { TlsSettings } from './tls-settings.js';

/** Arguments of QMP `object-add` (flat, as QEMU ≥ 6.0; a legacy `props` object is merged in). */
export interface QomObjectAdd {
  'qom-type': string;
  id: string;
  props?: Record<string, unknown>;
  [property: string]: unknown;
}

/** The TLS-related migration parameters (`migrate-set-parameters`); "" or null means unset. */
export interface MigrationTlsParameters {
  'tls-creds'?: string | null;
  'tls-hostname'?: string | null;
  'tls-authz'?: string | null;
}

const SUPPORTED = ['tls-creds-x509', 'authz-simple', 'authz-list', 'authz-list-file'] as const;
const QOM_ID = /^[A-Za-z][A-Za-z0-9_.-]*$/;

/**
 * QEMU's user-creatable TLS objects, keyed by id: `tls-creds-x509` credentials and the
 * `authz-simple` / `authz-list` / `authz-list-file` authorizers, so that the migration
 * parameters `tls-creds`, `tls-hostname` and `tls-authz` can name them.
 *
 * ```ts
 * await reg.objectAdd({ 'qom-type': 'tls-creds-x509', id: 'tls0', dir: '/etc/pki/qemu', endpoint: 'server' });
 * await reg.objectAdd({ 'qom-type': 'authz-simple', id: 'auth0', identity: 'CN=client.example,O=e2k-migrate' });
 * const tls = reg.settings({ 'tls-creds': 'tls0', 'tls-authz': 'auth0' }, 'server');
 * ```
 */
export class TlsCredsRegistry {
  readonly #creds = new Map<string, TlsCredsX509>();
  readonly #authz = new Map<string, { type: string; authz: Authorizer }>();

  /** Creates an object; credentials are loaded and checked now (E_TLS_CREDS on a bad directory). */
  async objectAdd(args: QomObjectAdd): Promise<void> {
    const { 'qom-type': type, id, props, ...flat } = args;
    if (typeof id !== 'string' || !QOM_ID.test(id)) {
      throw bad(
        String(id),
        `"${String(id)}" is not a valid object id (a letter, then letters, digits, "-", "." or "_")`,
      );
    }
    if (this.#creds.has(id) || this.#authz.has(id)) throw bad(id, `duplicate object id "${id}"`);
    const p: Record<string, unknown> = { ...(props ?? {}), ...flat };
    switch (type) {
      case 'tls-creds-x509': {
        const { dir, endpoint = 'client', 'verify-peer': vp = true, 'sanity-check': sc = true, priority, ...extra } = p;
        noExtra(id, type, extra);
        if (typeof dir !== 'string' || dir === '') throw bad(id, '"dir" (the credentials directory) is required');
        if (endpoint !== 'server' && endpoint !== 'client') {
          throw bad(id, `"endpoint" must be "server" or "client", found ${JSON.stringify(endpoint)}`);
        }
        if (priority !== undefined && typeof priority !== 'string') throw bad(id, '"priority" must be a string');
        const creds = await loadTlsCredsX509(dir, endpoint, {
          id,
          verifyPeer: bool(id, 'verify-peer', vp),
          sanityCheck: bool(id, 'sanity-check', sc),
        });
        this.#creds.set(id, creds);
        return;
      }
      case 'authz-simple': {
        const { identity, ...extra } = p;
        noExtra(id, type, extra);
        if (typeof identity !== 'string') throw bad(id, '"identity" (a distinguished name) is required');
        this.#authz.set(id, { type, authz: authzSimple(id, identity) });
        return;
      }
      case 'authz-list': {
        const { policy = 'deny', rules = [], ...extra } = p;
        noExtra(id, type, extra);
        this.#authz.set(id, {
          type,
          authz: new AuthzList(id, parseAuthzRules(id, rules), parseAuthzPolicy(id, policy)),
        });
        return;
      }
      case 'authz-list-file': {
        const { filename, refresh = true, ...extra } = p;
        noExtra(id, type, extra);
        if (typeof filename !== 'string' || filename === '') throw bad(id, '"filename" is required');
        this.#authz.set(id, { type, authz: new AuthzListFile(id, filename, bool(id, 'refresh', refresh)) });
        return;
      }
      default:
        throw bad(id, `qom-type ${JSON.stringify(type)} is not supported; supported: ${SUPPORTED.join(', ')}`);
    }
  }

  /** QMP `object-del`. */
  objectDel(id: string): void {
    if (!this.#creds.delete(id) && !this.#authz.delete(id)) throw bad(id, `no object with id "${id}"`);
  }

  /** Ids and types of the registered objects. */
  list(): Array<{ id: string; 'qom-type': string }> {
    return [
      ...[...this.#creds.keys()].map((id) => ({ id, 'qom-type': 'tls-creds-x509' })),
      ...[...this.#authz.entries()].map(([id, a]) => ({ id, 'qom-type': a.type })),
    ];
  }

  creds(id: string): TlsCredsX509 {
    const c = this.#creds.get(id);
    if (!c)
      throw bad(id, `no tls-creds-x509 object "${id}"${this.#authz.has(id) ? ` ("${id}" is an authz object)` : ''}`);
    return c;
  }

  authz(id: string): Authorizer {
    const a = this.#authz.get(id)?.authz;
    if (!a) throw bad(id, `no authz object "${id}"${this.#creds.has(id) ? ` ("${id}" is a tls-creds object)` : ''}`);
    return a;
  }

  /**
   * TLS settings for one side of a migration from its parameters, or null when `tls-creds` is
   * unset. `endpoint` is "client" for the source (connect) and "server" for the destination.
   */
  settings(params: MigrationTlsParameters, endpoint: TlsEndpoint): TlsSettings | null {
    const credsId = params['tls-creds'];
    if (!credsId) return null;
    const creds = this.creds(credsId);
    if (creds.endpoint !== endpoint) {
      const side = endpoint === 'client' ? 'an outgoing' : 'an incoming';
      throw new TransportError(
        'E_TLS_CREDS',
        `tls-creds "${credsId}" has endpoint "${creds.endpoint}" but ${side} migration needs "${endpoint}"`,
        { uri: credsId },
      );
    }
    const settings: TlsSettings = { creds };
    const hostname = params['tls-hostname'];
    if (endpoint === 'client' && hostname) settings.hostname = hostname;
    const authzId = params['tls-authz'];
    if (endpoint === 'server' && authzId) settings.authz = this.authz(authzId);
    return settings;
  }
}

function noExtra(id: string, type: unknown, extra: Record<string, unknown>): void {
  const keys = Object.keys(extra);
  if (keys.length === 0) return;
  const hint = keys.includes('passwordid') ? ' (encrypted private keys are not supported)' : '';
  throw bad(id, `${String(type)} has no property ${keys.map((k) => `"${k}"`).join(', ')}${hint}`);
}

/** QMP booleans, also accepting the `-object` command-line spellings on/off/yes/no/true/false. */
function bool(id: string, name: string, v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  if (v === 'on' || v === 'yes' || v === 'true') return true;
  if (v === 'off' || v === 'no' || v === 'false') return false;
  throw bad(id, `"${name}" must be a boolean, found ${JSON.stringify(v)}`);
}

function bad(id: string, what: string): TransportError {
  return new TransportError('E_BAD_OBJECT', `object-add/lookup "${id}": ${what}`, { uri: id });
}
