import { QmpClient } from '@e2k-migrate/qmp';
import { type Command, type CommandContext, UsageError } from '../command.js';
import {
  applySettings,
  CAPABILITY_HELP,
  checkUri,
  followMigration,
  formatResult,
  parseMigrationSettings,
} from '../migration-client.js';

export const migrateCommand: Command = {
  name: 'migrate',
  summary: "Migrate a running VM live: drive its QMP monitor's migrate and show progress",
  usage: '--qmp unix:PATH|tcp:HOST:PORT URI [--caps CAP[,CAP...]] [--set NAME=VALUE]... [--timeout SEC] [--json]',
  description: `
Connects to the QMP monitor of a VM (an \`e2k-migrate vm\` process, or QEMU), sets the migration
capabilities (--caps) and parameters (--set, QEMU's names: max-bandwidth, downtime-limit,
xbzrle-cache-size, tls-creds, ...), starts \`migrate\` to URI and follows \`query-migrate\` until the
migration completes, fails or is cancelled. Progress (sent, remaining, rate, iteration, dirty
rate) goes to stderr; Ctrl-C sends migrate_cancel (the VM keeps running).

URIs: tcp:HOST:PORT, unix:PATH, fd:N, exec:CMD, file:PATH. The destination must be waiting
(\`e2k-migrate vm ... --incoming URI\`, or QEMU -incoming).

Capabilities: ${CAPABILITY_HELP}. Unknown capabilities or parameters are rejected before
anything is sent, with the list of valid names.

Examples:
  e2k-migrate migrate --qmp unix:/tmp/src.qmp tcp:127.0.0.1:4444
  e2k-migrate migrate --qmp unix:/tmp/src.qmp unix:/tmp/mig.sock --caps xbzrle,auto-converge \\
      --set max-bandwidth=256M --set downtime-limit=100
  e2k-migrate migrate --qmp unix:/tmp/src.qmp tcp:127.0.0.1:4444 --json | jq .downtime

Exit status 0 when completed, 1 when failed or cancelled (with --json, stdout is the final
query-migrate object), 2 for a bad command line.
`,
  options: {
    qmp: { type: 'string', arg: 'ADDR', help: "the source VM's QMP monitor (unix:PATH or tcp:HOST:PORT)" },
    caps: { type: 'string', arg: 'LIST', help: 'capabilities to enable, comma-separated (e.g. xbzrle,events)' },
    set: { type: 'string', multiple: true, arg: 'NAME=VALUE', help: 'a migration parameter (repeatable)' },
    timeout: { type: 'string', arg: 'SEC', help: 'give up (and cancel) after this many seconds (default: none)' },
    json: { type: 'boolean', help: 'print the final query-migrate object as JSON on stdout' },
  },
  allowPositionals: true,
  async run(ctx: CommandContext): Promise<number> {
    const qmpAddr = ctx.values.qmp;
    if (typeof qmpAddr !== 'string') throw new UsageError('--qmp ADDR is required');
    const [uri, ...extra] = ctx.positionals;
    if (uri === undefined || extra.length > 0) throw new UsageError('expected exactly one URI');
    const timeout = ctx.values.timeout === undefined ? undefined : Number(ctx.values.timeout);
    if (timeout !== undefined && !(timeout > 0)) throw new UsageError('--timeout must be a positive number of seconds');
    checkUri(uri);
    const settings = parseMigrationSettings(
      ctx.values.caps as string | undefined,
      (ctx.values.set as string[] | undefined) ?? [],
    );
    const qmp = await QmpClient.connect(qmpAddr);
    const onSigint = () => {
      ctx.stderr.write('\ncancelling (migrate_cancel)…\n');
      void qmp.execute('migrate_cancel').catch(() => undefined);
    };
    process.on('SIGINT', onSigint);
    try {
      await applySettings(qmp, settings);
      await qmp.execute('migrate', { uri });
      const { last, timedOut } = await followMigration(qmp, ctx.stderr, {
        ...(timeout !== undefined ? { deadlineMs: timeout * 1000 } : {}),
      });
      if (timedOut) {
        ctx.stderr.write(`migrate: no result within ${timeout} s; cancelling\n`);
        await qmp.execute('migrate_cancel');
      }
      if (ctx.values.json) ctx.stdout.write(`${JSON.stringify(last)}\n`);
      else ctx.stdout.write(formatResult(last));
      return last.status === 'completed' ? 0 : 1;
    } finally {
      process.off('SIGINT', onSigint);
      await qmp.close();
    }
  },
};
