import { type BlockMemoryFactory, prepareStoreDir, receiveMigration, writeStore } from '@e2k-migrate/migration';
import { backendInfo, createGuestMemory } from '@e2k-migrate/native';
import { listen, parseUri } from '@e2k-migrate/transports';
import { type Command, type CommandContext, UsageError } from '../command.js';
import { parseSize } from './analyze.js';
import { parseCapsOption, rateLine, throttled } from './migration-caps.js';

/** Capabilities `incoming` implements (QEMU 7.2 names). */
const SUPPORTED = ['xbzrle', 'return-path'] as const;

/** Each RAM block lives in a guest-memory region of the native addon (or its fallback). */
const nativeMemory: BlockMemoryFactory = (b) =>
  createGuestMemory({ size: b.size, kind: 'anonymous', name: `incoming:${b.name}` });

export const incomingCommand: Command = {
  name: 'incoming',
  summary: 'Receive a live migration from QEMU 7.2 and store it (RAM, device state, vmdesc)',
  usage: 'URI --store DIR [--caps CAP[,CAP]] [--max-ram SIZE] [--timeout SEC] [--json] [--progress]',
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

Examples:
  e2k-migrate incoming tcp:127.0.0.1:4444 --store vm1/
      then in QEMU's monitor:  migrate tcp:127.0.0.1:4444
  e2k-migrate incoming unix:/tmp/mig.sock --store vm1/ --caps xbzrle --json
  e2k-migrate incoming "exec:gzip -dc saved.mig.gz" --store vm1/
`,
  options: {
    store: { type: 'string', arg: 'DIR', help: 'directory to store the migration in (must not hold one)' },
    caps: { type: 'string', arg: 'CAPS', help: `comma-separated capabilities (${SUPPORTED.join(', ')})` },
    'max-ram': { type: 'string', arg: 'SIZE', help: 'largest total RAM accepted, e.g. 4G (default: physical memory)' },
    timeout: { type: 'string', arg: 'SEC', help: 'give up when no connection arrives within SEC seconds' },
    json: { type: 'boolean', help: 'print exactly one JSON value on stdout' },
    progress: { type: 'boolean', help: 'progress lines on stderr (default: when stderr is a TTY)' },
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
    parseUri(uri);
    await prepareStoreDir(dir);

    const showProgress = v.progress === true || (ctx.stderr as { isTTY?: boolean }).isTTY === true;
    const listener = await listen(uri);
    ctx.stderr.write(`incoming: listening on ${listener.uri}\n`);
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
    try {
      if (channel.info.writable) await channel.flush().catch(() => undefined);
      await channel.close();
      const manifest = await writeStore(dir, received, { capabilities: caps, seconds: recvSeconds });
      const result = {
        status: 'completed',
        uri: listener.uri,
        store: dir,
        machine: manifest.machine,
        capabilities: caps,
        seconds: recvSeconds,
        bytes: received.bytes,
        mbps: (received.bytes * 8) / 1e6 / Math.max(recvSeconds, 1e-6),
        blocks: manifest.blocks.map((b) => ({
          idstr: b.idstr,
          usedLength: b.usedLength,
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
      };
      if (v.json === true) ctx.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else {
        ctx.stdout.write(
          `completed: ${result.machine}, ${result.bytes} bytes in ${recvSeconds.toFixed(2)} s ` +
            `(${result.records.normal} pages, ${result.records.duplicate} zero, ${result.records.xbzrle} XBZRLE; ` +
            `${result.devices.sections} device sections) → ${dir}\n`,
        );
        for (const b of result.blocks) ctx.stdout.write(`  ${b.idstr}  ${b.usedLength} bytes  sha256 ${b.sha256}\n`);
      }
      return 0;
    } finally {
      received.close();
    }
  },
};

function parseTimeout(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isFinite(n) || n <= 0) {
    throw new UsageError(`--timeout must be a positive number of seconds, not "${String(v)}"`);
  }
  return n * 1000;
}
