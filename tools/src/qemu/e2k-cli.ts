import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** The built CLI entry (`pnpm build` first). */
export const E2K_BIN = resolve(import.meta.dirname, '..', '..', '..', 'packages', 'cli', 'bin', 'e2k-migrate.js');

/** A running `e2k-migrate` command. */
export interface E2kRun {
  child: ChildProcess;
  pid: number;
  stdout(): string;
  stderr(): string;
  /** Exit status (null when killed by a signal). */
  exit: Promise<number | null>;
  /** Resolves with the first match of `re` on stderr; rejects if the command exits first. */
  waitForStderr(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGKILL by PID (idempotent). */
  kill(): void;
}

const live = new Set<E2kRun>();
process.once('exit', () => {
  for (const r of live) r.kill();
});

/** True when the CLI has been built. */
export function e2kBuilt(): boolean {
  return existsSync(resolve(E2K_BIN, '..', '..', 'dist', 'main.js'));
}

/** Starts `node packages/cli/bin/e2k-migrate.js ARGS…`. */
export function runE2k(args: readonly string[]): E2kRun {
  const child = spawn(process.execPath, [E2K_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error('could not start e2k-migrate');
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    err += c.toString();
    for (const w of [...waiters]) w();
  });
  let exited = false;
  const run: E2kRun = {
    child,
    pid: child.pid,
    stdout: () => out,
    stderr: () => err,
    exit: new Promise((r) =>
      child.once('close', (code) => {
        exited = true;
        live.delete(run);
        for (const w of [...waiters]) w();
        r(code);
      }),
    ),
    waitForStderr(re, timeoutMs = 30_000) {
      return new Promise((resolveMatch, reject) => {
        const check = () => {
          const m = err.match(re);
          if (m) done(() => resolveMatch(m));
          else if (exited) done(() => reject(new Error(`e2k-migrate exited before ${re}: ${err}`)));
        };
        const timer = setTimeout(
          () => done(() => reject(new Error(`no ${re} on stderr in ${timeoutMs} ms: ${err}`))),
          timeoutMs,
        );
        const done = (f: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          f();
        };
        waiters.add(check);
        check();
      });
    },
    kill() {
      if (exited) return;
      try {
        process.kill(child.pid as number, 'SIGKILL');
      } catch {
        // Already gone.
      }
    },
  };
  live.add(run);
  return run;
}

/** Runs a command to completion and returns its exit status and output. */
export async function e2k(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = runE2k(args);
  const code = await r.exit;
  return { code, stdout: r.stdout(), stderr: r.stderr() };
}

/** Kills every e2k-migrate command still running. */
export function killAllE2k(): void {
  for (const r of live) r.kill();
}
