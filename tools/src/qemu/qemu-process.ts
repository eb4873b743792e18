import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { QmpClient } from '@e2k-migrate/qmp';

/** The QEMU binary (override with $QEMU). */
export const QEMU_BINARY = process.env.QEMU ?? 'qemu-system-x86_64';

/** The boot-sector guest of the fixtures (dirtyloop.asm): increments a byte per page per pass. */
export const BOOT_IMAGE = resolve(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'qemu-7.2', 'boot.img');

/** Whether QEMU can run here, its version line, or why not. */
export function qemuAvailable(): { ok: boolean; version: string; reason: string } {
  const r = spawnSync(QEMU_BINARY, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error || r.status !== 0) {
    return { ok: false, version: '', reason: `${QEMU_BINARY} --version failed: ${r.error?.message ?? r.stderr}` };
  }
  const version = r.stdout.split('\n')[0] ?? '';
  return { ok: true, version, reason: '' };
}

/** How to start one QEMU. */
export interface QemuOptions {
  /** `-M` value: `pc`, `none`, `pc-i440fx-7.2`, … */
  machine: string;
  memMiB: number;
  /** Attach a raw boot disk (the boot-sector guest by default when `true`). */
  boot?: boolean | string;
  /** `-incoming` value (`defer`, `tcp:127.0.0.1:0`, `exec:cat FILE`, …). */
  incoming?: string;
  /** `-S`: do not start the vCPUs. */
  paused?: boolean;
  /** `-M none` RAM backed by this file (private mapping): the guest starts with its content. */
  memoryBackendFile?: string;
  /** With `memoryBackendFile`: fault every page in at start-up (prealloc=on), not during migration. */
  prealloc?: boolean;
  extraArgs?: string[];
  /** Label for file names and errors. */
  name?: string;
}

/** Every QEMU this process started and has not seen exit: killed on exit, whatever happens. */
const live = new Set<QemuProcess>();
process.once('exit', () => {
  for (const q of live) q.killNow();
});

/**
 * One `qemu-system-x86_64` process for tests and benchmarks: TCG, no display, no default
 * devices, serial to a file, QMP on a unix socket in its own temporary directory. It is always
 * stopped by its PID ({@link kill}, or at process exit), never by name.
 */
export class QemuProcess {
  readonly name: string;
  readonly dir: string;
  readonly qmpPath: string;
  readonly serialPath: string;
  readonly args: string[];
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  qmp!: QmpClient;
  private readonly child: ChildProcess;
  private errText = '';
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  private constructor(name: string, dir: string, args: string[]) {
    this.name = name;
    this.dir = dir;
    this.qmpPath = join(dir, 'qmp.sock');
    this.serialPath = join(dir, 'serial.txt');
    this.args = [...args, '-qmp', `unix:${this.qmpPath},server=on,wait=off`];
    this.child = spawn(QEMU_BINARY, this.args, { stdio: ['ignore', 'ignore', 'pipe'] });
    if (this.child.pid === undefined) throw new Error(`${name}: could not start ${QEMU_BINARY}`);
    this.pid = this.child.pid;
    live.add(this);
    this.child.stderr?.on('data', (c: Buffer) => {
      this.errText += c.toString();
      if (this.errText.length > 64 * 1024) this.errText = this.errText.slice(-32 * 1024);
    });
    this.exited = new Promise((resolveExit) => {
      this.child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        live.delete(this);
        resolveExit({ code, signal });
      });
    });
  }

  /** Starts QEMU and connects to its QMP socket. */
  static async start(opts: QemuOptions): Promise<QemuProcess> {
    const name = opts.name ?? `qemu-${opts.machine}`;
    const dir = await mkdtemp(join(tmpdir(), `e2k-${name}-`));
    const args = ['-accel', 'tcg', '-display', 'none', '-nodefaults', '-m', `${opts.memMiB}M`];
    if (opts.memoryBackendFile) {
      args.push('-M', `${opts.machine},memory-backend=ram`);
      args.push(
        '-object',
        `memory-backend-file,id=ram,size=${opts.memMiB}M,mem-path=${opts.memoryBackendFile},share=off${opts.prealloc ? ',prealloc=on' : ''}`,
      );
    } else args.push('-M', opts.machine);
    if (opts.machine !== 'none') args.push('-serial', `file:${join(dir, 'serial.txt')}`);
    if (opts.boot) {
      // A private copy: QEMU write-locks its images, and tests run QEMUs side by side.
      const img = join(dir, 'boot.img');
      await copyFile(typeof opts.boot === 'string' ? opts.boot : BOOT_IMAGE, img);
      args.push('-drive', `file=${img},format=raw,if=ide`);
    }
    if (opts.paused) args.push('-S');
    if (opts.incoming) args.push('-incoming', opts.incoming);
    args.push(...(opts.extraArgs ?? []));
    const q = new QemuProcess(name, dir, args);
    try {
      q.qmp = await q.connectQmp();
    } catch (err) {
      await q.kill();
      throw err;
    }
    return q;
  }

  /** QEMU's stderr so far (its error messages). */
  get stderr(): string {
    return this.errText;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** The serial output so far. */
  async serial(): Promise<string> {
    return existsSync(this.serialPath) ? readFile(this.serialPath, 'latin1') : '';
  }

  /** Guest-physical memory `[addr, addr + size)` via QMP `pmemsave`. */
  async pmemsave(addr: number, size: number): Promise<Uint8Array> {
    const file = join(this.dir, `pmem-${addr}-${size}-${Date.now()}.bin`);
    await this.qmp.execute('pmemsave', { val: addr, size, filename: file });
    try {
      return new Uint8Array(await readFile(file));
    } finally {
      await rm(file, { force: true });
    }
  }

  /** SIGKILL by PID, wait for the exit, remove the temporary directory. Idempotent. */
  async kill(): Promise<void> {
    this.killNow();
    await this.exited;
    await this.qmp?.close().catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Sends SIGKILL to this PID without waiting (exit hooks). */
  killNow(): void {
    if (this.exitInfo !== undefined) return;
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }

  private async connectQmp(): Promise<QmpClient> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (this.exitInfo) {
        throw new Error(
          `${this.name}: QEMU exited (${JSON.stringify(this.exitInfo)}) before QMP: ${this.errText.trim()}`,
        );
      }
      if (existsSync(this.qmpPath)) {
        try {
          return await QmpClient.connect(`unix:${this.qmpPath}`, { timeoutMs: 5000 });
        } catch (err) {
          if (Date.now() > deadline) throw err;
        }
      }
      if (Date.now() > deadline) throw new Error(`${this.name}: no QMP socket after 15 s: ${this.errText.trim()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Kills every QEMU still running (tests' afterEach/afterAll: nothing may outlive a failure). */
export async function killAllQemu(): Promise<void> {
  await Promise.all([...live].map((q) => q.kill()));
}
