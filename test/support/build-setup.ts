import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

/**
 * Vitest global setup: brings every package's `dist/` up to date once, before any test runs.
 *
 * Unit tests import workspace packages from their TypeScript sources, but code that runs in
 * worker threads or child processes (vCPU workers, the `e2k-migrate` CLI, fault workers) runs the
 * built JavaScript. Building here, once (`tsc -b` is incremental: a no-op when CI has just run
 * `pnpm build`), means no suite can test stale output and no two suites build concurrently.
 */
export default function setup(): void {
  const root = resolve(import.meta.dirname, '..', '..');
  try {
    execFileSync(resolve(root, 'node_modules', '.bin', 'tsc'), ['-b', 'tsconfig.json'], { cwd: root, stdio: 'pipe' });
  } catch (err) {
    const e = err as { stdout?: Buffer; stderr?: Buffer };
    throw new Error(
      `the workspace does not build (tsc -b), so tests that run built code cannot start:\n${e.stdout ?? ''}${e.stderr ?? ''}`,
    );
  }
}
