import type { PostcopyPhase } from '@e2k-migrate/migration';
import { PostcopyProtocolError } from './postcopy-protocol-error.js';

/** What moves the destination's postcopy state (QEMU's PostcopyState). */
export type PostcopyPhaseEvent = 'advise' | 'discard' | 'listen' | 'run' | 'end';

const TRANSITIONS: Record<PostcopyPhaseEvent, Partial<Record<PostcopyPhase, PostcopyPhase>>> = {
  advise: { none: 'advise' },
  discard: { advise: 'discard', discard: 'discard' },
  listen: { advise: 'listening', discard: 'listening' },
  run: { listening: 'running' },
  end: { running: 'end' },
};

const COMMAND: Record<PostcopyPhaseEvent, string> = {
  advise: 'POSTCOPY_ADVISE',
  discard: 'POSTCOPY_RAM_DISCARD',
  listen: 'POSTCOPY_LISTEN',
  run: 'POSTCOPY_RUN',
  end: 'the end of the stream',
};

/**
 * One step of the destination's postcopy state machine (spec §9.2):
 * NONE → ADVISE → (DISCARD)* → LISTENING → RUNNING → END. Anything else is a typed
 * `E_POSTCOPY_SEQUENCE` error naming the command, its byte offset and the current state.
 */
export function stepPhase(phase: PostcopyPhase, event: PostcopyPhaseEvent, at: number): PostcopyPhase {
  const to = TRANSITIONS[event][phase];
  if (to === undefined) {
    const allowed = Object.keys(TRANSITIONS[event]).join(' or ');
    throw new PostcopyProtocolError(
      'E_POSTCOPY_SEQUENCE',
      `${COMMAND[event]} at byte offset ${at} while the postcopy state is ${phase.toUpperCase()} (allowed in ${allowed.toUpperCase()})`,
      { offset: at, record: `command ${COMMAND[event]}` },
    );
  }
  return to;
}
