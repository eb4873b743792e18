import {
  type MigrationCapability,
  MigrationControl,
  MigrationControlError,
  migrationQmpCommands,
  type QueryMigrate,
  type StoredMigration,
} from '@e2k-migrate/migration';
import { openStoreSource } from '@e2k-migrate/postcopy';
import { formatQmpAddress, type JsonObject, type JsonValue, QmpServer } from '@e2k-migrate/qmp';

export interface LiveSendOptions {
  store: StoredMigration;
  uri: string;
  caps: readonly MigrationCapability[];
  /** Migration parameters (QEMU names, already validated). */
  params: Record<string, unknown>;
  /** Seconds after the start to issue migrate-start-postcopy. */
  postcopyAfter: number | undefined;
  hostPageSizes: Record<string, number>;
  /** A QMP monitor for this migration (migrate-start-postcopy, migrate-pause, migrate resume, query-migrate). */
  qmp: string | undefined;
  log(line: string): void;
  /** Progress with the current query-migrate (every 500 ms). */
  onProgress?(q: QueryMigrate): void;
}

/**
 * Sends a stored migration through the live migration driver — precopy passes under
 * `max-bandwidth`, the switch to postcopy (after `postcopyAfter` seconds, by the policy
 * parameters, or by QMP), page requests served first, recovery with `migrate {resume: true}` on
 * the QMP monitor — with the stored device state in the postcopy package. Resolves with the final
 * query-migrate. Without a monitor a postcopy pause cannot be resumed, so it ends the send.
 */
export async function sendStoreLive(o: LiveSendOptions): Promise<QueryMigrate> {
  const src = await openStoreSource(o.store, { hostPageSizes: o.hostPageSizes });
  let server: QmpServer | undefined;
  const control = new MigrationControl({
    vm: src.vm,
    handlers: src.handlers,
    machineName: src.machine,
    targetPageSize: src.targetPageSize,
    emit: (event, data) => server?.emit(event, data as JsonObject),
    log: o.log,
    verbatim: src.verbatim,
  });
  let timer: NodeJS.Timeout | undefined;
  let progress: NodeJS.Timeout | undefined;
  try {
    control.setCapabilities(o.caps.map((capability) => ({ capability, state: true })));
    control.setParameters(o.params);
    if (o.qmp) {
      server = new QmpServer();
      for (const c of migrationQmpCommands(control)) {
        server.commands.register(c.name, {
          ...(c.args ? { args: c.args } : {}),
          required: c.required,
          handler: async (args) => (await c.handler(args)) as JsonValue,
        });
      }
      const bound = await server.listen(o.qmp);
      o.log(`QMP monitor on ${formatQmpAddress(bound)}`);
    }
    const out = control.migrate(o.uri);
    if (o.postcopyAfter !== undefined) {
      timer = setTimeout(() => {
        o.log(`migrate-start-postcopy after ${o.postcopyAfter} s`);
        control.startPostcopy();
      }, o.postcopyAfter * 1000);
    }
    let lastStatus = '';
    progress = setInterval(() => {
      const q = out.query();
      o.onProgress?.(q);
      if (q.status === lastStatus) return;
      lastStatus = q.status ?? '';
      if (q.status === 'postcopy-paused') {
        if (!server) {
          out.terminate(
            new MigrationControlError(
              'E_BAD_STATE',
              'postcopy paused (connection lost) and no QMP monitor (--qmp) to resume it with migrate {"resume": true}',
            ),
          );
        } else o.log('postcopy paused: resume with QMP migrate {"uri": URI, "resume": true} after migrate-recover');
      }
    }, 100);
    await out.done;
    return out.query();
  } finally {
    clearTimeout(timer);
    clearInterval(progress);
    await control.close();
    await server?.close();
    src.close();
  }
}
