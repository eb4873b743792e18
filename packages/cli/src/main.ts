import { parseArgs } from 'node:util';
import { type Command, type CommandContext, UsageError } from './command.js';
import { commands } from './commands/index.js';
import { formatCommandHelp, formatMainHelp } from './help.js';

/** Entry point used by bin/e2k-migrate.js. Returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const stdout = process.stdout;
  const stderr = process.stderr;
  // `e2k-migrate … | head`: the reader went away; stop quietly as Unix tools do.
  stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const target = name === 'help' ? rest[0] : undefined;
    const cmd = target ? commands.find((c) => c.name === target) : undefined;
    stdout.write(cmd ? formatCommandHelp(cmd) : formatMainHelp(commands));
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    stdout.write('e2k-migrate 0.1.0\n');
    return 0;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    stderr.write(`e2k-migrate: unknown command "${name}". Commands: ${commands.map((c) => c.name).join(', ')}\n`);
    stderr.write('Run `e2k-migrate --help` for an overview.\n');
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    stdout.write(formatCommandHelp(cmd));
    return 0;
  }
  let ctx: CommandContext;
  try {
    ctx = { ...parse(cmd, rest), stdout, stderr };
  } catch (err) {
    stderr.write(`e2k-migrate ${cmd.name}: ${(err as Error).message}\n`);
    stderr.write(`usage: e2k-migrate ${cmd.name} ${cmd.usage}\n`);
    return 2;
  }
  try {
    return await cmd.run(ctx);
  } catch (err) {
    return reportFailure(cmd, err, ctx);
  }
}

function parse(cmd: Command, args: string[]): Pick<CommandContext, 'values' | 'positionals'> {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const [key, spec] of Object.entries(cmd.options)) {
    options[key] = {
      type: spec.type,
      ...(spec.multiple ? { multiple: true } : {}),
      ...(spec.short ? { short: spec.short } : {}),
    };
  }
  const { values, positionals } = parseArgs({
    args,
    options,
    allowPositionals: cmd.allowPositionals ?? false,
    strict: true,
  });
  return { values: values as CommandContext['values'], positionals };
}

function reportFailure(cmd: Command, err: unknown, ctx: CommandContext): number {
  const e = err as Error & { code?: string };
  if (err instanceof UsageError) {
    ctx.stderr.write(`e2k-migrate ${cmd.name}: ${e.message}\nusage: e2k-migrate ${cmd.name} ${cmd.usage}\n`);
    return 2;
  }
  const code = typeof e?.code === 'string' ? e.code : 'E_INTERNAL';
  if (ctx.values.json === true) {
    ctx.stdout.write(
      `${JSON.stringify({ error: { code, name: e?.name, message: e?.message ?? String(err), ...errorFields(e) } })}\n`,
    );
  }
  ctx.stderr.write(`e2k-migrate ${cmd.name}: ${code}: ${e?.message ?? String(err)}\n`);
  if (code === 'E_INTERNAL' && e?.stack) ctx.stderr.write(`${e.stack}\n`);
  return 1;
}

/** Structured fields of a typed error (offset, section, …) for --json output. */
function errorFields(e: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) {
    if (k === 'stack' || k === 'message' || k === 'name' || k === 'code' || k === 'cause') continue;
    if (typeof v === 'bigint') out[k] = v.toString();
    else if (v === null || ['string', 'number', 'boolean'].includes(typeof v)) out[k] = v;
  }
  return out;
}
