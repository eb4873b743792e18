import { isObject, type JsonObject, type JsonValue } from './protocol.js';

/**
 * One QMP connection's protocol state (README: diagram). A session starts in capabilities
 * negotiation, where only `qmp_capabilities` is accepted; after it, every other command is
 * dispatched and events are delivered.
 */
export type SessionState = { kind: 'negotiating' } | { kind: 'ready' } | { kind: 'closed' };

/** What to do with one well-formed command in a given state. */
export type SessionAction =
  | { do: 'negotiate'; next: SessionState }
  | { do: 'dispatch' }
  | { do: 'reject'; errorClass: 'CommandNotFound' | 'GenericError'; desc: string };

export function stepSession(state: SessionState, command: string): SessionAction {
  switch (state.kind) {
    case 'negotiating':
      if (command === 'qmp_capabilities') return { do: 'negotiate', next: { kind: 'ready' } };
      return {
        do: 'reject',
        errorClass: 'CommandNotFound',
        desc: "Expecting capabilities negotiation with 'qmp_capabilities'",
      };
    case 'ready':
      if (command === 'qmp_capabilities') {
        return {
          do: 'reject',
          errorClass: 'CommandNotFound',
          desc: 'Capabilities negotiation is already complete, command ignored',
        };
      }
      return { do: 'dispatch' };
    case 'closed':
      return { do: 'reject', errorClass: 'GenericError', desc: 'session closed' };
  }
}

/** A parsed input: a command, or the error QEMU answers for a malformed one. */
export type ParsedInput =
  | { ok: true; execute: string; args: JsonObject; id: JsonValue | undefined }
  | { ok: false; desc: string; id: JsonValue | undefined };

/** Checks the shape of a client message as QEMU's dispatcher does. */
export function parseCommand(v: unknown): ParsedInput {
  if (!isObject(v)) return { ok: false, desc: 'QMP input must be a JSON object', id: undefined };
  const id = v.id;
  for (const k of Object.keys(v)) {
    if (k !== 'execute' && k !== 'arguments' && k !== 'id' && k !== 'exec-oob') {
      return { ok: false, desc: `QMP input member '${k}' is unexpected`, id };
    }
  }
  if (v['exec-oob'] !== undefined) return { ok: false, desc: 'Out-of-band execution is not supported', id };
  if (v.execute === undefined) return { ok: false, desc: "QMP input lacks member 'execute'", id };
  if (typeof v.execute !== 'string') return { ok: false, desc: "QMP input member 'execute' must be a string", id };
  const args = v.arguments ?? {};
  if (!isObject(args)) return { ok: false, desc: "QMP input member 'arguments' must be an object", id };
  return { ok: true, execute: v.execute, args, id };
}
