import { MigrationStreamError, UnsupportedFeatureError } from '../errors.js';
import { ByteSource } from '../stream/byte-source.js';
import type { LoaderResolver } from '../stream/section-loader.js';
import { StreamReader, type StreamVisitor } from '../stream/stream-reader.js';
import type { MigCommand } from '../wire/command.js';
import type { Configuration } from '../wire/configuration.js';
import { encodeRpMessage, type RpMessage } from '../wire/return-path.js';
import { loaderRegistryOf } from './device-loader.js';
import { MigrationControlError } from './errors.js';
import type { ExtraChannel, IncomingPostcopy } from './incoming-postcopy.js';
import { type MigrationVm, wallClockMs } from './migration-vm.js';
import type { SaveVmHandlers } from './savevm-handlers.js';
import { DESTINATION_TRANSITIONS, type MigrationEvent, type MigrationState, step } from './state.js';
import type { QueryMigrate } from './stats.js';

/** The incoming connection: a transports `Channel` fits. */
export interface IncomingChannel {
  chunks(): AsyncIterable<Uint8Array>;
  cancel(reason?: string | Error): void;
  close(): Promise<unknown>;
  /** The return path (same socket, other direction); absent on one-way inputs (file, exec). */
  write?(bytes: Uint8Array): Promise<unknown>;
  /** Pushes written bytes to the kernel. */
  flush?(): Promise<unknown>;
}

/** Where the destination listens, as `query-migrate` shows it (`socket-address`). */
export type SocketAddress =
  | { type: 'inet'; host: string; port: string }
  | { type: 'unix'; path: string }
  | { type: 'fd'; str: string };

export interface IncomingOptions {
  vm: MigrationVm;
  handlers: SaveVmHandlers;
  /** Our configuration machine name: the stream's must be a prefix of it (QEMU's check); undefined = any. */
  machineName?: string;
  /** Like `-S`: stay paused after the load even when the source was running. */
  autostart: boolean;
  /** Postcopy destination (capability postcopy-ram); without it postcopy commands are refused. */
  postcopy?: IncomingPostcopy;
  /** Loaders of the sections (default: the handlers' loaders). */
  resolver?: LoaderResolver;
  /** More callbacks on the stream (a receiver that stores what it reads). */
  visitor?: StreamVisitor;
  onState?(state: MigrationState): void;
  now?: () => number;
}

/**
 * The destination side (QEMU's process_incoming_migration): `setup` while waiting for the
 * connection, `active` while the stream is loaded (RAM straight into guest memory, device
 * sections through VMState), then `completed` — and the guest starts when the stream's
 * `globalstate` says it was running (unless autostart is off) — or `failed` with the typed error.
 *
 * The return path is answered when the source opens it (PONG per PING, SHUT at the end). With
 * postcopy, POSTCOPY_LISTEN makes the state `postcopy-active`, POSTCOPY_RUN starts the guest while
 * its memory is still arriving, and any failure after RUN pauses (`postcopy-paused`) instead of
 * failing: {@link resume} (QMP `migrate-recover`) continues on a new connection.
 */
export class IncomingMigration {
  private readonly o: IncomingOptions;
  private st: MigrationState = { status: 'none' };
  private failure: Error | undefined;
  private vcpuStartTime: number | undefined;
  private bytes = 0;
  private channel: IncomingChannel | undefined;
  private rpOpen = false;
  private guestStarted = false;
  private recoverWaiter:
    | { resolve(next: { channel: IncomingChannel; preempt?: ExtraChannel }): void; reject(err: Error): void }
    | undefined;
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

  /** The postcopy destination, when postcopy-ram is on. */
  get postcopy(): IncomingPostcopy | undefined {
    return this.o.postcopy;
  }

  /** Enters `setup`: waiting for the source to connect. */
  listening(address: SocketAddress[] | undefined): void {
    this.socketAddress = address;
    this.transition({ type: 'start' });
  }

  /**
   * Loads the whole stream from `channel` (and the postcopy-preempt connection, when there is
   * one); resolves with the final state (never rejects). A postcopy pause waits here for
   * {@link resume}.
   */
  async load(channel: IncomingChannel, extra: { preempt?: ExtraChannel } = {}): Promise<MigrationState> {
    this.channel = channel;
    if (this.st.status === 'none') this.transition({ type: 'start' });
    this.transition({ type: 'setup-done' });
    const pc = this.o.postcopy;
    if (pc && extra.preempt) pc.attachPreempt(extra.preempt);
    let reader: StreamReader | undefined;
    try {
      for (;;) {
        const ch = this.channel;
        try {
          reader = this.reader(ch, reader);
          await reader.read();
          // The wrap-up (the preempt channel's final EOS, the last placements) is part of the
          // postcopy phase too: a failure there pauses, and the source sends the rest again.
          if (pc) await pc.finish();
          break;
        } catch (err) {
          // QEMU keeps a running postcopy guest: any failure after RUN pauses instead of failing.
          if (pc?.phase !== 'running') throw err;
          await this.pauseUntilRecovered(ch, err);
        }
      }
      if (!this.guestStarted) this.o.handlers.afterLoad?.();
      if (this.rpOpen) {
        await this.sendRp({ type: 'SHUT', value: 0 });
        await this.channel.flush?.();
      }
      await this.channel.close();
      if (!this.guestStarted) await this.startGuest();
      this.transition({ type: 'complete' });
    } catch (err) {
      this.fail(err);
    }
    return this.st;
  }

  /**
   * QMP `migrate-recover`: the new connection (and preempt connection) of a paused postcopy
   * migration. The stream continues on it without a header; the return path is open on it.
   */
  resume(channel: IncomingChannel, preempt?: ExtraChannel): void {
    const wake = this.recoverWaiter;
    if (this.st.status !== 'postcopy-paused' || wake === undefined) {
      throw new MigrationControlError(
        'E_BAD_STATE',
        `migrate-recover needs a paused postcopy migration (state ${this.st.status})`,
      );
    }
    this.recoverWaiter = undefined;
    wake.resolve(preempt ? { channel, preempt } : { channel });
  }

  /** Fails before or during the load (the listener failed, the peer was refused, …). */
  fail(err: unknown): void {
    this.failure ??= err instanceof Error ? err : new Error(String(err));
    void this.sendRp({ type: 'SHUT', value: 1 }).catch(() => undefined);
    this.channel?.cancel(this.failure);
    this.o.postcopy?.abort(this.failure);
    if (this.st.status === 'none') this.transition({ type: 'start' });
    const e = this.failure as Error & { code?: string };
    const desc = e.code ? `${e.code}: ${e.message}` : e.message;
    const waiter = this.recoverWaiter;
    this.recoverWaiter = undefined;
    waiter?.reject(this.failure);
    if (['setup', 'active', 'postcopy-active', 'postcopy-paused', 'postcopy-recover'].includes(this.st.status)) {
      this.transition({ type: 'fail', error: desc });
    }
  }

  /** The destination's `query-migrate`: status (+ error-desc), socket-address, bytes received, postcopy. */
  query(): QueryMigrate {
    const out: QueryMigrate = {};
    if (this.socketAddress) (out as Record<string, unknown>)['socket-address'] = this.socketAddress;
    if (this.st.status === 'none') return out;
    out.status = this.st.status;
    if (this.st.status === 'failed') out['error-desc'] = this.st.error;
    if (this.st.status === 'postcopy-paused') out['x-pause-reason'] = this.st.error;
    out['x-bytes-received'] = this.bytes;
    if (this.vcpuStartTime !== undefined) out['x-vcpu-start-time'] = this.vcpuStartTime;
    if (this.o.postcopy && this.o.postcopy.phase !== 'none') Object.assign(out, this.o.postcopy.query());
    return out;
  }

  private reader(ch: IncomingChannel, previous: StreamReader | undefined): StreamReader {
    const base = this.bytes;
    const source = new ByteSource(ch.chunks(), {
      channel: 'main',
      // Let fault notifications (postcopy) and QMP in between stream chunks, at least every 1 ms.
      yieldEveryMs: 1,
      onProgress: (n) => {
        this.bytes = base + n;
      },
    });
    const pc = this.o.postcopy;
    const loaders = this.o.resolver ?? loaderRegistryOf(this.o.handlers);
    const resolver: LoaderResolver = pc
      ? {
          resolve: (s) => {
            const l = loaders.resolve(s);
            return l && s.idstr === 'ram' ? pc.wrapRamLoader(l) : l;
          },
        }
      : loaders;
    const extra = this.o.visitor ?? {};
    const visitor: StreamVisitor = {
      ...extra,
      configuration: async (c, place) => {
        this.checkConfiguration(c, place.offset);
        await extra.configuration?.(c, place);
      },
      command: async (c, place) => {
        await this.command(c, place.offset, ch);
        await extra.command?.(c, place);
      },
    };
    return previous
      ? new StreamReader(source, { resolver, visitor, header: false, continueFrom: previous, liveSource: true })
      : new StreamReader(source, { resolver, visitor, liveSource: true });
  }

  private async command(c: MigCommand, at: number, ch: IncomingChannel): Promise<void> {
    const pc = this.o.postcopy;
    switch (c.cmd) {
      case 'OPEN_RETURN_PATH':
        if (!ch.write) {
          throw new MigrationStreamError(
            'E_UNSUPPORTED_FEATURE',
            `OPEN_RETURN_PATH at byte offset ${at}: this input is one-way and cannot carry a return path`,
            { offset: at, record: 'command OPEN_RETURN_PATH' },
          );
        }
        this.openReturnPath(ch);
        return;
      case 'PING':
        if (!this.rpOpen) {
          throw new MigrationStreamError('E_BAD_COMMAND', `PING ${c.value} at byte offset ${at} with no return path`, {
            offset: at,
            record: 'command PING',
          });
        }
        await this.sendRp({ type: 'PONG', value: c.value });
        return;
      case 'PACKAGED':
        return;
      case 'ENABLE_COLO':
        throw new UnsupportedFeatureError('x-colo', at, 'COLO is not supported', { record: 'command ENABLE_COLO' });
      default:
        if (!pc) {
          throw new UnsupportedFeatureError(
            'postcopy',
            at,
            `command ${c.cmd}: postcopy-ram is not enabled on this destination`,
            { record: `command ${c.cmd}` },
          );
        }
        await pc.command(c, at);
        if (c.cmd === 'POSTCOPY_LISTEN') this.transition({ type: 'postcopy-start' });
        if (c.cmd === 'POSTCOPY_RESUME') this.transition({ type: 'resumed' });
        if (c.cmd === 'POSTCOPY_RUN') {
          // QEMU's postcopy RUN: device state is complete; the guest runs and faults for its RAM.
          this.o.handlers.afterLoad?.();
          await this.startGuest();
        }
    }
  }

  private openReturnPath(ch: IncomingChannel): void {
    this.rpOpen = true;
    this.o.postcopy?.attachMain({
      send: (m) => this.sendRp(m),
      fail: (err) => ch.cancel(err),
    });
  }

  private async sendRp(m: RpMessage): Promise<void> {
    const ch = this.channel;
    if (!this.rpOpen || !ch?.write) return;
    await ch.write(encodeRpMessage(m).written().slice());
  }

  private async pauseUntilRecovered(ch: IncomingChannel, err: unknown): Promise<void> {
    const e = err instanceof Error ? err : new Error(String(err));
    const pc = this.o.postcopy as IncomingPostcopy;
    this.rpOpen = false;
    pc.attachMain(undefined);
    pc.pause(e);
    ch.cancel(e);
    const { code, channel } = e as { code?: string; channel?: string };
    // Offsets in the message count on the channel that failed: name it unless it is the main one.
    const where = channel && channel !== 'main' ? ` (${channel} channel)` : '';
    const next = await new Promise<{ channel: IncomingChannel; preempt?: ExtraChannel }>((resolve, reject) => {
      this.recoverWaiter = { resolve, reject };
      this.transition({ type: 'pause', error: `${code ? `${code}: ` : ''}${e.message}${where}` });
    });
    this.channel = next.channel;
    this.transition({ type: 'recover' });
    pc.recovering();
    // The source reopens the return path on the new connection implicitly (no OPEN_RETURN_PATH).
    this.openReturnPath(next.channel);
    if (next.preempt) pc.attachPreempt(next.preempt);
  }

  private async startGuest(): Promise<void> {
    this.guestStarted = true;
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
  }

  private checkConfiguration(c: Configuration, offset: number): void {
    const local = this.o.machineName;
    if (local !== undefined && (local.slice(0, c.machine.length) !== c.machine || c.machine.length === 0)) {
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
