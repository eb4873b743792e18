import { MigrationControlError } from './errors.js';

/** QEMU 7.2's migration parameters (`query-migrate-parameters` names) with their values. */
export interface MigrationParameters {
  'announce-initial': number;
  'announce-max': number;
  'announce-rounds': number;
  'announce-step': number;
  'compress-level': number;
  'compress-threads': number;
  'compress-wait-thread': boolean;
  'decompress-threads': number;
  'throttle-trigger-threshold': number;
  'cpu-throttle-initial': number;
  'cpu-throttle-increment': number;
  'cpu-throttle-tailslow': boolean;
  'tls-creds': string;
  'tls-hostname': string;
  'tls-authz': string;
  'max-bandwidth': number;
  'downtime-limit': number;
  'x-checkpoint-delay': number;
  'block-incremental': boolean;
  'multifd-channels': number;
  'xbzrle-cache-size': number;
  'max-postcopy-bandwidth': number;
  'max-cpu-throttle': number;
  'multifd-compression': 'none' | 'zlib' | 'zstd';
  'multifd-zlib-level': number;
  'multifd-zstd-level': number;
  /**
   * e2k-migrate's postcopy policy (QEMU has only `migrate-start-postcopy`): with postcopy-ram,
   * switch to postcopy by itself after this many complete passes over RAM (0 = never).
   */
  'x-postcopy-after-iterations': number;
  /**
   * e2k-migrate's postcopy policy: with postcopy-ram, switch to postcopy when precopy does not
   * converge — the remaining bytes at a dirty sync were not below their smallest value for this
   * many consecutive syncs (0 = never).
   */
  'x-postcopy-stall-syncs': number;
}

export type ParameterName = keyof MigrationParameters;

/** QEMU 7.2 defaults (verified with query-migrate-parameters on 7.2.22). */
export const DEFAULT_PARAMETERS: Readonly<MigrationParameters> = Object.freeze({
  'announce-initial': 50,
  'announce-max': 550,
  'announce-rounds': 5,
  'announce-step': 100,
  'compress-level': 1,
  'compress-threads': 8,
  'compress-wait-thread': true,
  'decompress-threads': 2,
  'throttle-trigger-threshold': 50,
  'cpu-throttle-initial': 20,
  'cpu-throttle-increment': 10,
  'cpu-throttle-tailslow': false,
  'tls-creds': '',
  'tls-hostname': '',
  'tls-authz': '',
  'max-bandwidth': 134217728,
  'downtime-limit': 300,
  'x-checkpoint-delay': 20000,
  'block-incremental': false,
  'multifd-channels': 2,
  'xbzrle-cache-size': 67108864,
  'max-postcopy-bandwidth': 0,
  'max-cpu-throttle': 99,
  'multifd-compression': 'none',
  'multifd-zlib-level': 1,
  'multifd-zstd-level': 1,
  'x-postcopy-after-iterations': 0,
  'x-postcopy-stall-syncs': 0,
});

export const PARAMETER_NAMES = Object.keys(DEFAULT_PARAMETERS) as ParameterName[];

type Rule =
  | { kind: 'int'; min: number; max: number }
  | { kind: 'bool' }
  | { kind: 'string' }
  | { kind: 'enum'; values: readonly string[] };

const MAX_SIZE = Number.MAX_SAFE_INTEGER;
/** Bounds from QEMU 7.2's migrate_params_check. */
const RULES: Record<ParameterName, Rule> = {
  'announce-initial': { kind: 'int', min: 1, max: 100_000 },
  'announce-max': { kind: 'int', min: 1, max: 100_000 },
  'announce-rounds': { kind: 'int', min: 1, max: 1000 },
  'announce-step': { kind: 'int', min: 1, max: 10_000 },
  'compress-level': { kind: 'int', min: 0, max: 9 },
  'compress-threads': { kind: 'int', min: 1, max: 255 },
  'compress-wait-thread': { kind: 'bool' },
  'decompress-threads': { kind: 'int', min: 1, max: 255 },
  'throttle-trigger-threshold': { kind: 'int', min: 1, max: 100 },
  'cpu-throttle-initial': { kind: 'int', min: 1, max: 99 },
  'cpu-throttle-increment': { kind: 'int', min: 1, max: 99 },
  'cpu-throttle-tailslow': { kind: 'bool' },
  'tls-creds': { kind: 'string' },
  'tls-hostname': { kind: 'string' },
  'tls-authz': { kind: 'string' },
  'max-bandwidth': { kind: 'int', min: 0, max: MAX_SIZE },
  'downtime-limit': { kind: 'int', min: 0, max: 2_000_000 },
  'x-checkpoint-delay': { kind: 'int', min: 0, max: 0xffff_ffff },
  'block-incremental': { kind: 'bool' },
  'multifd-channels': { kind: 'int', min: 1, max: 255 },
  'xbzrle-cache-size': { kind: 'int', min: 4096, max: MAX_SIZE },
  'max-postcopy-bandwidth': { kind: 'int', min: 0, max: MAX_SIZE },
  'max-cpu-throttle': { kind: 'int', min: 1, max: 99 },
  'multifd-compression': { kind: 'enum', values: ['none', 'zlib', 'zstd'] },
  'multifd-zlib-level': { kind: 'int', min: 0, max: 9 },
  'multifd-zstd-level': { kind: 'int', min: 0, max: 20 },
  'x-postcopy-after-iterations': { kind: 'int', min: 0, max: 1_000_000 },
  'x-postcopy-stall-syncs': { kind: 'int', min: 0, max: 1_000_000 },
};

/**
 * The parameter set of one side, with QEMU 7.2 semantics: `set` validates every given value
 * (unknown names list the valid ones) and applies all or nothing.
 */
export class Parameters {
  private values: MigrationParameters = { ...DEFAULT_PARAMETERS };

  get<K extends ParameterName>(name: K): MigrationParameters[K] {
    return this.values[name];
  }

  /** `query-migrate-parameters`. */
  query(): MigrationParameters {
    return { ...this.values };
  }

  /** `migrate-set-parameters`: values may also come as strings from a command line. */
  set(changes: Readonly<Record<string, unknown>>): void {
    const next: MigrationParameters = { ...this.values };
    for (const [name, raw] of Object.entries(changes)) {
      const key = parseParameterName(name);
      (next as unknown as Record<string, unknown>)[key] = coerce(key, raw);
    }
    if (next['max-cpu-throttle'] < next['cpu-throttle-initial']) {
      throw new MigrationControlError(
        'E_BAD_PARAMETER',
        `max-cpu-throttle ${next['max-cpu-throttle']} must be at least cpu-throttle-initial ${next['cpu-throttle-initial']}`,
        { subject: 'max-cpu-throttle' },
      );
    }
    const xs = next['xbzrle-cache-size'];
    if (!Number.isInteger(Math.log2(xs))) {
      throw new MigrationControlError(
        'E_BAD_PARAMETER',
        `xbzrle-cache-size ${xs} must be a power of two no less than the target page size (4096)`,
        { subject: 'xbzrle-cache-size' },
      );
    }
    this.values = next;
  }
}

export function parseParameterName(name: string): ParameterName {
  if (name in RULES) return name as ParameterName;
  throw new MigrationControlError(
    'E_UNKNOWN_PARAMETER',
    `unknown migration parameter "${name}"; valid parameters: ${PARAMETER_NAMES.join(', ')}`,
    { subject: name, valid: PARAMETER_NAMES },
  );
}

/** Checks (and converts strings like "64M", "true", "300") a value for `name`. */
export function coerce(name: ParameterName, raw: unknown): unknown {
  const rule = RULES[name];
  const bad = (why: string): never => {
    throw new MigrationControlError('E_BAD_PARAMETER', `parameter ${name}: ${why} (got ${JSON.stringify(raw)})`, {
      subject: name,
    });
  };
  switch (rule.kind) {
    case 'bool':
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === 'on') return true;
      if (raw === 'false' || raw === 'off') return false;
      return bad('expected a boolean');
    case 'string':
      if (typeof raw === 'string') return raw;
      return bad('expected a string');
    case 'enum':
      if (typeof raw === 'string' && rule.values.includes(raw)) return raw;
      return bad(`expected one of ${rule.values.join(', ')}`);
    case 'int': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' ? parseSize(raw) : Number.NaN;
      if (!Number.isSafeInteger(n)) return bad('expected an integer');
      if (n < rule.min || n > rule.max) return bad(`must be in [${rule.min}, ${rule.max}]`);
      return n;
    }
  }
}

/** Parses "1234", "64K", "16M", "1G", "1T" (binary multiples). NaN when malformed. */
export function parseSize(s: string): number {
  const m = /^\s*(\d+)\s*([kmgt]?)(i?b)?\s*$/i.exec(s);
  if (!m) return Number.NaN;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[(m[2] ?? '').toLowerCase()] ?? 1;
  return Number(m[1]) * mult;
}
