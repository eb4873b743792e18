import { spawn } from 'node:child_process';
import { needs } from '@e2k-migrate/test-support';
import { beforeAll, describe, expect, it } from 'vitest';
import { backendInfo } from '../src/loader.js';
import { canCreateUffd, fixture, NATIVE_ROOT, requireBuiltDist } from './support.js';

/**
 * A process whose vCPU worker is asleep in a userfaultfd fault must still exit, on every path,
 * within 5 s (without the exit hooks each of these hangs forever: Node joins the worker, which
 * never reaches a safepoint). Each scenario is a child process (test/fixtures/stuck-worker.mjs);
 * it prints "stuck tid=N" once /proc says the worker sleeps in handle_userfault.
 */
const nativeOk = needs('native', backendInfo().name === 'native', backendInfo().reason);
const uffdOk = nativeOk && needs('uffd', canCreateUffd(), 'userfaultfd could not be created');

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  stuck: boolean;
  exitedInTime: boolean;
}

function run(path: string, kind = 'anonymous'): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [fixture('stuck-worker.mjs'), path, kind], {
      cwd: NATIVE_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let stuckAt = 0;
    let killer: NodeJS.Timeout | undefined;
    const startKiller = (): void => {
      killer = setTimeout(() => child.kill('SIGKILL'), 5000);
    };
    const guard = setTimeout(() => {
      if (!stuckAt) child.kill('SIGKILL'); // never got stuck: the scenario itself failed
    }, 20_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!stuckAt && stdout.includes('stuck tid=')) {
        stuckAt = Date.now();
        startKiller();
      }
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      if (killer) clearTimeout(killer);
      const exitedInTime = stuckAt > 0 && signal !== 'SIGKILL';
      resolve({ code, signal, stdout, stderr, stuck: stuckAt > 0, exitedInTime });
    });
  });
}

beforeAll(() => requireBuiltDist());

describe.skipIf(!uffdOk)('exit with a worker stuck in a userfaultfd fault', () => {
  it('process.exit()', async () => {
    const o = await run('exit');
    expect(o.stuck).toBe(true);
    expect(o.exitedInTime).toBe(true);
    expect(o.code).toBe(3);
  });

  it('an uncaught exception', async () => {
    const o = await run('throw');
    expect(o.stuck).toBe(true);
    expect(o.exitedInTime).toBe(true);
    expect(o.code).toBe(1);
    expect(o.stderr).toContain('uncaught on purpose');
  });

  it('SIGINT', async () => {
    const o = await run('SIGINT');
    expect(o.stuck).toBe(true);
    expect(o.exitedInTime).toBe(true);
    expect(o.signal).toBe('SIGINT');
  });

  it('SIGTERM (memfd region)', async () => {
    const o = await run('SIGTERM', 'memfd');
    expect(o.stuck).toBe(true);
    expect(o.exitedInTime).toBe(true);
    expect(o.signal).toBe('SIGTERM');
  });

  it('worker.terminate()', async () => {
    const o = await run('terminate');
    expect(o.stuck).toBe(true);
    expect(o.exitedInTime).toBe(true);
    expect(o.stdout).toContain('terminated code=1');
    expect(o.code).toBe(0);
  });
});
