import { MigrationStreamError } from '../errors.js';
import { ByteSource } from '../stream/byte-source.js';
import { StreamReader } from '../stream/stream-reader.js';
import type { Configuration } from '../wire/configuration.js';
import { loaderRegistryOf } from './device-loader.js';
import { type MigrationVm, wallClockMs } from './migration-vm.js';
import type { SaveVmHandlers } from './savevm-handlers.js';
import { DESTINATION_TRANSITIONS, type MigrationEvent, type MigrationState, step } from './state.js';
import type { QueryMigrate } from './stats.js';

/** The incoming connection: a transports `Channel` fits. */
export interface IncomingChannel {
  chunks(): AsyncIterable<Uint8Array>;
  cancel(reason?: string | Error): void;
  close(): Promise<unknown>;
}

/** Where the destination listens, as `query-migrate` shows it (`socket-address`). */
export type SocketAddress =
  | { type: 'inet'; host: string; port: string }
  | { type: 'unix'; path: string }
  | { type: 'fd'; str: string };

export interface IncomingOptions {
  vm: MigrationVm;
  handlers: SaveVmHandlers;
  /** Our configuration machine name: the stream's must be a prefix of it (QEMU's check). */
  machineName: string;
  /** Like `-S`: stay paused after the load even when the source was running. */
  autostart: boolean;
  onState?(state: MigrationState): void;
  now?: () => number;
}

/**
 * The destination side (QEMU's process_incoming_migration): `setup` while waiting for the
 * connection, `active` while the stream is loaded (RAM straight into guest memory, device
 * sections through VMState), then `completed` — and the guest starts when the stream's
 * `globalstate` says it was running (unless autostart is off) — or `failed` with the typed error.
 */
export class IncomingMigration {
  private readonly o: IncomingOptions;
  private st: MigrationState = { status: 'none' };
  private failure: Error | undefined;
  private vcpuStartTime: number | undefined;
  private bytes = 0;
  private channel: IncomingChannel | undefined;
  /** Listening addresses (`socket-address`). */
  socketAddress: SocketAddress[] | undefined;

  constructor(opts: IncomingOptions) {
    this.o = opts;
  }

  get state(): MigrationState {
    return this.st;
  }

  /** The error that failed the migration (typed: MigrationStreamError, TransportError, …). */
  get error(): Error | undefined {
    return this.failure;
  }

  /** Enters `setup`: waiting for the source to connect. */
  listening(address: SocketAddress[] | undefined): void {
    this.socketAddress = address;
    this.transition({ type: 'start' });
  }

  /** Loads the whole stream from `channel`; resolves with the final state (never rejects). */
  async load(channel: IncomingChannel): Promise<MigrationState> {
    this.channel = channel;
    if (this.st.status === 'none') this.transition({ type: 'start' });
    this.transition({ type: 'setup-done' });
    try {
      const source = new ByteSource(channel.chunks(), {
        channel: 'main',
        onProgress: (n) => {
          this.bytes = n;
        },
      });
      const reader = new StreamReader(source, {
        resolver: loaderRegistryOf(this.o.handlers),
        visitor: { configuration: (c, place) => this.checkConfiguration(c, place.offset) },
      });
      await reader.read();
      this.o.handlers.afterLoad?.();
      await channel.close();
      // QEMU: without globalstate, or when the source ran, obey autostart; else take its state.
      const ran = this.o.vm.loadedRunState?.();
      if (ran !== undefined && ran !== 'running') {
        this.o.vm.setRunState(ran);
      } else if (this.o.autostart) {
        await this.o.vm.start();
        this.vcpuStartTime = wallClockMs();
      } else {
        this.o.vm.setRunState('paused');
      }
      this.transition({ type: 'complete' });
    } catch (err) {
      this.fail(err);
    }
    return this.st;
  }

  /** Fails before or during the load (the listener failed, the peer was refused, …). */
  fail(err: unknown): void {
    this.failure ??= err instanceof Error ? err : new Error(String(err));
    this.channel?.cancel(this.failure);
    if (this.st.status === 'none') this.transition({ type: 'start' });
    const e = this.failure as Error & { code?: string };
    if (this.st.status === 'setup' || this.st.status === 'active') {
      this.transition({ type: 'fail', error: e.code ? `${e.code}: ${e.message}` : e.message });
    }
  }

  /** The destination's `query-migrate`: status (+ error-desc), socket-address, bytes received. */
  query(): QueryMigrate {
    const out: QueryMigrate = {};
    if (this.socketAddress) (out as Record<string, unknown>)['socket-address'] = this.socketAddress;
    if (this.st.status === 'none') return out;
    out.status = this.st.status;
    if (this.st.status === 'failed') out['error-desc'] = this.st.error;
    out['x-bytes-received'] = this.bytes;
    if (this.vcpuStartTime !== undefined) out['x-vcpu-start-time'] = this.vcpuStartTime;
    return out;
  }

  private checkConfiguration(c: Configuration, offset: number): void {
    const local = this.o.machineName;
    if (local.slice(0, c.machine.length) !== c.machine || c.machine.length === 0) {
      throw new MigrationStreamError(
        'E_BAD_CONFIGURATION',
        `machine type received is "${c.machine}" (configuration record at byte offset ${offset}) and local is "${local}"`,
        { offset, record: 'configuration' },
      );
    }
    for (const sub of c.subsections) {
      if (sub.name === 'configuration/capabilities' && sub.capabilities.length > 0) {
        throw new MigrationStreamError(
          'E_BAD_CONFIGURATION',
          `the source enabled validated capabilities ${sub.capabilities.join(', ')} that this destination does not have (byte offset ${offset})`,
          { offset, record: sub.name },
        );
      }
      if (sub.name === 'configuration/target-page-bits' && 2 ** sub.targetPageBits !== 4096) {
        throw new MigrationStreamError(
          'E_BAD_CONFIGURATION',
          `target page bits ${sub.targetPageBits} differ from local 12 (byte offset ${offset})`,
          { offset, record: sub.name },
        );
      }
    }
  }

  private transition(e: MigrationEvent): void {
    this.st = step(DESTINATION_TRANSITIONS, this.st, e);
    this.o.onState?.(this.st);
  }
}
