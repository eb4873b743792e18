import {
  coerce,
  type MigrationCapability,
  MigrationStreamError,
  openStore,
  parseParameterName,
  parseSize,
  type QueryMigrate,
  sendStore,
} from '@e2k-migrate/migration';
import { connect, isTransportError, parseUri } from '@e2k-migrate/transports';
import { type Command, type CommandContext, UsageError } from '../command.js';
import { sendStoreLive } from '../send-live.js';
import { parseCapsOption, rateLine, throttled } from './migration-caps.js';

/** Capabilities `send` implements (QEMU 7.2 names). */
const SUPPORTED = ['xbzrle', 'return-path', 'postcopy-ram', 'postcopy-preempt'] as const;

export const sendCommand: Command = {
  name: 'send',
  summary: 'Send a stored migration to a QEMU 7.2 destination (or any -incoming URI)',
  usage:
    'DIR URI [--caps CAP[,CAP]] [--postcopy-after SEC] [--set NAME=VALUE]... [--host-page-size BLOCK=SIZE]... [--qmp ADDR] [--zero-pages send|skip] [--no-verify] [--json] [--progress]',
  description: `
Sends a migration stored by \`e2k-migrate incoming\` as a QEMU 7.2 precopy stream: header, the
stored configuration record, ram START with the block list, every page (zero pages as ZERO
records), an empty ram END, the stored device sections verbatim, EOF and the vmdesc. A fresh QEMU
started with the same machine options and \`-incoming URI\` loads it, reaches "completed" and runs
the guest on from where the source stopped.

Before connecting, every stored file is checked against the manifest's sizes and sha256 (skip
with --no-verify), so a damaged store fails without sending anything. Exit status 0 when the whole
stream was sent (with --caps return-path: when the destination answered SHUT 0); otherwise 1 with
a typed error.

URI: tcp:HOST:PORT, unix:PATH, exec:CMD (the stream goes to the command's stdin, e.g.
"exec:cat > vm.mig"), file:PATH, fd:N.

--caps (QEMU names), supported: ${SUPPORTED.join(', ')}.
  return-path  open the return path as QEMU does (OPEN_RETURN_PATH, PING 1) and wait for the
               destination's SHUT: 0 = loaded, non-zero = a typed E_PEER_FAILED error. Sockets only.
               A store received by postcopy has no vmdesc (a postcopy stream carries none); QEMU
               reads one after the EOF before it answers SHUT, so send adds a placeholder
               ({"page_size": 4096, "devices": []}, which QEMU skips unparsed) — "vmdesc" in the
               result says stored, placeholder or none.
  xbzrle       accepted for symmetry with QEMU; a stored (stopped) VM is sent in one pass, where
               QEMU also sends no XBZRLE records (XBZRLE only encodes pages re-sent after a pass).
  postcopy-ram       send the store through the live migration driver as a postcopy source:
                     OPEN_RETURN_PATH, PING 1, POSTCOPY_ADVISE, precopy passes under max-bandwidth,
                     then (--postcopy-after SEC, a policy parameter, or QMP migrate-start-postcopy)
                     the switch: discards of the pages not sent yet, PING 2, PACKAGED(LISTEN, the
                     stored device sections, PING 3, RUN), PING 4; the destination runs the guest
                     and requests the pages it faults on, which are sent first; END, EOF; SHUT.
  postcopy-preempt   (with postcopy-ram) a second connection carries the requested pages.
--postcopy-after SEC issues migrate-start-postcopy SEC seconds after the start. A stored VM does
  not change, so precopy completes after one pass: switch before it ends (pace precopy with
  --set max-bandwidth=64M). Policies instead (e2k-migrate extensions):
  --postcopy-after-iterations N (= --set x-postcopy-after-iterations=N: after N passes) and --set
  x-postcopy-stall-syncs=K (when the remaining bytes stop shrinking for K dirty syncs) are for
  live VMs; a stored VM has nothing left after its first pass, so give it --postcopy-after SEC.
--set NAME=VALUE     a migration parameter (QEMU names): max-bandwidth, downtime-limit,
  max-postcopy-bandwidth (the background rate in postcopy; page requests bypass it), ...
--host-page-size BLOCK=SIZE  the host page size of a stored block (e.g. mem=2M for a hugetlb guest):
  a precopy stream does not carry it, and postcopy must send whole host pages.
--qmp ADDR           a QMP monitor for this migration (unix:PATH or tcp:HOST:PORT): query-migrate,
  migrate-start-postcopy, migrate-pause, migrate-set-parameters, and after the destination's
  migrate-recover, migrate {"uri": URI, "resume": true} to recover a paused postcopy. Without it a
  lost connection in postcopy ends the send with status 1.
--zero-pages skip omits zero pages (only correct when the destination's RAM is still all zeros,
  e.g. a fresh QEMU for pc.ram; ROM blocks are not zero there, so the default is send).

Examples:
  qemu-system-x86_64 -M pc -m 32M … -incoming tcp:127.0.0.1:4444 &
  e2k-migrate send vm1/ tcp:127.0.0.1:4444
  e2k-migrate send vm1/ unix:/tmp/dst.sock --caps return-path --json
  e2k-migrate send vm1/ "exec:cat > vm1.mig"      # then: qemu … -incoming "exec:cat vm1.mig"
  # postcopy into a QEMU started with postcopy-ram on (-incoming defer + migrate-set-capabilities):
  e2k-migrate send vm1/ tcp:127.0.0.1:4444 --caps postcopy-ram,postcopy-preempt --postcopy-after 0.3 \\
      --set max-bandwidth=64M --set downtime-limit=1 --set max-postcopy-bandwidth=16M --json
`,
  options: {
    caps: { type: 'string', arg: 'CAPS', help: `comma-separated capabilities (${SUPPORTED.join(', ')})` },
    'postcopy-after': { type: 'string', arg: 'SEC', help: 'switch to postcopy this many seconds after the start' },
    'postcopy-after-iterations': {
      type: 'string',
      arg: 'N',
      help: 'switch to postcopy after N passes (sets x-postcopy-after-iterations)',
    },
    set: { type: 'string', multiple: true, arg: 'NAME=VALUE', help: 'a migration parameter (repeatable)' },
    'host-page-size': {
      type: 'string',
      multiple: true,
      arg: 'BLOCK=SIZE',
      help: "a stored block's host page size, e.g. mem=2M (repeatable)",
    },
    qmp: { type: 'string', arg: 'ADDR', help: 'a QMP monitor for this migration (unix:PATH or tcp:HOST:PORT)' },
    'zero-pages': { type: 'string', arg: 'MODE', help: 'send (default): ZERO records; skip: omit zero pages' },
    'no-verify': { type: 'boolean', help: 'do not re-hash the stored files before sending' },
    json: { type: 'boolean', help: 'print exactly one JSON value on stdout' },
    progress: { type: 'boolean', help: 'progress lines on stderr (default: when stderr is a TTY)' },
  },
  allowPositionals: true,
  async run(ctx: CommandContext): Promise<number> {
    const v = ctx.values;
    const [dir, uri, ...extra] = ctx.positionals;
    if (dir === undefined || uri === undefined) throw new UsageError('expected a store directory and a URI');
    if (extra.length) throw new UsageError(`unexpected argument(s): ${extra.join(' ')}`);
    const caps = parseCapsOption(v.caps as string | undefined, SUPPORTED);
    const zeroPages = (v['zero-pages'] ?? 'send') as string;
    if (zeroPages !== 'send' && zeroPages !== 'skip') {
      throw new UsageError(`--zero-pages must be send or skip, not "${zeroPages}"`);
    }
    const target = parseUri(uri);
    const live = parseLiveOptions(ctx);
    if (caps.includes('postcopy-ram') || live.qmp !== undefined || Object.keys(live.params).length > 0) {
      if (zeroPages !== 'send')
        throw new UsageError('--zero-pages skip is not available with postcopy, --set or --qmp');
      if (target.transport === 'exec' || target.transport === 'file') {
        throw new UsageError(`postcopy needs a socket (tcp:, unix:, fd:), not ${target.transport}:`);
      }
      return runLive(ctx, dir, uri, caps, live);
    }
    if (live.postcopyAfter !== undefined) throw new UsageError('--postcopy-after needs --caps postcopy-ram');
    const wantRp = caps.includes('return-path');
    if (wantRp && (target.transport === 'exec' || target.transport === 'file')) {
      throw new UsageError(`--caps return-path needs a socket (tcp:, unix:, fd:), not ${target.transport}:`);
    }
    const store = await openStore(dir, { verify: v['no-verify'] !== true });
    const showProgress = v.progress === true || (ctx.stderr as { isTTY?: boolean }).isTTY === true;

    const channel = await connect(uri);
    const t0 = performance.now();
    const seconds = () => (performance.now() - t0) / 1000;
    ctx.stderr.write(`send: connected to ${channel.info.peer}\n`);
    if (wantRp && !channel.info.readable) {
      channel.cancel('no return path');
      throw new MigrationStreamError('E_UNSUPPORTED_FEATURE', `${uri} is one-way: it cannot carry a return path`);
    }
    const progress = throttled(500, (p: { bytes: number; pages: number; totalPages: number }) =>
      ctx.stderr.write(`${rateLine('send', p.bytes, seconds(), `, ${p.pages}/${p.totalPages} pages`)}\n`),
    );
    let result: Awaited<ReturnType<typeof sendStore>>;
    try {
      result = await sendStore({
        store,
        write: (c) => channel.write(c),
        returnPath: wantRp ? channel : undefined,
        zeroPages,
        onProgress: showProgress ? progress : undefined,
      });
      await channel.end();
    } catch (err) {
      channel.cancel('send failed');
      if (isTransportError(err, 'E_CLOSED') || isTransportError(err, 'E_EOF')) {
        throw new MigrationStreamError(
          'E_PEER_FAILED',
          `the destination closed the connection after ${channel.bytesWritten} bytes: it rejected the stream ` +
            `(a destination must run the same machine as the source, ${store.manifest.machine}, with the same RAM ` +
            'size and devices; QEMU prints the reason on its stderr)',
          { offset: channel.bytesWritten, channel: 'main', cause: err },
        );
      }
      throw err;
    }
    await channel.close();
    const secs = seconds();
    const out = {
      status: 'sent',
      uri,
      store: dir,
      machine: store.manifest.machine,
      capabilities: caps,
      seconds: secs,
      bytes: result.bytes,
      mbps: (result.bytes * 8) / 1e6 / Math.max(secs, 1e-6),
      records: result.records,
      sections: result.sections,
      returnPath: result.returnPath ?? null,
      vmdesc: result.vmdesc,
    };
    if (v.json === true) ctx.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    else {
      ctx.stdout.write(
        `sent: ${out.machine}, ${out.bytes} bytes in ${secs.toFixed(2)} s (${out.records.normal} pages, ` +
          `${out.records.duplicate} zero${out.records.skipped ? `, ${out.records.skipped} skipped` : ''})` +
          `${out.returnPath ? `; destination answered SHUT ${out.returnPath.shut}` : ''}\n`,
      );
    }
    return 0;
  },
};

interface LiveOptions {
  params: Record<string, unknown>;
  postcopyAfter: number | undefined;
  hostPageSizes: Record<string, number>;
  qmp: string | undefined;
}

function parseLiveOptions(ctx: CommandContext): LiveOptions {
  const v = ctx.values;
  const params: Record<string, unknown> = {};
  const sets = (v.set as string[] | undefined) ?? [];
  const iterations = v['postcopy-after-iterations'];
  if (typeof iterations === 'string') sets.push(`x-postcopy-after-iterations=${iterations}`);
  for (const item of sets) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`--set: "${item}" is not NAME=VALUE (e.g. --set max-bandwidth=64M)`);
    const name = parseParameterName(item.slice(0, eq));
    params[name] = coerce(name, item.slice(eq + 1));
  }
  const hostPageSizes: Record<string, number> = {};
  for (const item of (v['host-page-size'] as string[] | undefined) ?? []) {
    const eq = item.lastIndexOf('=');
    const size = parseSize(item.slice(eq + 1));
    if (eq <= 0 || !Number.isInteger(Math.log2(size)) || size < 4096) {
      throw new UsageError(`--host-page-size: "${item}" is not BLOCK=SIZE with a power-of-two SIZE ≥ 4K (e.g. mem=2M)`);
    }
    hostPageSizes[item.slice(0, eq)] = size;
  }
  let postcopyAfter: number | undefined;
  if (typeof v['postcopy-after'] === 'string') {
    postcopyAfter = Number(v['postcopy-after']);
    if (!Number.isFinite(postcopyAfter) || postcopyAfter < 0) {
      throw new UsageError(`--postcopy-after: "${v['postcopy-after']}" is not a number of seconds ≥ 0`);
    }
  }
  return { params, postcopyAfter, hostPageSizes, qmp: typeof v.qmp === 'string' ? v.qmp : undefined };
}

/** The live driver (postcopy, --set, --qmp): the result is the final query-migrate. */
async function runLive(
  ctx: CommandContext,
  dir: string,
  uri: string,
  caps: MigrationCapability[],
  o: LiveOptions,
): Promise<number> {
  if (o.postcopyAfter !== undefined && !caps.includes('postcopy-ram')) {
    throw new UsageError('--postcopy-after needs --caps postcopy-ram');
  }
  const store = await openStore(dir, { verify: ctx.values['no-verify'] !== true });
  const showProgress = ctx.values.progress === true || (ctx.stderr as { isTTY?: boolean }).isTTY === true;
  const t0 = performance.now();
  const seconds = () => (performance.now() - t0) / 1000;
  const progress = throttled(500, (q: QueryMigrate) =>
    ctx.stderr.write(
      `${rateLine('send', q.ram?.transferred ?? 0, seconds(), `, ${q.status}, ${((q.ram?.remaining ?? 0) / 1048576).toFixed(1)} MiB left, ${q.ram?.['postcopy-requests'] ?? 0} requests`)}\n`,
    ),
  );
  const q = await sendStoreLive({
    store,
    uri,
    caps,
    params: o.params,
    postcopyAfter: o.postcopyAfter,
    hostPageSizes: o.hostPageSizes,
    qmp: o.qmp,
    log: (line) => ctx.stderr.write(`send: ${line}\n`),
    ...(showProgress ? { onProgress: progress } : {}),
  });
  const secs = seconds();
  const bytes = q.ram?.transferred ?? 0;
  const out = {
    status: q.status === 'completed' ? 'sent' : (q.status ?? 'failed'),
    uri,
    store: dir,
    machine: store.manifest.machine,
    capabilities: caps,
    seconds: secs,
    bytes,
    mbps: (bytes * 8) / 1e6 / Math.max(secs, 1e-6),
    downtime: q.downtime ?? null,
    postcopy: caps.includes('postcopy-ram'),
    query: q,
  };
  if (ctx.values.json === true) ctx.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  else if (q.status === 'completed') {
    ctx.stdout.write(
      `sent: ${out.machine}, ${bytes} RAM bytes in ${secs.toFixed(2)} s, downtime ${q.downtime} ms` +
        `${out.postcopy ? `, ${q.ram?.['postcopy-requests'] ?? 0} page requests served` : ''}\n`,
    );
  } else ctx.stdout.write(`send ${q.status}: ${q['error-desc'] ?? ''}\n`);
  return q.status === 'completed' ? 0 : 1;
}
