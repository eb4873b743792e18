import { MigrationControlError } from './errors.js';

/** QEMU's MigrationStatus values, as `query-migrate` and the MIGRATION event spell them. */
export type MigrationStatus =
  | 'none'
  | 'setup'
  | 'cancelling'
  | 'cancelled'
  | 'active'
  | 'postcopy-active'
  | 'postcopy-paused'
  | 'postcopy-recover'
  | 'completed'
  | 'failed'
  | 'pre-switchover'
  | 'device';

/** Events that move a migration between states (one per QEMU `migrate_set_state` call site family). */
export type MigrationEvent =
  | { type: 'start' }
  | { type: 'setup-done' }
  | { type: 'switchover-pause' }
  | { type: 'continue' }
  | { type: 'complete' }
  | { type: 'fail'; error: string }
  | { type: 'cancel' }
  | { type: 'cancelled' }
  | { type: 'postcopy-start' }
  | { type: 'pause'; error: string }
  | { type: 'recover' }
  | { type: 'resumed' };

/** The state of one side: a status, and for `failed`/`postcopy-paused` the reason. */
export type MigrationState =
  | { status: Exclude<MigrationStatus, 'failed' | 'postcopy-paused'> }
  | { status: 'failed'; error: string }
  | { status: 'postcopy-paused'; error: string };

type Table = Partial<Record<MigrationEvent['type'], Partial<Record<MigrationStatus, MigrationStatus>>>>;

const restartable = { none: 'setup', completed: 'setup', failed: 'setup', cancelled: 'setup' } as const;
const running = [
  'setup',
  'active',
  'pre-switchover',
  'device',
  'postcopy-active',
  'postcopy-recover',
  'cancelling',
] as const;

/**
 * The source side (see the package README for the diagram). Cancel is refused once postcopy is
 * active: the guest already runs on the destination, so cancelling would lose it.
 */
export const SOURCE_TRANSITIONS: Table = {
  start: restartable,
  'setup-done': { setup: 'active' },
  'switchover-pause': { active: 'pre-switchover' },
  continue: { 'pre-switchover': 'device' },
  complete: { active: 'completed', device: 'completed', 'postcopy-active': 'completed' },
  fail: Object.fromEntries(running.map((s) => [s, 'failed'])),
  cancel: { setup: 'cancelling', active: 'cancelling', 'pre-switchover': 'cancelling', device: 'cancelling' },
  cancelled: { cancelling: 'cancelled' },
  'postcopy-start': { active: 'postcopy-active' },
  pause: { 'postcopy-active': 'postcopy-paused', 'postcopy-recover': 'postcopy-paused' },
  recover: { 'postcopy-paused': 'postcopy-recover' },
  resumed: { 'postcopy-recover': 'postcopy-active' },
};

/** The destination side: `setup` while listening, `active` once the stream flows. */
export const DESTINATION_TRANSITIONS: Table = {
  start: restartable,
  'setup-done': { setup: 'active' },
  complete: { active: 'completed', 'postcopy-active': 'completed' },
  fail: {
    setup: 'failed',
    active: 'failed',
    'postcopy-recover': 'failed',
    'postcopy-active': 'failed',
    'postcopy-paused': 'failed',
  },
  cancel: { setup: 'cancelling', active: 'cancelling' },
  cancelled: { cancelling: 'cancelled' },
  'postcopy-start': { active: 'postcopy-active' },
  pause: { 'postcopy-active': 'postcopy-paused', 'postcopy-recover': 'postcopy-paused' },
  recover: { 'postcopy-paused': 'postcopy-recover' },
  resumed: { 'postcopy-recover': 'postcopy-active' },
};

/** Advances `state` by `event` through `table`; an event with no transition is a typed error. */
export function step(table: Table, state: MigrationState, event: MigrationEvent): MigrationState {
  const to = table[event.type]?.[state.status];
  if (to === undefined) {
    throw new MigrationControlError('E_ILLEGAL_TRANSITION', `migration cannot "${event.type}" while ${state.status}`, {
      subject: state.status,
    });
  }
  if (to === 'failed') return { status: 'failed', error: event.type === 'fail' ? event.error : 'failed' };
  if (to === 'postcopy-paused') return { status: 'postcopy-paused', error: event.type === 'pause' ? event.error : '' };
  return { status: to } as MigrationState;
}

/** A migration that has not finished (QEMU's migration_is_running / "in progress"). */
export function isActive(status: MigrationStatus): boolean {
  return !['none', 'completed', 'failed', 'cancelled'].includes(status);
}
