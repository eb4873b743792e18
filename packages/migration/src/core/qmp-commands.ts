import { MigrationControlError } from './errors.js';
import type { MigrationControl } from './migration-control.js';

/** A QMP command in the shape `@e2k-migrate/qmp`'s CommandRegistry takes (kept free of that package). */
export interface MigrationQmpCommand {
  name: string;
  /** Argument names QEMU's schema has (others are "unexpected"); undefined = any (object-add). */
  args?: readonly string[];
  required: readonly string[];
  handler(args: Record<string, unknown>): unknown;
}

const bad = (msg: string) => new MigrationControlError('E_BAD_PARAMETER', msg);

function str(args: Record<string, unknown>, k: string): string | undefined {
  const v = args[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw bad(`Invalid parameter type for '${k}', expected: string`);
  return v;
}

function bool(args: Record<string, unknown>, k: string): boolean | undefined {
  const v = args[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw bad(`Invalid parameter type for '${k}', expected: boolean`);
  return v;
}

/**
 * The migration QMP commands with QEMU 7.2's names and arguments: `migrate {uri, blk?, inc?,
 * detach?, resume?}`, `migrate-incoming {uri}`, `migrate-set-capabilities {capabilities:
 * [{capability, state}]}`, `migrate-set-parameters {…}`, `query-migrate`,
 * `query-migrate-parameters`, `query-migrate-capabilities`, `migrate-start-postcopy`,
 * `migrate-pause`, `migrate_cancel`, `object-add`,
 * `object-del`. Errors are MigrationControlError / TransportError; the server answers them as
 * GenericError with the message.
 */
export function migrationQmpCommands(control: MigrationControl): MigrationQmpCommand[] {
  return [
    {
      name: 'migrate',
      args: ['uri', 'blk', 'inc', 'detach', 'resume'],
      required: ['uri'],
      handler: (a) => {
        control.migrate(str(a, 'uri') as string, {
          blk: bool(a, 'blk') ?? false,
          inc: bool(a, 'inc') ?? false,
          resume: bool(a, 'resume') ?? false,
        });
        return {};
      },
    },
    {
      name: 'migrate-incoming',
      args: ['uri'],
      required: ['uri'],
      handler: async (a) => {
        await control.startIncoming(str(a, 'uri') as string, true);
        return {};
      },
    },
    {
      name: 'migrate-recover',
      args: ['uri'],
      required: ['uri'],
      handler: async (a) => {
        await control.recoverIncoming(str(a, 'uri') as string);
        return {};
      },
    },
    {
      name: 'migrate-set-capabilities',
      args: ['capabilities'],
      required: ['capabilities'],
      handler: (a) => {
        const list = a.capabilities;
        if (!Array.isArray(list)) throw bad("Invalid parameter type for 'capabilities', expected: array");
        const items = list.map((x, i) => {
          const o = x as { capability?: unknown; state?: unknown };
          if (typeof o !== 'object' || o === null || typeof o.capability !== 'string' || typeof o.state !== 'boolean') {
            throw bad(`capabilities[${i}]: expected {"capability": NAME, "state": BOOL}`);
          }
          return { capability: o.capability, state: o.state };
        });
        control.setCapabilities(items);
        return {};
      },
    },
    {
      name: 'migrate-set-parameters',
      // no schema check here: Parameters.set rejects an unknown name listing the valid ones
      required: [],
      handler: (a) => {
        control.setParameters(a);
        return {};
      },
    },
    { name: 'query-migrate', args: [], required: [], handler: () => control.queryMigrate() },
    { name: 'query-migrate-parameters', args: [], required: [], handler: () => control.params.query() },
    { name: 'query-migrate-capabilities', args: [], required: [], handler: () => control.caps.query() },
    {
      name: 'migrate-start-postcopy',
      args: [],
      required: [],
      handler: () => {
        control.startPostcopy();
        return {};
      },
    },
    {
      name: 'migrate-pause',
      args: [],
      required: [],
      handler: () => {
        control.pause();
        return {};
      },
    },
    {
      name: 'migrate_cancel',
      args: [],
      required: [],
      handler: () => {
        control.cancel();
        return {};
      },
    },
    {
      name: 'object-add',
      required: ['qom-type', 'id'],
      handler: async (a) => {
        await control.objectAdd(a as Parameters<MigrationControl['objectAdd']>[0]);
        return {};
      },
    },
    {
      name: 'object-del',
      args: ['id'],
      required: ['id'],
      handler: (a) => {
        control.objectDel(str(a, 'id') as string);
        return {};
      },
    },
  ];
}
