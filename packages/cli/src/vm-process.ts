import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { QmpClient } from '@e2k-migrate/qmp';

/** The `e2k-migrate` launcher (bin/e2k-migrate.js, which loads dist/). */
export const E2K_MIGRATE_BIN = fileURLToPath(new URL('../bin/e2k-migrate.js', import.meta.url));

export interface VmProcessOptions {
  /** Directory for the QMP socket (`<dir>/<name>.qmp`). */
  dir: string;
  name: string;
  /** Arguments after `e2k-migrate vm` (the `--qmp` option is added). */
  args: string[];
  /** Called with each chunk of the process's stderr (default: discarded). */
  onStderr?: (text: string) => void;
  env?: NodeJS.ProcessEnv;
  /** Node options for the child (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
  /** Milliseconds to wait for the monitor (default 30 s). */
  timeoutMs?: number;
}

export interface VmExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
}

/**
 * An `e2k-migrate vm` child process with a connected QMP client: used by `demo`, the end-to-end
 * tests and the benchmarks. `quit()` asks it to exit over QMP and kills it (by pid) only if it
 * does not within the time allowed.
 */
export class VmProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly qmpAddress: string;
  readonly exited: Promise<VmExit>;
  qmp!: QmpClient;

  private constructor(name: string, child: ChildProcess, qmpAddress: string, exited: Promise<VmExit>) {
    this.name = name;
    this.child = child;
    this.qmpAddress = qmpAddress;
    this.exited = exited;
  }

  /** Spawns the VM and connects to its monitor (fails if the process exits first). */
  static async start(o: VmProcessOptions): Promise<VmProcess> {
    const qmpAddress = `unix:${join(o.dir, `${o.name}.qmp`)}`;
    const child = spawn(
      process.execPath,
      [...(o.nodeArgs ?? []), E2K_MIGRATE_BIN, 'vm', ...o.args, '--qmp', qmpAddress],
      { stdio: ['ignore', 'pipe', 'pipe'], env: o.env ?? process.env },
    );
    let stdout = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => o.onStderr?.(d));
    const exited = new Promise<VmExit>((resolve) => {
      child.on('exit', (code, signal) => {
        // stdout may still be draining
        setImmediate(() => resolve({ code, signal, stdout }));
      });
    });
    const vm = new VmProcess(o.name, child, qmpAddress, exited);
    const deadline = performance.now() + (o.timeoutMs ?? 30_000);
    let dead = false;
    void exited.then(() => {
      dead = true;
    });
    for (;;) {
      if (dead) {
        const e = await exited;
        throw new Error(`vm ${o.name} exited (code ${e.code}) before its QMP monitor came up`);
      }
      try {
        vm.qmp = await QmpClient.connect(qmpAddress, { timeoutMs: 2000 });
        return vm;
      } catch (err) {
        if (performance.now() > deadline) {
          vm.kill();
          throw new Error(`vm ${o.name}: no QMP monitor at ${qmpAddress}: ${(err as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** QMP `quit`, then waits for the exit; kills the process if it lingers. */
  async quit(timeoutMs = 15_000): Promise<VmExit> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      await this.qmp?.execute('quit').catch(() => undefined);
    }
    const timer = setTimeout(() => this.kill(), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
      await this.qmp?.close().catch(() => undefined);
    }
  }

  /** SIGKILL to this process (by its pid). */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
