import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { benches } from './index.js';

/**
 * `pnpm bench [NAME...] [--quick]`: runs the named suites (all when none is named) and rewrites
 * their sections of BENCHMARKS.md, keeping the sections of suites not run.
 */
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const names = args.filter((a) => !a.startsWith('-'));
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(
    `usage: pnpm bench [NAME...] [--quick]\n\nsuites:\n${benches.map((b) => `  ${b.name.padEnd(10)} ${b.summary}`).join('\n')}\n\nResults replace the suite's section of BENCHMARKS.md. Ratios are taken within one run:\nthis machine is shared and noisy, so compare numbers only inside one section.\n`,
  );
  process.exit(0);
}
const unknown = names.filter((n) => !benches.some((b) => b.name === n));
if (unknown.length) {
  process.stderr.write(
    `unknown bench suite(s): ${unknown.join(', ')}; known: ${benches.map((b) => b.name).join(', ')}\n`,
  );
  process.exit(2);
}
const selected = names.length ? benches.filter((b) => names.includes(b.name)) : benches;
const file = resolve(import.meta.dirname, '..', '..', '..', 'BENCHMARKS.md');
const sections = readSections(file);
for (const b of selected) {
  process.stderr.write(`== bench ${b.name}\n`);
  const body = await b.run({ quick, log: (l) => process.stderr.write(`  ${l}\n`) });
  const stamp = `_Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${release()}, Node ${process.version}${quick ? ' (quick run)' : ''}._`;
  sections.set(b.name, `## ${b.name}\n\n${stamp}\n\n${body.trim()}\n`);
  process.stdout.write(`${sections.get(b.name)}\n`);
}
const order = benches.map((b) => b.name).filter((n) => sections.has(n));
const header =
  '# Benchmarks\n\nWritten by `pnpm bench`. Every ratio compares figures measured side by side in the same run on the same\nmachine (a shared, noisy 2-core box): compare numbers only within one section.\n';
writeFileSync(file, `${header}\n${order.map((n) => sections.get(n)).join('\n')}`);
process.stderr.write(`wrote ${file}\n`);

function readSections(path: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(path)) return out;
  const text = readFileSync(path, 'utf8');
  const parts = text.split(/^## /m).slice(1);
  for (const p of parts) {
    const name = p.slice(0, p.indexOf('\n')).trim();
    out.set(name, `## ${p.trimEnd()}\n`);
  }
  return out;
}
