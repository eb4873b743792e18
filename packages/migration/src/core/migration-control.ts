import {
  type Channel,
  connect,
  type Listener,
  listen,
  type MigrationUri,
  parseUri,
  type QomObjectAdd,
  TlsCredsRegistry,
  TransportError,
} from '@e2k-migrate/transports';
import { Capabilities, type MigrationCapability } from './capabilities.js';
import { MigrationControlError } from './errors.js';
import { IncomingMigration, type SocketAddress } from './incoming.js';
import type { IncomingPostcopy } from './incoming-postcopy.js';
import type { MigrationVm } from './migration-vm.js';
import { OutgoingMigration, type VerbatimState } from './outgoing.js';
import { Parameters } from './parameters.js';
import type { SaveVmHandlers } from './savevm-handlers.js';
import { isActive, type MigrationState } from './state.js';
import type { QueryMigrate } from './stats.js';

/** Capabilities this build implements; the others are a typed "not supported yet" error. */
export const SUPPORTED_CAPABILITIES: readonly MigrationCapability[] = [
  'xbzrle',
  'auto-converge',
  'events',
  'postcopy-ram',
  'postcopy-preempt',
  'postcopy-blocktime',
  'return-path',
];

/** Accepted-connection errors after which the destination keeps listening (QEMU drops the peer). */
const REFUSED_PEER = new Set(['E_TLS', 'E_TLS_AUTHZ', 'E_TIMEOUT']);

export interface MigrationControlOptions {
  vm: MigrationVm;
  handlers: SaveVmHandlers;
  machineName: string;
  targetPageSize: number;
  /** QMP events (`MIGRATION`, `MIGRATION_PASS`). */
  emit(event: string, data: Record<string, unknown>): void;
  /** Diagnostics (a refused TLS peer, …). */
  log?(line: string): void;
  /** False for `-S`: the destination stays paused after an incoming migration. */
  autostart?: boolean;
  /** The incoming migration completed or failed (its `state` and `error` say which). */
  onIncomingFinished?(incoming: IncomingMigration): void;
  /** Outgoing: the configuration and device state of a stored migration, sent verbatim. */
  verbatim?: VerbatimState;
  /**
   * Creates the postcopy destination of an incoming migration when the capabilities ask for it
   * (postcopy-ram): `@e2k-migrate/postcopy`'s PostcopyIncoming over the VM's RAM and vCPUs.
   */
  incomingPostcopy?(caps: Capabilities): IncomingPostcopy | undefined;
}

/**
 * The migration side of one VM process, with QMP semantics: capabilities and parameters (QEMU
 * 7.2 names and defaults), TLS objects, `migrate`, `migrate-incoming`, `migrate_cancel`,
 * `query-migrate`, and the `MIGRATION` events (only with the `events` capability, as QEMU).
 */
export class MigrationControl {
  readonly caps = new Capabilities(SUPPORTED_CAPABILITIES);
  readonly params = new Parameters();
  readonly tls = new TlsCredsRegistry();
  private readonly o: MigrationControlOptions;
  private outgoing: OutgoingMigration | undefined;
  private incoming: IncomingMigration | undefined;
  private listener: Listener | undefined;
  private deferred = false;
  private incomingResult: Promise<IncomingMigration> | undefined;

  constructor(opts: MigrationControlOptions) {
    this.o = opts;
  }

  /** True while a migration (either direction) is in progress. */
  get busy(): boolean {
    return (
      (this.outgoing !== undefined && isActive(this.outgoing.state.status)) ||
      (this.incoming !== undefined && isActive(this.incoming.state.status))
    );
  }

  /** The current outgoing migration, if any. */
  get currentOutgoing(): OutgoingMigration | undefined {
    return this.outgoing;
  }

  /** `-incoming defer`: `migrate-incoming` will name the URI. */
  deferIncoming(): void {
    this.deferred = true;
  }

  /**
   * QMP `migrate`: starts an outgoing migration in the background; with `resume`, reconnects a
   * paused postcopy migration to `uri` (the destination's `migrate-recover` address).
   */
  migrate(uri: string, opts: { blk?: boolean; inc?: boolean; resume?: boolean } = {}): OutgoingMigration {
    if (opts.blk || opts.inc) {
      throw new MigrationControlError('E_NOT_SUPPORTED', 'block migration (blk/inc) is not supported by e2k-migrate');
    }
    if (opts.resume) {
      const paused = this.outgoing;
      if (paused?.state.status !== 'postcopy-paused') {
        throw new MigrationControlError('E_BAD_STATE', 'Cannot resume if there is no paused migration');
      }
      const target = parseUri(uri);
      const tls = this.tls.settings(this.params.query(), 'client');
      paused.resume((signal) => connect(target, { tls, signal }));
      return paused;
    }
    if (this.busy) throw new MigrationControlError('E_BAD_STATE', "There's a migration process in progress");
    if (this.o.vm.runState === 'inmigrate') {
      throw new MigrationControlError('E_BAD_STATE', 'Guest is waiting for an incoming migration');
    }
    const target = parseUri(uri);
    const tls = this.tls.settings(this.params.query(), 'client');
    const out = new OutgoingMigration({
      vm: this.o.vm,
      handlers: this.o.handlers,
      caps: this.caps,
      params: this.params,
      machineName: this.o.machineName,
      targetPageSize: this.o.targetPageSize,
      open: (signal) => connect(target, { tls, signal }),
      onState: (s) => this.stateChanged(s),
      onEvent: (name, data) => {
        if (this.caps.has('events')) this.o.emit(name, data);
      },
      ...(this.o.log ? { log: this.o.log } : {}),
      ...(this.o.verbatim ? { verbatim: this.o.verbatim } : {}),
    });
    this.outgoing = out;
    return out;
  }

  /** QMP `migrate-start-postcopy`: the outgoing migration switches to postcopy at its next iteration. */
  startPostcopy(): void {
    if (!this.caps.has('postcopy-ram')) {
      throw new MigrationControlError(
        'E_BAD_STATE',
        'Enable postcopy with migrate_set_capability before the start of migration',
      );
    }
    if (!this.outgoing) {
      throw new MigrationControlError('E_BAD_STATE', 'Postcopy must be started after migration has been started');
    }
    // Not an error once the migration finished: that would race with the command (as QEMU).
    this.outgoing.startPostcopy();
  }

  /**
   * QMP `migrate-pause`: an outgoing migration in postcopy-active drops its connections and
   * pauses (the destination pauses as it loses them).
   */
  pause(): void {
    if (this.outgoing?.state.status === 'postcopy-active') {
      this.outgoing.pause();
      return;
    }
    throw new MigrationControlError(
      'E_BAD_STATE',
      'migrate-pause is currently only supported during postcopy-active state',
    );
  }

  /** `-incoming URI` at startup, or QMP `migrate-incoming` after `-incoming defer`. */
  async startIncoming(uri: string, fromQmp = false): Promise<void> {
    if (fromQmp && !this.deferred) {
      throw new MigrationControlError(
        'E_BAD_STATE',
        this.incoming
          ? 'The incoming migration has already been started'
          : "'-incoming' was not specified on the command line",
      );
    }
    if (this.incoming)
      throw new MigrationControlError('E_BAD_STATE', 'The incoming migration has already been started');
    const target = parseUri(uri);
    const tls = this.tls.settings(this.params.query(), 'server');
    const postcopy = this.caps.has('postcopy-ram') ? this.o.incomingPostcopy?.(this.caps) : undefined;
    if (this.caps.has('postcopy-ram') && !postcopy) {
      throw new MigrationControlError('E_NOT_SUPPORTED', 'this VM cannot be a postcopy destination');
    }
    const inc = new IncomingMigration({
      vm: this.o.vm,
      handlers: this.o.handlers,
      machineName: this.o.machineName,
      autostart: this.o.autostart ?? true,
      onState: (s) => this.stateChanged(s),
      ...(postcopy ? { postcopy } : {}),
    });
    this.incoming = inc;
    this.deferred = false;
    try {
      this.listener = await listen(target, { tls, readHighWaterMark: 512 << 10 });
    } catch (err) {
      inc.fail(err);
      this.incomingResult = Promise.resolve(inc);
      this.o.onIncomingFinished?.(inc);
      throw err;
    }
    inc.listening(socketAddress(this.listener.address));
    this.incomingResult = this.acceptAndLoad(inc, this.listener).then((done) => {
      this.o.onIncomingFinished?.(done);
      return done;
    });
  }

  /** Resolves once the incoming migration has completed or failed (undefined if none started). */
  incomingFinished(): Promise<IncomingMigration> | undefined {
    return this.incomingResult;
  }

  private async acceptAndLoad(inc: IncomingMigration, listener: Listener): Promise<IncomingMigration> {
    let channels: { main: Channel; preempt?: Channel };
    try {
      channels = await this.acceptChannels(listener, inc.postcopy?.preempt === true);
    } catch (err) {
      inc.fail(err);
      await listener.close();
      return inc;
    }
    await listener.close();
    await inc.load(channels.main, channels.preempt ? { preempt: channels.preempt } : {});
    return inc;
  }

  /** The main connection, then (postcopy-preempt) the preempt connection, in arrival order. */
  private async acceptChannels(listener: Listener, preempt: boolean): Promise<{ main: Channel; preempt?: Channel }> {
    const next = async (): Promise<Channel> => {
      for (;;) {
        try {
          return await listener.accept();
        } catch (err) {
          if (!(err instanceof TransportError) || !REFUSED_PEER.has(err.code)) throw err;
          this.o.log?.(`incoming connection refused: ${err.code}: ${err.message}`);
        }
      }
    };
    const main = await next();
    return preempt ? { main, preempt: await next() } : { main };
  }

  /**
   * QMP `migrate-recover URI`: listens again for a paused postcopy migration; the first
   * connection continues the main stream (the preempt connection follows with postcopy-preempt).
   */
  async recoverIncoming(uri: string): Promise<void> {
    const inc = this.incoming;
    const status = inc?.state.status ?? 'none';
    if (inc === undefined || status !== 'postcopy-paused') {
      throw new MigrationControlError(
        'E_BAD_STATE',
        `Migrate recover can only be run when postcopy is paused (state ${status})`,
      );
    }
    const target = parseUri(uri);
    const tls = this.tls.settings(this.params.query(), 'server');
    const listener = await listen(target, { tls, readHighWaterMark: 512 << 10 });
    this.listener = listener;
    inc.socketAddress = socketAddress(listener.address);
    // The main connection resumes at once; a preempt connection may follow (attached when it comes).
    void this.acceptChannels(listener, false)
      .then(async (ch) => {
        try {
          inc.resume(ch.main);
        } catch (err) {
          ch.main.cancel(err as Error);
          throw err;
        }
        if (inc.postcopy?.preempt) inc.postcopy.attachPreempt(await listener.accept());
      })
      .catch((err) => this.o.log?.(`migrate-recover on ${uri}: ${(err as Error).message}`))
      .finally(() => void listener.close());
  }

  /** QMP `migrate_cancel`: cancels the outgoing migration (no effect on the destination, as QEMU). */
  cancel(): void {
    this.outgoing?.cancel();
  }

  /** QMP `migrate-set-capabilities`. */
  setCapabilities(list: readonly { capability: string; state: boolean }[]): void {
    if (this.busy) throw new MigrationControlError('E_BAD_STATE', "There's a migration process in progress");
    this.caps.set(list);
  }

  /** QMP `migrate-set-parameters` (tls-* may be null, meaning ""). */
  setParameters(changes: Readonly<Record<string, unknown>>): void {
    const clean: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(changes)) clean[k] = v === null && k.startsWith('tls-') ? '' : v;
    if (typeof clean['tls-creds'] === 'string' && clean['tls-creds'] !== '') this.tls.creds(clean['tls-creds']);
    if (typeof clean['tls-authz'] === 'string' && clean['tls-authz'] !== '') this.tls.authz(clean['tls-authz']);
    this.params.set(clean);
    this.outgoing?.parametersChanged();
  }

  /** QMP `query-migrate`: the outgoing migration's view, else the incoming one's. */
  queryMigrate(): QueryMigrate {
    if (this.outgoing) return this.outgoing.query();
    return this.incoming?.query() ?? {};
  }

  /** QMP `object-add` for `tls-creds-x509` and the authz objects. */
  async objectAdd(args: QomObjectAdd): Promise<void> {
    await this.tls.objectAdd(args);
  }

  objectDel(id: string): void {
    this.tls.objectDel(id);
  }

  /** Process exit: cancels a migration in progress either way and waits until it let go of the VM. */
  async close(): Promise<void> {
    this.outgoing?.cancel();
    // Postcopy cannot be cancelled (the guest runs on the destination); at exit it is abandoned.
    if (this.outgoing && isActive(this.outgoing.state.status)) {
      this.outgoing.terminate(new MigrationControlError('E_BAD_STATE', 'the VM is shutting down'));
    }
    await this.outgoing?.done;
    if (this.incoming && isActive(this.incoming.state.status)) {
      this.incoming.fail(new MigrationControlError('E_BAD_STATE', 'the VM is shutting down'));
    }
    await this.listener?.close();
    await this.incomingResult;
  }

  private stateChanged(s: MigrationState): void {
    if (this.caps.has('events')) this.o.emit('MIGRATION', { status: s.status });
  }
}

function socketAddress(a: MigrationUri): SocketAddress[] | undefined {
  if (a.transport === 'tcp') return [{ type: 'inet', host: a.host, port: String(a.port) }];
  if (a.transport === 'unix') return [{ type: 'unix', path: a.path }];
  return undefined;
}
