#!/usr/bin/env node
// The bin is linked before the workspace is built, so it only forwards to the built entry.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('e2k-migrate: not built yet; run `pnpm build` at the repository root first.\n');
  process.exit(2);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
