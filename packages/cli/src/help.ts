import type { Command } from './command.js';

export function formatMainHelp(commands: Command[]): string {
  const width = Math.max(8, ...commands.map((c) => c.name.length));
  const lines = [
    'e2k-migrate — QEMU 7.2 live migration (precopy, XBZRLE, postcopy over userfaultfd; analyze reads multifd), in TypeScript.',
    '',
    'usage: e2k-migrate <command> [options]',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `e2k-migrate <command> --help` for the options and examples of one command.',
    'Every command that takes --json prints exactly one JSON value on stdout; progress goes to stderr.',
    '',
  ];
  return lines.join('\n');
}

export function formatCommandHelp(cmd: Command): string {
  const opts = Object.entries(cmd.options).map(([name, spec]) => {
    const flag = `${spec.short ? `-${spec.short}, ` : ''}--${name}${spec.type === 'string' ? ` ${spec.arg ?? 'VALUE'}` : ''}`;
    return [flag, spec.help] as const;
  });
  const width = Math.max(10, ...opts.map(([f]) => f.length));
  return [
    `usage: e2k-migrate ${cmd.name} ${cmd.usage}`,
    '',
    cmd.description.trim(),
    '',
    ...(opts.length ? ['options:', ...opts.map(([f, h]) => `  ${f.padEnd(width)}  ${h}`), ''] : []),
  ].join('\n');
}
