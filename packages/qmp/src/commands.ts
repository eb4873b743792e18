import { QmpFailure } from './errors.js';
import type { JsonObject, JsonValue } from './protocol.js';

/** What a handler can use besides its arguments. */
export interface CommandContext {
  /** The session the command came from. */
  readonly sessionId: number;
  /** Runs `fn` after the reply has been written (e.g. `quit` closes the server then). */
  afterReply(fn: () => void | Promise<void>): void;
}

export type CommandHandler = (
  args: JsonObject,
  ctx: CommandContext,
) => JsonValue | undefined | Promise<JsonValue | undefined>;

export interface CommandSpec {
  handler: CommandHandler;
  /** Argument names the command accepts; others are rejected like QEMU does. */
  args?: readonly string[];
  /** Argument names that must be present. */
  required?: readonly string[];
}

/**
 * The command table of a QMP server. Commands are registered by name (later issues add the
 * migration commands this way); a handler returns the `return` value (`{}` when undefined) or
 * throws {@link QmpFailure} for an error reply.
 */
export class CommandRegistry {
  private readonly commands = new Map<string, CommandSpec>();

  register(name: string, spec: CommandSpec | CommandHandler): this {
    if (this.commands.has(name)) throw new Error(`QMP command ${name} registered twice`);
    this.commands.set(name, typeof spec === 'function' ? { handler: spec } : spec);
    return this;
  }

  /** Replaces or adds a command. */
  set(name: string, spec: CommandSpec | CommandHandler): this {
    this.commands.set(name, typeof spec === 'function' ? { handler: spec } : spec);
    return this;
  }

  has(name: string): boolean {
    return this.commands.has(name);
  }

  names(): string[] {
    return [...this.commands.keys()].sort();
  }

  /** Validates the arguments against the spec and runs the handler. */
  async run(name: string, args: JsonObject, ctx: CommandContext): Promise<JsonValue> {
    const spec = this.commands.get(name);
    if (!spec) throw new QmpFailure(`The command ${name} has not been found`, 'CommandNotFound');
    if (spec.args) {
      for (const k of Object.keys(args)) {
        if (!spec.args.includes(k)) throw new QmpFailure(`Parameter '${k}' is unexpected`);
      }
    }
    for (const k of spec.required ?? []) {
      if (!(k in args)) throw new QmpFailure(`Parameter '${k}' is missing`);
    }
    const r = await spec.handler(args, ctx);
    return r === undefined ? {} : r;
  }
}

/** Reads a typed argument, answering a QEMU-style error when it has the wrong type. */
export function argString(args: JsonObject, name: string): string | undefined {
  const v = args[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new QmpFailure(`Invalid parameter type for '${name}', expected: string`);
  return v;
}

export function argNumber(args: JsonObject, name: string): number | undefined {
  const v = args[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new QmpFailure(`Invalid parameter type for '${name}', expected: number`);
  return v;
}

export function argBool(args: JsonObject, name: string): boolean | undefined {
  const v = args[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new QmpFailure(`Invalid parameter type for '${name}', expected: boolean`);
  return v;
}
