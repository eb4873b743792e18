import { MigrationStreamError, openStore, sendStore } from '@e2k-migrate/migration';
import { connect, isTransportError, parseUri } from '@e2k-migrate/transports';
import { type Command, type CommandContext, UsageError } from '../command.js';
import { parseCapsOption, rateLine, throttled } from './migration-caps.js';

/** Capabilities `send` implements (QEMU 7.2 names). */
const SUPPORTED = ['xbzrle', 'return-path'] as const;

export const sendCommand: Command = {
  name: 'send',
  summary: 'Send a stored migration to a QEMU 7.2 destination (or any -incoming URI)',
  usage: 'DIR URI [--caps CAP[,CAP]] [--zero-pages send|skip] [--no-verify] [--json] [--progress]',
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
  xbzrle       accepted for symmetry with QEMU; a stored (stopped) VM is sent in one pass, where
               QEMU also sends no XBZRLE records (XBZRLE only encodes pages re-sent after a pass).
--zero-pages skip omits zero pages (only correct when the destination's RAM is still all zeros,
  e.g. a fresh QEMU for pc.ram; ROM blocks are not zero there, so the default is send).

Examples:
  qemu-system-x86_64 -M pc -m 32M … -incoming tcp:127.0.0.1:4444 &
  e2k-migrate send vm1/ tcp:127.0.0.1:4444
  e2k-migrate send vm1/ unix:/tmp/dst.sock --caps return-path --json
  e2k-migrate send vm1/ "exec:cat > vm1.mig"      # then: qemu … -incoming "exec:cat vm1.mig"
`,
  options: {
    caps: { type: 'string', arg: 'CAPS', help: `comma-separated capabilities (${SUPPORTED.join(', ')})` },
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
