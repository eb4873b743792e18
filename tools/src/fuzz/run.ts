import { targets } from './index.js';

/** `pnpm fuzz [NAME...] [--iterations N] [--seed S]` (default 100,000 inputs per target). */
const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const iterations = opt('--iterations', 100_000);
const seed = opt('--seed', Date.now() % 2 ** 31);
const names = args.filter((a, i) => !a.startsWith('-') && !args[i - 1]?.startsWith('--'));
const selected = names.length ? targets.filter((t) => names.includes(t.name)) : targets;
if (args.includes('--help') || selected.length === 0) {
  process.stdout.write(
    `usage: pnpm fuzz [NAME...] [--iterations N] [--seed S]\n\ntargets:\n${targets.map((t) => `  ${t.name.padEnd(12)} ${t.summary}`).join('\n')}\n`,
  );
  process.exit(args.includes('--help') ? 0 : 2);
}
let failed = false;
for (const t of selected) {
  process.stderr.write(`== fuzz ${t.name}: ${iterations} inputs, seed ${seed}\n`);
  try {
    const r = await t.run({ iterations, seed, log: (l) => process.stderr.write(`  ${l}\n`) });
    process.stdout.write(
      `${t.name}: ${r.inputs} inputs, ${r.valid} valid, typed errors ${JSON.stringify(r.typedErrors)}\n`,
    );
  } catch (err) {
    failed = true;
    process.stderr.write(`${t.name}: FAILED: ${(err as Error).stack ?? err}\n`);
  }
}
process.exit(failed ? 1 : 0);
