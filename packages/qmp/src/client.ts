import { createConnection, type Socket } from 'node:net';
import { formatQmpAddress, parseQmpAddress, type QmpAddress } from './address.js';
import { QmpCommandError, QmpError } from './errors.js';
import { JsonSplitter } from './json-splitter.js';
import { isObject, type JsonObject, type JsonValue, type QmpEvent, type QmpGreeting } from './protocol.js';

export interface QmpClientOptions {
  /** Milliseconds to wait for the connection and the greeting (default 10 s). */
  timeoutMs?: number;
  /** Send `qmp_capabilities` right after the greeting (default true). */
  negotiate?: boolean;
}

interface Pending {
  command: string;
  resolve: (v: JsonValue) => void;
  reject: (e: Error) => void;
}

/**
 * A QMP client (for the CLI and for driving QEMU): connects, reads the greeting, negotiates,
 * then `execute()`s commands (replies matched by `id`) and collects events.
 */
export class QmpClient {
  private greetingValue: QmpGreeting | undefined;
  private readonly socket: Socket;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<(e: QmpEvent) => void>();
  /** Events received so far (oldest first), for {@link waitEvent}. */
  readonly events: QmpEvent[] = [];
  private nextId = 1;
  private closedError: QmpError | undefined;
  private onGreeting: ((g: QmpGreeting | QmpError) => void) | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    const splitter = new JsonSplitter();
    socket.on('data', (chunk) => {
      for (const r of splitter.push(chunk)) this.onMessage(r.ok ? r.value : undefined, r.ok ? undefined : r.error);
    });
    socket.on('close', () => this.fail(new QmpError('E_QMP_CLOSED', 'QMP connection closed')));
    socket.on('error', (err) =>
      this.fail(new QmpError('E_QMP_CLOSED', `QMP connection failed: ${err.message}`, { cause: err })),
    );
  }

  /** The server's greeting. */
  get greeting(): QmpGreeting {
    return this.greetingValue as QmpGreeting;
  }

  /** Connects to `unix:PATH` / `tcp:HOST:PORT`, reads the greeting and (by default) negotiates. */
  static async connect(where: QmpAddress | string, opts: QmpClientOptions = {}): Promise<QmpClient> {
    const address = typeof where === 'string' ? parseQmpAddress(where) : where;
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const socket =
      address.kind === 'unix' ? createConnection(address.path) : createConnection(address.port, address.host);
    const client = new QmpClient(socket);
    const got = await new Promise<QmpGreeting | QmpError>((resolve) => {
      const timer = setTimeout(
        () =>
          resolve(
            new QmpError('E_QMP_TIMEOUT', `no QMP greeting from ${formatQmpAddress(address)} within ${timeoutMs} ms`),
          ),
        timeoutMs,
      );
      client.onGreeting = (g) => {
        clearTimeout(timer);
        resolve(g);
      };
    });
    client.onGreeting = undefined;
    if (got instanceof QmpError) {
      socket.destroy();
      throw got;
    }
    client.greetingValue = got;
    if (opts.negotiate ?? true) await client.execute('qmp_capabilities');
    return client;
  }

  /** Runs a command; resolves with its `return` value, rejects with {@link QmpCommandError}. */
  execute(command: string, args?: JsonObject): Promise<JsonValue> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise<JsonValue>((resolve, reject) => {
      this.pending.set(id, { command, resolve, reject });
      this.socket.write(
        `${JSON.stringify(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id })}\r\n`,
      );
    });
  }

  /** Subscribes to events; returns the unsubscribe function. */
  onEvent(fn: (e: QmpEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Resolves with the first event named `name` (matching `filter`) received after index `since`
   * of {@link events} (default: any not yet returned by this call style, i.e. from 0).
   */
  waitEvent(
    name: string,
    opts: { timeoutMs?: number; since?: number; filter?: (e: QmpEvent) => boolean } = {},
  ): Promise<QmpEvent> {
    const match = (e: QmpEvent) => e.event === name && (opts.filter?.(e) ?? true);
    const seen = this.events.slice(opts.since ?? 0).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new QmpError('E_QMP_TIMEOUT', `no ${name} event within ${opts.timeoutMs ?? 10_000} ms`));
      }, opts.timeoutMs ?? 10_000);
      const off = this.onEvent((e) => {
        if (!match(e)) return;
        clearTimeout(timer);
        off();
        resolve(e);
      });
    });
  }

  /** Closes the connection; pending commands reject with `E_QMP_CLOSED`. */
  async close(): Promise<void> {
    if (this.socket.destroyed) return;
    await new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 1000).unref();
    });
  }

  private onMessage(v: unknown, parseError: string | undefined): void {
    if (this.onGreeting) {
      const ok = parseError === undefined && isObject(v) && isObject(v.QMP);
      this.onGreeting(
        ok
          ? (v as unknown as QmpGreeting)
          : new QmpError('E_QMP_PROTOCOL', `expected a QMP greeting, got ${parseError ?? JSON.stringify(v)}`),
      );
      return;
    }
    if (parseError !== undefined || !isObject(v)) {
      this.fail(
        new QmpError('E_QMP_PROTOCOL', `unparsable QMP message from the server: ${parseError ?? JSON.stringify(v)}`),
      );
      this.socket.destroy();
      return;
    }
    if (typeof v.event === 'string') {
      const e = v as unknown as QmpEvent;
      this.events.push(e);
      for (const fn of [...this.listeners]) fn(e);
      return;
    }
    const id = typeof v.id === 'number' ? v.id : undefined;
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p || id === undefined) {
      this.fail(new QmpError('E_QMP_PROTOCOL', `QMP reply with unknown id: ${JSON.stringify(v)}`));
      return;
    }
    this.pending.delete(id);
    if ('return' in v) p.resolve(v.return as JsonValue);
    else if (isObject(v.error)) p.reject(new QmpCommandError(p.command, String(v.error.class), String(v.error.desc)));
    else p.reject(new QmpError('E_QMP_PROTOCOL', `QMP reply without return or error: ${JSON.stringify(v)}`));
  }

  private fail(err: QmpError): void {
    this.onGreeting?.(new QmpError(err.code, `${err.message} before the QMP greeting`, { cause: err.cause }));
    this.closedError ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
