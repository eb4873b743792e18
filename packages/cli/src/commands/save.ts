import { rename, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { QmpClient } from '@e2k-migrate/qmp';
import { type Command, type CommandContext, UsageError } from '../command.js';
import { applySettings, followMigration, formatResult, parseMigrationSettings } from '../migration-client.js';

export const saveCommand: Command = {
  name: 'save',
  summary: 'Snapshot a VM to a file (a migration stream); restore with `vm --incoming file:FILE`',
  usage: '--qmp unix:PATH|tcp:HOST:PORT FILE [--stop] [--set NAME=VALUE]... [--json]',
  description: `
Migrates the VM behind --qmp into FILE: a complete QEMU 7.2 migration stream (header,
configuration, ram START/PART/END, device sections, EOF, vmdesc) that \`e2k-migrate analyze\` reads
and \`e2k-migrate vm ... --incoming file:FILE\` restores. The stream is written to FILE.tmp and
renamed to FILE only once the migration completed, so FILE is never a partial snapshot.

The save is live (precopy) unless --stop pauses the guest first (smaller file, no repeated
pages). As after any completed migration the VM is left paused (run state "postmigrate");
QMP "cont" resumes it. max-bandwidth is set to 0 (unlimited) for the save unless --set names it.

Examples:
  e2k-migrate save --qmp unix:/tmp/vm.qmp /tmp/vm.mig
  e2k-migrate vm --mem 64M --vcpus 2 --workload increment --incoming file:/tmp/vm.mig --qmp unix:/tmp/r.qmp
  e2k-migrate analyze /tmp/vm.mig --format summary
`,
  options: {
    qmp: { type: 'string', arg: 'ADDR', help: "the VM's QMP monitor" },
    stop: { type: 'boolean', help: 'pause the guest before saving (non-live snapshot)' },
    set: { type: 'string', multiple: true, arg: 'NAME=VALUE', help: 'a migration parameter (repeatable)' },
    json: { type: 'boolean', help: 'print the final query-migrate object (plus "file") as JSON' },
  },
  allowPositionals: true,
  async run(ctx: CommandContext): Promise<number> {
    const qmpAddr = ctx.values.qmp;
    if (typeof qmpAddr !== 'string') throw new UsageError('--qmp ADDR is required');
    const [file, ...extra] = ctx.positionals;
    if (file === undefined || extra.length > 0) throw new UsageError('expected exactly one FILE');
    const target = resolve(file);
    const tmp = `${target}.tmp`;
    const sets = (ctx.values.set as string[] | undefined) ?? [];
    const settings = parseMigrationSettings(undefined, sets);
    if (!('max-bandwidth' in settings.parameters)) settings.parameters['max-bandwidth'] = 0;
    const qmp = await QmpClient.connect(qmpAddr);
    try {
      await applySettings(qmp, settings);
      if (ctx.values.stop) await qmp.execute('stop');
      await qmp.execute('migrate', { uri: `file:${tmp}` });
      const { last } = await followMigration(qmp, ctx.stderr);
      if (last.status === 'completed') await rename(tmp, target);
      else await rm(tmp, { force: true });
      if (ctx.values.json) ctx.stdout.write(`${JSON.stringify({ ...last, file: target })}\n`);
      else {
        ctx.stdout.write(formatResult(last));
        if (last.status === 'completed') ctx.stdout.write(`saved to ${target}\n`);
      }
      return last.status === 'completed' ? 0 : 1;
    } finally {
      await qmp.close();
    }
  },
};
