import { describeMachine, type E2kMachine, type RunState } from '@e2k-migrate/e2k-cpu';
import {
  type IncomingMigration,
  MigrationControl,
  type MigrationVm,
  migrationQmpCommands,
  SaveVmHandlers,
} from '@e2k-migrate/migration';
import { type DirtyTrackingMode, RamLoadHandler, RamSaveHandler } from '@e2k-migrate/migration-ram';
import { PostcopyIncoming, PostcopyRamSource } from '@e2k-migrate/postcopy';
import type { JsonObject, JsonValue, QmpServer } from '@e2k-migrate/qmp';
import { registerPostcopyLatencyCommand } from './postcopy-latency-command.js';

/** The configuration record's machine name of the E2K machine. */
export const E2K_MACHINE_NAME = 'e2k';

export interface VmMigrationOptions {
  /** QMP server to register the migration commands on and to emit events through. */
  server: QmpServer | undefined;
  /** False for `--paused` (-S): an incoming guest stays paused. */
  autostart: boolean;
  tracking: DirtyTrackingMode;
  log(line: string): void;
  onIncomingFinished?(incoming: IncomingMigration): void;
}

/**
 * Makes an E2K machine migratable: its `e2k.ram` block gets the ram save/load handlers, its
 * device sections (timer, e2k-cpu × N, e2k-serial, e2k-machine, globalstate) are registered in
 * save order with their section ids, and the machine is adapted to the drivers' run-state needs
 * (global_state_store before the completion stop, postmigrate, start after an incoming load).
 * The QMP migration commands go on the VM's monitor.
 */
export function attachMigration(machine: E2kMachine, opts: VmMigrationOptions): MigrationControl {
  const d = describeMachine(machine);
  const blocks = d.ramBlocks.map((b) => ({ idstr: b.idstr, size: b.size, memory: b.memory }));
  const handlers = new SaveVmHandlers();
  // A machine created for an incoming migration was never booted: its RAM is all zero.
  const ramLoad = new RamLoadHandler(blocks, {
    targetPageSize: d.targetPageSize,
    zeroed: machine.runState === 'inmigrate',
  });
  const ramSave = new RamSaveHandler(blocks, { targetPageSize: d.targetPageSize, tracking: opts.tracking });
  handlers.registerLive({
    idstr: 'ram',
    instanceId: 0,
    save: ramSave,
    load: ramLoad,
    // Postcopy source: discards, page requests (preempt channel, break-huge), recovery bitmaps.
    postcopy: new PostcopyRamSource(ramSave),
  });
  for (const s of d.sections) handlers.registerDevice(s);
  handlers.afterLoad = () => d.afterLoad();
  const vm: MigrationVm = {
    get runState() {
      return machine.runState;
    },
    async stopForMigration() {
      machine.storedRunState = machine.runState === 'running' ? 'running' : machine.runState;
      await machine.stop('finish-migrate');
    },
    setRunState(state) {
      machine.runState = state as RunState;
      machine.storedRunState = undefined;
    },
    async start() {
      machine.storedRunState = undefined;
      await machine.cont();
    },
    setThrottle: (percent) => machine.setThrottle(percent),
    loadedRunState: () => d.loadedRunState(),
  };
  const server = opts.server;
  let postcopyIncoming: PostcopyIncoming | undefined;
  const control = new MigrationControl({
    vm,
    handlers,
    machineName: E2K_MACHINE_NAME,
    targetPageSize: d.targetPageSize,
    emit: (event, data) => server?.emit(event, data as JsonObject),
    log: opts.log,
    autostart: opts.autostart,
    ...(opts.onIncomingFinished ? { onIncomingFinished: opts.onIncomingFinished } : {}),
    // Postcopy destination: e2k.ram registered with userfaultfd at LISTEN, vCPUs run at RUN and fault.
    incomingPostcopy: (caps) =>
      (postcopyIncoming = new PostcopyIncoming({
        blocks: () =>
          d.ramBlocks.map((b) => ({
            name: b.idstr,
            memory: b.memory,
            size: b.size,
            precopyReceived: () => ramLoad.receivedMap(b.idstr)?.words,
          })),
        preempt: caps.has('postcopy-preempt'),
        blocktime: caps.has('postcopy-blocktime'),
        vcpuTids: () => machine.vcpuThreadIds(),
        log: opts.log,
      })),
  });
  if (server) {
    registerPostcopyLatencyCommand(server, () => postcopyIncoming);
    for (const c of migrationQmpCommands(control)) {
      server.commands.register(c.name, {
        ...(c.args ? { args: c.args } : {}),
        required: c.required,
        handler: async (args) => (await c.handler(args)) as JsonValue,
      });
    }
  }
  return control;
}
