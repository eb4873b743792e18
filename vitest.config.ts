import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

const root = import.meta.dirname;

/**
 * Tests import workspace packages from their TypeScript sources (no build needed for unit tests).
 * Runtime code that must be plain JS (worker_threads entry points, the CLI bin) loads `dist/`.
 */
function workspaceAliases(): Record<string, string> {
  const aliases: Record<string, string> = {
    '@e2k-migrate/test-support': resolve(root, 'test/support/index.ts'),
  };
  const dirs = [...readdirSync(join(root, 'packages')).map((d) => join(root, 'packages', d)), join(root, 'native')];
  for (const dir of dirs) {
    const pkgFile = join(dir, 'package.json');
    const entry = join(dir, 'src', 'index.ts');
    if (!existsSync(pkgFile) || !existsSync(entry)) continue;
    const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { name: string };
    aliases[pkg.name] = entry;
  }
  return aliases;
}

export default defineConfig({
  resolve: { alias: workspaceAliases() },
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'native/src/**/*.test.ts',
      'native/test/**/*.test.ts',
      'test/**/*.test.ts',
      'tools/**/*.test.ts',
    ],
    exclude: ['**/node_modules/**', '**/dist/**'],
    // Kernel-touching suites (userfaultfd, hugetlb, worker threads blocked in faults) need processes.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default', './test/support/summary-reporter.ts'],
    // Builds dist/ once (workers and child processes run built code), then reserves 2 MiB huge
    // pages for the run and restores nr_hugepages at the end.
    globalSetup: ['./test/support/build-setup.ts', './test/support/hugepages-setup.ts'],
  },
});
