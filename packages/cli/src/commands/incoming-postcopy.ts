import type { MigrationCapability } from '@e2k-migrate/migration';
import {
  type PostcopyReceived,
  PostcopyStoreReceiver,
  TOUCH_PATTERNS,
  type TouchPattern,
  type UserfaultChoice,
} from '@e2k-migrate/postcopy';
import { formatQmpAddress, type JsonValue, QmpFailure, QmpServer } from '@e2k-migrate/qmp';
import { type Channel, type Listener, listen } from '@e2k-migrate/transports';
import { type CommandContext, UsageError } from '../command.js';

/** Postcopy options of `incoming` (`--touch`, `--userfault`, `--qmp`). */
export interface PostcopyCliOptions {
  caps: readonly MigrationCapability[];
  touch: TouchPattern | 'none';
  userfault: UserfaultChoice;
  qmp: string | undefined;
  maxRam: number | undefined;
  onProgress: ((bytes: number) => void) | undefined;
}

export function parsePostcopyOptions(
  v: CommandContext['values'],
): Pick<PostcopyCliOptions, 'touch' | 'userfault' | 'qmp'> {
  const touch = (v.touch ?? 'random') as PostcopyCliOptions['touch'];
  if (touch !== 'none' && !TOUCH_PATTERNS.includes(touch)) {
    throw new UsageError(`--touch: "${String(touch)}" is not one of ${[...TOUCH_PATTERNS, 'none'].join(', ')}`);
  }
  const userfault = (v.userfault ?? 'auto') as UserfaultChoice;
  if (!['auto', 'uffd', 'cooperative'].includes(userfault)) {
    throw new UsageError(`--userfault: "${String(userfault)}" is not one of auto, uffd, cooperative`);
  }
  return { touch, userfault, qmp: typeof v.qmp === 'string' ? v.qmp : undefined };
}

/**
 * `incoming --caps postcopy-ram[,postcopy-preempt][,postcopy-blocktime]`: accepts the main
 * connection (and the preempt connection), receives with {@link PostcopyStoreReceiver}, and — with
 * `--qmp` — serves `query-migrate` and `migrate-recover URI` (a paused migration continues on the
 * connection(s) accepted there). Resolves with the received migration; rejects with its error.
 */
export async function receivePostcopy(
  ctx: CommandContext,
  listener: Listener,
  opts: PostcopyCliOptions,
  timeoutMs: number | undefined,
): Promise<PostcopyReceived> {
  const preempt = opts.caps.includes('postcopy-preempt');
  const log = (line: string) => ctx.stderr.write(`incoming: ${line}\n`);
  const receiver = new PostcopyStoreReceiver({
    preempt,
    blocktime: opts.caps.includes('postcopy-blocktime'),
    userfault: opts.userfault,
    toucher: opts.touch === 'none' ? false : { pattern: opts.touch },
    ...(opts.maxRam !== undefined ? { maxRam: opts.maxRam } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    onState: (s) => {
      log(`state ${s.status}${'error' in s && s.error ? `: ${s.error}` : ''}`);
      if (s.status === 'postcopy-paused' && !opts.qmp) {
        log('paused: without --qmp nothing can run migrate-recover; stop this command to give up');
      }
    },
    log,
  });
  const listeners = new Set<Listener>();
  const server = opts.qmp ? await monitor(opts.qmp, receiver, preempt, log, listeners) : undefined;
  try {
    let channels: { main: Channel; preempt?: Channel };
    try {
      channels = await acceptChannels(listener, preempt, timeoutMs);
    } finally {
      await listener.close();
    }
    log(`connection from ${channels.main.info.peer}${channels.preempt ? ' (+ postcopy-preempt)' : ''}`);
    return await receiver.receive(channels.main, channels.preempt);
  } finally {
    await server?.close();
    await Promise.all([...listeners].map((l) => l.close()));
  }
}

async function acceptChannels(listener: Listener, preempt: boolean, timeoutMs?: number) {
  const opts = timeoutMs === undefined ? {} : { timeoutMs };
  const main = await listener.accept(opts);
  return preempt ? { main, preempt: await listener.accept(opts) } : { main };
}

/** The QMP monitor of a postcopy `incoming`: query-migrate, migrate-recover. */
async function monitor(
  addr: string,
  receiver: PostcopyStoreReceiver,
  preempt: boolean,
  log: (line: string) => void,
  listeners: Set<Listener>,
): Promise<QmpServer> {
  const server = new QmpServer();
  server.commands.register('query-migrate', () => receiver.query() as unknown as JsonValue);
  server.commands.register('query-status', () => ({ status: 'inmigrate', singlestep: false, running: false }));
  server.commands.register('migrate-recover', {
    args: ['uri'],
    required: ['uri'],
    handler: async (args) => {
      const uri = args.uri;
      if (typeof uri !== 'string') throw new QmpFailure("Invalid parameter type for 'uri', expected: string");
      const status = receiver.incoming.state.status;
      if (status !== 'postcopy-paused') {
        throw new QmpFailure(`Migrate recover can only be run when postcopy is paused (state ${status})`);
      }
      const l = await listen(uri);
      listeners.add(l);
      log(`recovering: listening on ${l.uri}`);
      // The main connection resumes at once; a preempt connection may follow.
      void acceptChannels(l, false)
        .then(async (ch) => {
          receiver.resume(ch.main);
          if (preempt) receiver.postcopy.attachPreempt(await l.accept());
        })
        .catch((err) => log(`migrate-recover: ${(err as Error).message}`))
        .finally(() => void l.close());
      return { uri: l.uri };
    },
  });
  const bound = await server.listen(addr);
  log(`QMP monitor on ${formatQmpAddress(bound)}`);
  return server;
}
