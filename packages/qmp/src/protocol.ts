/**
 * QMP messages (QEMU's JSON machine protocol), as plain types.
 *
 * | direction | message |
 * |---|---|
 * | server → client, on connect | `{"QMP": {"version": {...}, "capabilities": [...]}}` |
 * | client → server | `{"execute": NAME, "arguments"?: {...}, "id"?: ANY}` |
 * | server → client | `{"return": VALUE, "id"?: ANY}` or `{"error": {"class": C, "desc": D}, "id"?: ANY}` |
 * | server → client, any time after negotiation | `{"timestamp": {"seconds": S, "microseconds": US}, "event": NAME, "data"?: {...}}` |
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };
export type JsonObject = { [k: string]: JsonValue };

export interface QmpVersion {
  qemu: { major: number; minor: number; micro: number };
  package: string;
}

export interface QmpGreeting {
  QMP: { version: QmpVersion; capabilities: string[] };
}

export interface QmpCommandMessage {
  execute: string;
  arguments?: JsonObject;
  id?: JsonValue;
}

export interface QmpReturn {
  return: JsonValue;
  id?: JsonValue;
}

export interface QmpErrorReply {
  error: { class: string; desc: string };
  id?: JsonValue;
}

export interface QmpEvent {
  timestamp: { seconds: number; microseconds: number };
  event: string;
  data?: JsonObject;
}

/** The version the server announces: QEMU 7.2's wire behaviour, this project's package string. */
export const QMP_VERSION: QmpVersion = { qemu: { major: 7, minor: 2, micro: 0 }, package: 'e2k-migrate 0.1.0' };

/** Event timestamp from the wall clock, as QEMU stamps events. */
export function eventTimestamp(nowMs: number = Date.now()): QmpEvent['timestamp'] {
  const seconds = Math.floor(nowMs / 1000);
  return { seconds, microseconds: Math.floor((nowMs - seconds * 1000) * 1000) };
}

export function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
