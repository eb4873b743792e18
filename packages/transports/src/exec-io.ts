import { type ChildProcess, spawn } from 'node:child_process';
import { Channel } from './channel.js';
import type { ChannelIo } from './channel-io.js';
import type { ChannelOptions } from './channel-types.js';
import { withDeadline } from './deadline.js';
import { errnoOf, messageOf, TransportError } from './errors.js';

/** Bytes of the command's stderr kept for error messages. */
export const STDERR_TAIL_BYTES = 4096;
/** How long a broken pipe waits for the command's exit status before reporting without it. */
const EXIT_WAIT_MS = 2000;

type ExitStatus = { code: number | null; signal: NodeJS.Signals | null };

export interface ExecOptions extends ChannelOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  onStderr?: (chunk: Uint8Array) => void;
}

/**
 * Runs `sh -c command` (in its own process group) as a one-way channel: `out` writes the
 * stream to its stdin (outgoing migration), `in` reads its stdout (incoming). The unused
 * direction is /dev/null; stderr is kept (a tail) for errors. A non-zero exit or a signal is
 * E_EXEC carrying the status and the stderr tail.
 */
export async function execChannel(
  command: string,
  direction: 'in' | 'out',
  uri: string,
  opts: ExecOptions,
): Promise<Channel> {
  const child = spawn('/bin/sh', ['-c', command], {
    stdio: direction === 'out' ? ['pipe', 'ignore', 'pipe'] : ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const started = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (e) =>
      reject(
        new TransportError('E_EXEC', `${uri}: cannot start /bin/sh: ${messageOf(e)}`, {
          uri,
          errno: errnoOf(e),
          cause: e,
        }),
      ),
    );
  });
  await withDeadline(started, opts, 'start', uri, () => killGroup(child, 'SIGKILL'));
  const io = execIo(child, direction, uri, opts.onStderr);
  return new Channel(
    io,
    {
      transport: 'exec',
      uri,
      peer: `pid ${child.pid} (sh -c ${command})`,
      readable: direction === 'in',
      writable: direction === 'out',
      tls: null,
    },
    opts,
  );
}

function execIo(
  child: ChildProcess,
  direction: 'in' | 'out',
  uri: string,
  onStderr?: (c: Uint8Array) => void,
): ChannelIo {
  let tail = Buffer.alloc(0);
  child.stderr?.on('data', (chunk: Buffer) => {
    onStderr?.(chunk);
    tail = Buffer.concat([tail, chunk]);
    if (tail.length > STDERR_TAIL_BYTES) tail = tail.subarray(tail.length - STDERR_TAIL_BYTES);
  });
  child.on('error', () => undefined);
  let status: ExitStatus | null = null;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      status = { code, signal };
      resolve(status);
    });
  });
  const released = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const describe = (s: ExitStatus | null, early: boolean): TransportError => {
    const tailText = tail.toString('utf8').trim();
    const how =
      s === null
        ? 'stopped taking input (broken pipe) and has not exited'
        : s.signal
          ? `was killed by ${s.signal}`
          : `exited with status ${s.code}`;
    const when = early && s?.code === 0 ? ' before taking the whole stream' : '';
    return new TransportError('E_EXEC', `${uri}: command ${how}${when}${tailText ? `; stderr: ${tailText}` : ''}`, {
      uri,
      exitCode: s?.code ?? null,
      signal: s?.signal ?? null,
      stderrTail: tailText,
    });
  };
  const statusError = async (): Promise<TransportError | null> => {
    const s = await exited;
    return s.code === 0 ? null : describe(s, false);
  };
  const stream = direction === 'out' ? child.stdin : child.stdout;
  return {
    readable: direction === 'in' ? child.stdout : null,
    writable: direction === 'out' ? child.stdin : null,
    released,
    abort() {
      stream?.destroy();
      if (status === null) killGroup(child, 'SIGKILL');
    },
    release() {
      stream?.destroy();
      if (status === null) killGroup(child, 'SIGTERM');
    },
    async explain(err) {
      const s = status ?? (await Promise.race([exited, delay(EXIT_WAIT_MS)]));
      const e = describe(s ?? null, true);
      return new TransportError(e.code, `${e.message} (${messageOf(err)})`, {
        uri,
        errno: errnoOf(err),
        exitCode: e.exitCode,
        signal: e.signal,
        stderrTail: e.stderrTail,
        cause: err,
      });
    },
    checkEof: direction === 'in' ? statusError : undefined,
    checkEnd: direction === 'out' ? statusError : undefined,
    watch:
      direction === 'out'
        ? (fail) => {
            // The reader died: writes can no longer succeed; say so now rather than at the next write.
            void exited.then((s) => {
              if (s.code !== 0) fail(describe(s, true));
            });
          }
        : undefined,
  };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

function delay(ms: number): Promise<null> {
  return new Promise((resolve) => setTimeout(() => resolve(null), ms).unref());
}
