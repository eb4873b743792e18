import { readFileSync } from 'node:fs';
import { errnoOf, messageOf, TransportError } from '../errors.js';
import { dnEquals } from './distinguished-name.js';
import { globMatch } from './glob.js';

export type AuthzPolicy = 'allow' | 'deny';
export type AuthzFormat = 'exact' | 'glob';

/** One rule of an `authz-list`: the first rule that matches decides. */
export interface AuthzRule {
  match: string;
  policy: AuthzPolicy;
  format: AuthzFormat;
}

/** Decides whether a TLS client identity (its certificate subject DN, RFC 4514) may connect. */
export interface Authorizer {
  readonly id: string;
  isAllowed(identity: string): boolean;
}

/**
 * An allow/deny list of identities, like QEMU's `authz-list`: rules are tried in order, the
 * first match gives the answer, otherwise `policy` (default deny). `exact` rules match DNs that
 * are equal (see dnEquals: the RFC 4514 string, spaces after separators and attribute type case
 * are forgiven); `glob` rules are fnmatch patterns over the RFC 4514 string.
 */
export class AuthzList implements Authorizer {
  readonly id: string;
  readonly rules: readonly AuthzRule[];
  readonly policy: AuthzPolicy;

  constructor(id: string, rules: readonly AuthzRule[], policy: AuthzPolicy = 'deny') {
    this.id = id;
    this.rules = rules;
    this.policy = policy;
  }

  isAllowed(identity: string): boolean {
    return decide(this.rules, this.policy, identity);
  }
}

/** QEMU's `authz-simple`: exactly one identity is allowed. */
export function authzSimple(id: string, identity: string): AuthzList {
  return new AuthzList(id, [{ match: identity, policy: 'allow', format: 'exact' }], 'deny');
}

/**
 * QEMU's `authz-list-file`: the rules live in a JSON file `{"policy": …, "rules": […]}`. With
 * `refresh`, the file is re-read at every decision (QEMU watches it with inotify); an unreadable
 * or invalid file then denies.
 */
export class AuthzListFile implements Authorizer {
  readonly id: string;
  readonly filename: string;
  readonly refresh: boolean;
  #list: AuthzList;

  constructor(id: string, filename: string, refresh: boolean) {
    this.id = id;
    this.filename = filename;
    this.refresh = refresh;
    this.#list = loadAuthzFile(id, filename);
  }

  isAllowed(identity: string): boolean {
    if (this.refresh) {
      try {
        this.#list = loadAuthzFile(this.id, this.filename);
      } catch {
        return false;
      }
    }
    return this.#list.isAllowed(identity);
  }
}

function decide(rules: readonly AuthzRule[], policy: AuthzPolicy, identity: string): boolean {
  for (const r of rules) {
    const hit = r.format === 'glob' ? globMatch(r.match, identity) : dnEquals(r.match, identity);
    if (hit) return r.policy === 'allow';
  }
  return policy === 'allow';
}

/** Reads and validates an authz-list-file JSON document. */
export function loadAuthzFile(id: string, filename: string): AuthzList {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(filename, 'utf8'));
  } catch (e) {
    throw new TransportError('E_BAD_OBJECT', `authz-list-file "${id}": cannot load ${filename}: ${messageOf(e)}`, {
      uri: filename,
      errno: errnoOf(e),
      cause: e,
    });
  }
  const obj = (doc ?? {}) as { policy?: unknown; rules?: unknown };
  return new AuthzList(id, parseAuthzRules(id, obj.rules ?? []), parseAuthzPolicy(id, obj.policy ?? 'deny'));
}

/** Validates the `rules` of an authz-list (QAPI QAuthZListRule list). */
export function parseAuthzRules(id: string, rules: unknown): AuthzRule[] {
  if (!Array.isArray(rules)) throw badObject(id, `"rules" must be a list, found ${typeof rules}`);
  return rules.map((r: unknown, k) => {
    if (typeof r !== 'object' || r === null) throw badObject(id, `rule ${k} must be an object`);
    const { match, policy, format = 'exact', ...extra } = r as Record<string, unknown>;
    const unknownKeys = Object.keys(extra);
    if (unknownKeys.length > 0) throw badObject(id, `rule ${k} has unknown field(s) ${unknownKeys.join(', ')}`);
    if (typeof match !== 'string') throw badObject(id, `rule ${k}: "match" must be a string`);
    if (format !== 'exact' && format !== 'glob') {
      throw badObject(id, `rule ${k}: "format" must be "exact" or "glob", found ${JSON.stringify(format)}`);
    }
    return { match, policy: parseAuthzPolicy(id, policy), format };
  });
}

export function parseAuthzPolicy(id: string, policy: unknown): AuthzPolicy {
  if (policy === 'allow' || policy === 'deny') return policy;
  throw badObject(id, `policy must be "allow" or "deny", found ${JSON.stringify(policy)}`);
}

function badObject(id: string, what: string): TransportError {
  return new TransportError('E_BAD_OBJECT', `authz object "${id}": ${what}`, { uri: id });
}
