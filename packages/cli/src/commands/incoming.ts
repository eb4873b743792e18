import {
  type BlockMemoryFactory,
  prepareStoreDir,
  type ReceivedMigration,
  receiveMigration,
  writeStore,
} from '@e2k-migrate/migration';
import { backendInfo, createGuestMemory } from '@e2k-migrate/native';
import type { PostcopyReceived } from '@e2k-migrate/postcopy';
import { listen, parseUri } from '@e2k-migrate/transports';
import { type Command, type CommandContext, UsageError } from '../command.js';
import { parseSize } from './analyze.js';
import { parsePostcopyOptions, receivePostcopy } from './incoming-postcopy.js';
import { parseCapsOption, rateLine, throttled } from './migration-caps.js';

/** Capabilities `incoming` implements (QEMU 7.2 names). */
const SUPPORTED = ['xbzrle', 'return-path', 'postcopy-ram', 'postcopy-preempt', 'postcopy-blocktime'] as const;

/** Each RAM block lives in a guest-memory region of the native addon (or its fallback). */
const nativeMemory: BlockMemoryFactory = (b) =>
  createGuestMemory({ size: b.size, kind: 'anonymous', name: `incoming:${b.name}` });

export const incomingCommand: Command = {
  name: 'incoming',
  summary: 'Receive a live migration from QEMU 7.2 and store it (RAM, device state, vmdesc)',
  usage:
    'URI --store DIR [--caps CAP[,CAP]] [--max-ram SIZE] [--timeout SEC] [--touch PATTERN] [--userfault MODE] [--qmp ADDR] [--json] [--progress]',
  description: `
Acts as a QEMU 7.2 migration destination (like \`qemu-system-x86_64 -incoming URI\`): listens on
URI, receives one precopy migration (plain or XBZRLE; any machine, e.g. \`-M pc\` with a running
guest or \`-M none\`), and writes it to DIR once it is complete:

  DIR/manifest.json   machine, capabilities, RAM blocks (idstr, used_length, page size, file, sha256)
  DIR/ram/NN-<idstr>.bin  one sparse file per RAM block (zero pages are holes)
  DIR/devices.bin     the device sections exactly as received (after the last ram section, through EOF)
  DIR/vmdesc.json     the vmdesc JSON the source sent

\`e2k-migrate send DIR URI\` sends it on to another destination (e.g. a fresh QEMU). The stored RAM
equals what QEMU's \`pmemsave\` of the stopped source gives. Exit status 0 once the migration is
complete and stored; otherwise 1 with a typed error (code, byte offset, section).

URI: tcp:HOST:PORT (PORT 0 picks a free port; the bound URI is printed on stderr as
"incoming: listening on tcp:…"), unix:PATH, exec:CMD (read the command's stdout), file:PATH, fd:N.
On sockets the return path is answered when the source opens it (capability return-path on the
source): PONG for each PING, SHUT 0 when loaded (SHUT 1 on failure).

--caps takes QEMU capability names; supported: ${SUPPORTED.join(', ')} (XBZRLE records are decoded
whether or not xbzrle is given, as QEMU does; the list is recorded in the manifest).

Postcopy (--caps postcopy-ram, as QEMU's "postcopy channels on the dest node"): set the same
capabilities on the QEMU source, then migrate-start-postcopy there. Every RAM block becomes
guest memory (2 MiB hugetlb when QEMU's block has 2 MiB pages) registered with userfaultfd at
POSTCOPY_LISTEN; from POSTCOPY_RUN a toucher thread reads the RAM (--touch random, ascending,
descending, or none) and each page it faults on is requested on the return path; huge pages are
assembled whole, one temporary page per channel. postcopy-preempt: the second connection carries
the requested pages. postcopy-blocktime: blocktime in the result. --userfault auto (default:
userfaultfd, else the cooperative fallback, reported as such), uffd, or cooperative. If the
connection breaks after RUN the migration pauses (postcopy-paused); with --qmp ADDR the QMP
commands query-migrate and migrate-recover {"uri": URI} resume it (then migrate with
"resume": true on QEMU). The result adds a "postcopy" object: backend, requests, faults,
latency (average ns and the [2^N, 2^(N+1)) µs histogram), blocktime.

Examples:
  e2k-migrate incoming tcp:127.0.0.1:4444 --store vm1/
      then in QEMU's monitor:  migrate tcp:127.0.0.1:4444
  e2k-migrate incoming unix:/tmp/mig.sock --store vm1/ --caps xbzrle --json
  e2k-migrate incoming "exec:gzip -dc saved.mig.gz" --store vm1/
  e2k-migrate incoming tcp:127.0.0.1:4444 --store vm1/ --caps postcopy-ram,postcopy-preempt --qmp unix:/tmp/inc.qmp
      then in QEMU's monitor:  migrate-set-capabilities postcopy-ram, postcopy-preempt on; migrate …;
      migrate-start-postcopy
`,
  options: {
    store: { type: 'string', arg: 'DIR', help: 'directory to store the migration in (must not hold one)' },
    caps: { type: 'string', arg: 'CAPS', help: `comma-separated capabilities (${SUPPORTED.join(', ')})` },
    'max-ram': { type: 'string', arg: 'SIZE', help: 'largest total RAM accepted, e.g. 4G (default: physical memory)' },
    timeout: { type: 'string', arg: 'SEC', help: 'give up when no connection arrives within SEC seconds' },
    json: { type: 'boolean', help: 'print exactly one JSON value on stdout' },
    progress: { type: 'boolean', help: 'progress lines on stderr (default: when stderr is a TTY)' },
    touch: {
      type: 'string',
      arg: 'PATTERN',
      help: 'postcopy: toucher order random (default), ascending, descending, none',
    },
    userfault: { type: 'string', arg: 'MODE', help: 'postcopy: auto (default), uffd, cooperative' },
    qmp: {
      type: 'string',
      arg: 'ADDR',
      help: 'postcopy: QMP monitor (query-migrate, migrate-recover) on unix:PATH or tcp:HOST:PORT',
    },
  },
  allowPositionals: true,
  async run(ctx: CommandContext): Promise<number> {
    const v = ctx.values;
    const [uri, ...extra] = ctx.positionals;
    if (uri === undefined) throw new UsageError('missing the URI to listen on (e.g. tcp:127.0.0.1:4444)');
    if (extra.length) throw new UsageError(`unexpected argument(s): ${extra.join(' ')}`);
    const dir = v.store;
    if (typeof dir !== 'string' || dir === '') throw new UsageError('--store DIR is required');
    const caps = parseCapsOption(v.caps as string | undefined, SUPPORTED);
    const maxRam = typeof v['max-ram'] === 'string' ? parseSize(v['max-ram']) : undefined;
    const timeoutMs = parseTimeout(v.timeout);
    const postcopy = caps.includes('postcopy-ram');
    const pcOpts = parsePostcopyOptions(v);
    if (!postcopy && (v.touch !== undefined || v.userfault !== undefined || v.qmp !== undefined)) {
      throw new UsageError('--touch, --userfault and --qmp apply to postcopy only (--caps postcopy-ram)');
    }
    parseUri(uri);
    await prepareStoreDir(dir);

    const showProgress = v.progress === true || (ctx.stderr as { isTTY?: boolean }).isTTY === true;
    const listener = await listen(uri);
    ctx.stderr.write(`incoming: listening on ${listener.uri}\n`);
    if (postcopy) {
      const t0 = performance.now();
      const seconds = () => (performance.now() - t0) / 1000;
      const progress = throttled(500, (n: number) => ctx.stderr.write(`${rateLine('incoming', n, seconds())}\n`));
      const received = await receivePostcopy(
        ctx,
        listener,
        { ...pcOpts, caps, maxRam, onProgress: showProgress ? progress : undefined },
        timeoutMs,
      );
      return await storeAndReport(ctx, dir, received, { caps, seconds: seconds(), uri: listener.uri });
    }
    let channel: Awaited<ReturnType<typeof listener.accept>>;
    try {
      channel = await listener.accept(timeoutMs === undefined ? {} : { timeoutMs });
    } finally {
      await listener.close();
    }
    const t0 = performance.now();
    const seconds = () => (performance.now() - t0) / 1000;
    ctx.stderr.write(`incoming: connection from ${channel.info.peer}\n`);
    const progress = throttled(500, (n: number) => ctx.stderr.write(`${rateLine('incoming', n, seconds())}\n`));
    let received: Awaited<ReturnType<typeof receiveMigration>>;
    try {
      received = await receiveMigration({
        input: channel,
        returnPath: channel.info.writable && channel.info.readable ? (b) => channel.write(b) : undefined,
        memory: nativeMemory,
        maxRam,
        onProgress: showProgress ? progress : undefined,
        channel: 'main',
      });
    } catch (err) {
      channel.cancel('the migration stream was rejected');
      throw err;
    }
    const recvSeconds = seconds();
    if (channel.info.writable) await channel.flush().catch(() => undefined);
    await channel.close();
    return await storeAndReport(ctx, dir, received, { caps, seconds: recvSeconds, uri: listener.uri });
  },
};

/** Writes the store, prints the result (one JSON value with --json); releases the received RAM. */
async function storeAndReport(
  ctx: CommandContext,
  dir: string,
  received: ReceivedMigration | PostcopyReceived,
  o: { caps: string[]; seconds: number; uri: string },
): Promise<number> {
  try {
    const manifest = await writeStore(dir, received, { capabilities: o.caps, seconds: o.seconds });
    const result = {
      status: 'completed',
      uri: o.uri,
      store: dir,
      machine: manifest.machine,
      capabilities: o.caps,
      seconds: o.seconds,
      bytes: received.bytes,
      mbps: (received.bytes * 8) / 1e6 / Math.max(o.seconds, 1e-6),
      blocks: manifest.blocks.map((b) => ({
        idstr: b.idstr,
        usedLength: b.usedLength,
        pageSize: b.pageSize,
        sha256: b.sha256,
        dataPages: b.dataPages,
        file: b.file,
      })),
      records: manifest.received.records,
      sections: manifest.received.sections,
      devices: { bytes: manifest.devices.bytes, sections: manifest.devices.sections.length },
      vmdesc: manifest.vmdesc ? manifest.vmdesc.bytes : null,
      returnPath: received.returnPath,
      memoryBackend: backendInfo().name,
      ...('query' in received ? { postcopy: postcopySummary(received) } : {}),
    };
    if (ctx.values.json === true) ctx.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else {
      ctx.stdout.write(
        `completed: ${result.machine}, ${result.bytes} bytes in ${o.seconds.toFixed(2)} s ` +
          `(${result.records.normal} pages, ${result.records.duplicate} zero, ${result.records.xbzrle} XBZRLE; ` +
          `${result.devices.sections} device sections) → ${dir}\n`,
      );
      if (result.postcopy) {
        const p = result.postcopy;
        ctx.stdout.write(
          `  postcopy (${p.backend}): ${p.requests} page requests, ${p.faults} faults, average fault latency ${(p.latencyNs / 1e3).toFixed(0)} µs\n`,
        );
      }
      for (const b of result.blocks) ctx.stdout.write(`  ${b.idstr}  ${b.usedLength} bytes  sha256 ${b.sha256}\n`);
    }
    return 0;
  } finally {
    received.close();
  }
}

/** The postcopy part of the result, from the destination's query-migrate. */
function postcopySummary(r: PostcopyReceived) {
  const q = r.query as Record<string, unknown>;
  return {
    state: q['x-postcopy-state'] as string | undefined,
    backend: (q['x-postcopy-backend'] as string | undefined) ?? 'none',
    backendReason: q['x-postcopy-backend-reason'] as string | undefined,
    requests: (q['x-postcopy-requests'] as number | undefined) ?? 0,
    faults: (q['x-postcopy-faults'] as number | undefined) ?? 0,
    latencyNs: (q['postcopy-latency'] as number | undefined) ?? 0,
    latencyDist: (q['postcopy-latency-dist'] as number[] | undefined) ?? [],
    blocktimeMs: q['postcopy-blocktime'] as number | undefined,
    vcpuBlocktimeMs: q['postcopy-vcpu-blocktime'] as number[] | undefined,
    discardedBytes: q['x-postcopy-discarded-bytes'] as number | undefined,
    pages: q['x-postcopy-pages'],
    toucher: r.toucher,
  };
}

function parseTimeout(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isFinite(n) || n <= 0) {
    throw new UsageError(`--timeout must be a positive number of seconds, not "${String(v)}"`);
  }
  return n * 1000;
}
