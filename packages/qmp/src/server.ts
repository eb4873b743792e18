import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { parseQmpAddress, type QmpAddress } from './address.js';
import { type CommandContext, CommandRegistry } from './commands.js';
import { QmpFailure } from './errors.js';
import { JsonSplitter } from './json-splitter.js';
import {
  eventTimestamp,
  type JsonObject,
  type JsonValue,
  QMP_VERSION,
  type QmpGreeting,
  type QmpVersion,
} from './protocol.js';
import { parseCommand, type SessionState, stepSession } from './session.js';

export interface QmpServerOptions {
  version?: QmpVersion;
  /** Capabilities offered in the greeting (default none). */
  capabilities?: string[];
  commands?: CommandRegistry;
  /** Largest client message in bytes (default 1 MiB). */
  maxMessageBytes?: number;
}

interface Session {
  id: number;
  socket: Socket;
  state: SessionState;
  /** Commands run one after another, in arrival order. */
  queue: Promise<void>;
}

/**
 * A QMP server: greets each connection, negotiates capabilities, dispatches commands from the
 * {@link CommandRegistry} one at a time per connection, and broadcasts events to negotiated
 * sessions. Listens on unix sockets and tcp.
 */
export class QmpServer {
  readonly commands: CommandRegistry;
  private readonly opts: QmpServerOptions;
  private readonly sessions = new Set<Session>();
  private readonly servers: { server: Server; address: QmpAddress }[] = [];
  private nextId = 1;

  constructor(opts: QmpServerOptions = {}) {
    this.opts = opts;
    this.commands = opts.commands ?? new CommandRegistry();
    if (!this.commands.has('query-version'))
      this.commands.register('query-version', () => this.version() as unknown as JsonValue);
    if (!this.commands.has('query-commands')) {
      this.commands.register('query-commands', () =>
        ['qmp_capabilities', ...this.commands.names()].map((name) => ({ name })),
      );
    }
  }

  private version(): QmpVersion {
    return this.opts.version ?? QMP_VERSION;
  }

  /** Number of open connections. */
  get connections(): number {
    return this.sessions.size;
  }

  /** Starts listening; resolves with the bound address (tcp port 0 gives the real port). */
  async listen(where: QmpAddress | string): Promise<QmpAddress> {
    const address = typeof where === 'string' ? parseQmpAddress(where) : where;
    const server = createServer((socket) => this.accept(socket));
    if (address.kind === 'unix' && existsSync(address.path) && lstatSync(address.path).isSocket())
      unlinkSync(address.path);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      if (address.kind === 'unix') server.listen(address.path, resolve);
      else server.listen(address.port, address.host, resolve);
    });
    const bound = server.address();
    const actual: QmpAddress =
      address.kind === 'tcp' && bound && typeof bound === 'object' ? { ...address, port: bound.port } : address;
    this.servers.push({ server, address: actual });
    return actual;
  }

  /** Sends an event to every session past negotiation. */
  emit(event: string, data?: JsonObject): void {
    const msg =
      data === undefined ? { timestamp: eventTimestamp(), event } : { timestamp: eventTimestamp(), event, data };
    for (const s of this.sessions) if (s.state.kind === 'ready') send(s.socket, msg);
  }

  private accept(socket: Socket): void {
    const session: Session = { id: this.nextId++, socket, state: { kind: 'negotiating' }, queue: Promise.resolve() };
    this.sessions.add(session);
    const splitter = new JsonSplitter({ maxBytes: this.opts.maxMessageBytes ?? 1 << 20 });
    socket.on('data', (chunk) => {
      for (const r of splitter.push(chunk)) {
        if (!r.ok) send(socket, { error: { class: 'GenericError', desc: r.error } });
        else session.queue = session.queue.then(() => this.handle(session, r.value));
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      session.state = { kind: 'closed' };
      this.sessions.delete(session);
    });
    const greeting: QmpGreeting = { QMP: { version: this.version(), capabilities: this.opts.capabilities ?? [] } };
    send(socket, greeting);
  }

  private async handle(session: Session, value: unknown): Promise<void> {
    if (session.state.kind === 'closed') return;
    const input = parseCommand(value);
    const reply = (body: JsonObject) => send(session.socket, input.id === undefined ? body : { ...body, id: input.id });
    if (!input.ok) return reply({ error: { class: 'GenericError', desc: input.desc } });
    const action = stepSession(session.state, input.execute);
    if (action.do === 'reject') return reply({ error: { class: action.errorClass, desc: action.desc } });
    if (action.do === 'negotiate') {
      const enable = input.args.enable;
      const offered = this.opts.capabilities ?? [];
      const bad = Array.isArray(enable) ? enable.find((c) => typeof c !== 'string' || !offered.includes(c)) : undefined;
      if (bad !== undefined)
        return reply({ error: { class: 'GenericError', desc: `Capability '${String(bad)}' not available` } });
      session.state = action.next;
      return reply({ return: {} });
    }
    const after: (() => void | Promise<void>)[] = [];
    const ctx: CommandContext = { sessionId: session.id, afterReply: (fn) => after.push(fn) };
    try {
      reply({ return: await this.commands.run(input.execute, input.args, ctx) });
    } catch (err) {
      const failure = err instanceof QmpFailure ? err : undefined;
      reply({ error: { class: failure?.errorClass ?? 'GenericError', desc: (err as Error).message ?? String(err) } });
      return;
    }
    for (const fn of after) await fn();
  }

  /** Stops listening, closes every connection and removes unix socket files. */
  async close(): Promise<void> {
    for (const s of this.sessions) s.socket.destroy();
    this.sessions.clear();
    await Promise.all(
      this.servers.map(
        ({ server, address }) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            if (address.kind === 'unix' && existsSync(address.path)) {
              try {
                unlinkSync(address.path);
              } catch {
                // already gone
              }
            }
          }),
      ),
    );
    this.servers.length = 0;
  }
}

function send(socket: Socket, msg: unknown): void {
  if (!socket.destroyed && socket.writable) socket.write(`${JSON.stringify(msg)}\r\n`);
}
