import { MigrationControlError } from './errors.js';

/** QEMU 7.2's migration capabilities, in QAPI enum order (all default false). */
export const MIGRATION_CAPABILITIES = [
  'xbzrle',
  'rdma-pin-all',
  'auto-converge',
  'zero-blocks',
  'compress',
  'events',
  'postcopy-ram',
  'x-colo',
  'release-ram',
  'block',
  'return-path',
  'pause-before-switchover',
  'multifd',
  'dirty-bitmaps',
  'postcopy-blocktime',
  'late-block-activate',
  'x-ignore-shared',
  'validate-uuid',
  'background-snapshot',
  'zero-copy-send',
  'postcopy-preempt',
] as const;

export type MigrationCapability = (typeof MIGRATION_CAPABILITIES)[number];

export interface CapabilityState {
  capability: MigrationCapability;
  state: boolean;
}

/**
 * The capability set of one side of a migration, with QEMU 7.2's validation: unknown names are
 * an error listing the valid ones, capabilities e2k-migrate does not implement are a typed "not
 * supported" error, and combinations QEMU rejects are rejected the same way.
 */
export class Capabilities {
  private readonly on = new Set<MigrationCapability>();
  private readonly supported: ReadonlySet<MigrationCapability>;

  /** @param supported the capabilities this build implements (others may only be set to false). */
  constructor(supported: Iterable<MigrationCapability>) {
    this.supported = new Set(supported);
  }

  has(c: MigrationCapability): boolean {
    return this.on.has(c);
  }

  /** `migrate-set-capabilities`: validates the whole request, then applies it atomically. */
  set(list: readonly { capability: string; state: boolean }[]): void {
    const next = new Set(this.on);
    for (const item of list) {
      const c = parseCapability(item.capability);
      if (typeof item.state !== 'boolean') {
        throw new MigrationControlError('E_BAD_PARAMETER', `capability ${c}: state must be a boolean`, { subject: c });
      }
      if (item.state && !this.supported.has(c)) {
        throw new MigrationControlError(
          'E_NOT_SUPPORTED',
          `capability ${c} is not supported by e2k-migrate yet (supported: ${[...this.supported].join(', ')})`,
          { subject: c, valid: [...this.supported] },
        );
      }
      if (item.state) next.add(c);
      else next.delete(c);
    }
    checkCombination(next);
    this.on.clear();
    for (const c of next) this.on.add(c);
  }

  /** `query-migrate-capabilities`: every capability with its state, in QAPI order. */
  query(): CapabilityState[] {
    return MIGRATION_CAPABILITIES.map((capability) => ({ capability, state: this.on.has(capability) }));
  }

  enabled(): MigrationCapability[] {
    return MIGRATION_CAPABILITIES.filter((c) => this.on.has(c));
  }
}

/** Parses a capability name or throws `E_UNKNOWN_CAPABILITY` listing the valid names. */
export function parseCapability(name: string): MigrationCapability {
  if ((MIGRATION_CAPABILITIES as readonly string[]).includes(name)) return name as MigrationCapability;
  throw new MigrationControlError(
    'E_UNKNOWN_CAPABILITY',
    `unknown migration capability "${name}"; valid capabilities: ${MIGRATION_CAPABILITIES.join(', ')}`,
    { subject: name, valid: MIGRATION_CAPABILITIES },
  );
}

/** QEMU 7.2 migrate_caps_check, for the combinations that concern what e2k-migrate implements. */
function checkCombination(on: ReadonlySet<MigrationCapability>): void {
  const conflict = (msg: string, subject: string) => {
    throw new MigrationControlError('E_CAPABILITY_CONFLICT', msg, { subject });
  };
  if (on.has('postcopy-preempt') && !on.has('postcopy-ram')) {
    conflict('postcopy-preempt requires postcopy-ram', 'postcopy-preempt');
  }
  if (on.has('postcopy-ram') && on.has('x-ignore-shared')) {
    conflict('postcopy-ram is not compatible with x-ignore-shared', 'postcopy-ram');
  }
  if (on.has('postcopy-ram') && on.has('compress')) {
    conflict('postcopy-ram is not compatible with compress', 'postcopy-ram');
  }
  if (on.has('postcopy-preempt') && on.has('compress')) {
    conflict('postcopy-preempt is not compatible with compress', 'postcopy-preempt');
  }
  if (on.has('background-snapshot')) {
    for (const c of [
      'postcopy-ram',
      'dirty-bitmaps',
      'postcopy-blocktime',
      'late-block-activate',
      'return-path',
      'multifd',
      'pause-before-switchover',
      'auto-converge',
      'release-ram',
      'rdma-pin-all',
      'compress',
      'xbzrle',
      'x-colo',
      'validate-uuid',
      'zero-copy-send',
    ] as const) {
      if (on.has(c)) conflict(`background-snapshot is not compatible with ${c}`, 'background-snapshot');
    }
  }
  if (on.has('zero-copy-send') && !on.has('multifd')) {
    conflict('zero-copy-send requires multifd', 'zero-copy-send');
  }
}
