import { field, type Vmsd, VmstateError, vmsd } from '@e2k-migrate/vmstate';

/** QEMU RunState names (qapi `RunState`), the values `globalstate` and `query-status` carry. */
export const RUN_STATES = [
  'debug',
  'inmigrate',
  'internal-error',
  'io-error',
  'paused',
  'postmigrate',
  'prelaunch',
  'finish-migrate',
  'restore-vm',
  'running',
  'save-vm',
  'shutdown',
  'suspended',
  'watchdog',
  'guest-panicked',
  'colo',
] as const;
export type RunState = (typeof RUN_STATES)[number];

/** Size of the NUL-padded run-state buffer. */
export const GLOBALSTATE_RUNSTATE_LEN = 100;

/** `globalstate` (version 1): be32 size (strlen + 1) and a 100-byte NUL-padded run-state name. */
export interface GlobalStateState {
  size: number;
  runstate: Uint8Array;
}

export const vmstateGlobalState: Vmsd<GlobalStateState> = vmsd<GlobalStateState>({
  name: 'globalstate',
  version: 1,
  fields: [field.uint32('size'), field.buffer('runstate', GLOBALSTATE_RUNSTATE_LEN)],
  postLoad: (s) => {
    if (s.size > GLOBALSTATE_RUNSTATE_LEN) {
      throw new VmstateError(
        'E_BAD_VALUE',
        `globalstate: size ${s.size} exceeds the ${GLOBALSTATE_RUNSTATE_LEN}-byte buffer`,
        {
          vmsd: 'globalstate',
          what: 'size',
        },
      );
    }
    const name = runStateName(s);
    if (!(RUN_STATES as readonly string[]).includes(name)) {
      throw new VmstateError('E_BAD_VALUE', `globalstate: unknown run state "${name}"`, {
        vmsd: 'globalstate',
        what: 'runstate',
      });
    }
  },
});

export function globalStateOf(runstate: RunState): GlobalStateState {
  const buf = new Uint8Array(GLOBALSTATE_RUNSTATE_LEN);
  for (let i = 0; i < runstate.length; i++) buf[i] = runstate.charCodeAt(i);
  return { size: runstate.length + 1, runstate: buf };
}

/** The run-state name in a loaded globalstate (bytes up to the first NUL). */
export function runStateName(s: GlobalStateState): string {
  const end = s.runstate.indexOf(0);
  return String.fromCharCode(...s.runstate.subarray(0, end < 0 ? s.runstate.length : end));
}
