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
  usage:
    '--qmp unix:PATH|tcp:HOST:PORT URI [--caps CAP[,CAP...]] [--set NAME=VALUE]... [--postcopy-after SEC | --postcopy-after-iterations N] [--resume] [--timeout SEC] [--json]',
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

Postcopy (--caps postcopy-ram[,postcopy-preempt], the destination started with the same caps):
--postcopy-after SEC sends migrate-start-postcopy SEC seconds after migrate; the source switches
at its next iteration (discards, the device state package, the guest runs on the destination,
which requests the pages it faults on). Or let the source decide (e2k-migrate extensions):
--postcopy-after-iterations N (= --set x-postcopy-after-iterations=N: after N passes over RAM) or
--set x-postcopy-stall-syncs=K
(when the remaining bytes stopped shrinking for K dirty syncs). A lost connection in postcopy
leaves both sides postcopy-paused: run migrate-recover URI on the destination, then this command
again with --resume and that URI (it sends migrate {"uri": URI, "resume": true}).

Examples:
  e2k-migrate migrate --qmp unix:/tmp/src.qmp tcp:127.0.0.1:4444
  e2k-migrate migrate --qmp unix:/tmp/src.qmp unix:/tmp/mig.sock --caps xbzrle,auto-converge \\
      --set max-bandwidth=256M --set downtime-limit=100
  e2k-migrate migrate --qmp unix:/tmp/src.qmp tcp:127.0.0.1:4444 --json | jq .downtime
  e2k-migrate migrate --qmp unix:/tmp/src.qmp tcp:127.0.0.1:4444 --caps postcopy-ram,postcopy-preempt \\
      --set max-postcopy-bandwidth=64M --postcopy-after 1
  e2k-migrate migrate --qmp unix:/tmp/src.qmp tcp:127.0.0.1:5555 --resume   # after migrate-recover

Exit status 0 when completed, 1 when failed or cancelled (with --json, stdout is the final
query-migrate object), 2 for a bad command line.
`,
  options: {
    qmp: { type: 'string', arg: 'ADDR', help: "the source VM's QMP monitor (unix:PATH or tcp:HOST:PORT)" },
    caps: { type: 'string', arg: 'LIST', help: 'capabilities to enable, comma-separated (e.g. xbzrle,events)' },
    set: { type: 'string', multiple: true, arg: 'NAME=VALUE', help: 'a migration parameter (repeatable)' },
    'postcopy-after': {
      type: 'string',
      arg: 'SEC',
      help: 'send migrate-start-postcopy this many seconds after migrate (needs postcopy-ram)',
    },
    'postcopy-after-iterations': {
      type: 'string',
      arg: 'N',
      help: 'let the source switch to postcopy after N passes (sets x-postcopy-after-iterations)',
    },
    resume: { type: 'boolean', help: 'resume a paused postcopy migration to URI (QMP migrate with resume)' },
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
    const after = ctx.values['postcopy-after'] === undefined ? undefined : Number(ctx.values['postcopy-after']);
    if (after !== undefined && !(after >= 0)) throw new UsageError('--postcopy-after must be a number of seconds ≥ 0');
    const resume = ctx.values.resume === true;
    if (resume && (ctx.values.caps !== undefined || after !== undefined)) {
      throw new UsageError('--resume continues a paused migration: it takes no --caps or --postcopy-after');
    }
    const iterations = ctx.values['postcopy-after-iterations'];
    const settings = parseMigrationSettings(ctx.values.caps as string | undefined, [
      ...((ctx.values.set as string[] | undefined) ?? []),
      ...(typeof iterations === 'string' ? [`x-postcopy-after-iterations=${iterations}`] : []),
    ]);
    const qmp = await QmpClient.connect(qmpAddr);
    const onSigint = () => {
      ctx.stderr.write('\ncancelling (migrate_cancel)…\n');
      void qmp.execute('migrate_cancel').catch(() => undefined);
    };
    process.on('SIGINT', onSigint);
    let timer: NodeJS.Timeout | undefined;
    try {
      if (resume) await qmp.execute('migrate', { uri, resume: true });
      else {
        await applySettings(qmp, settings);
        await qmp.execute('migrate', { uri });
      }
      if (after !== undefined) {
        timer = setTimeout(() => {
          ctx.stderr.write('migrate-start-postcopy\n');
          void qmp.execute('migrate-start-postcopy').catch((e: Error) => ctx.stderr.write(`${e.message}\n`));
        }, after * 1000);
      }
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
      clearTimeout(timer);
      process.off('SIGINT', onSigint);
      await qmp.close();
    }
  },
};
