import {
  analyzeStream,
  extractRam,
  formatSummaryText,
  loadVmdescFile,
  MigrationStreamError,
  type PyJsonValue,
  pyJsonDumps,
} from '@e2k-migrate/migration';
import { type Command, type CommandContext, UsageError } from '../command.js';

const FORMATS = ['state', 'desc', 'summary'] as const;
type Format = (typeof FORMATS)[number];

/** `--max-ram 512M`: bytes with an optional K/M/G/T suffix (powers of 1024). */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`--max-ram: "${text}" is not a size (examples: 4096, 512M, 2G)`);
  const mult = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[(m[2] ?? '').toLowerCase()] ?? 1;
  const n = Math.floor(Number(m[1]) * mult);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`--max-ram: "${text}" is out of range`);
  return n;
}

export const analyzeCommand: Command = {
  name: 'analyze',
  summary: 'Read a QEMU 7.2 migration stream: device state, vmdesc, RAM and record summary',
  usage:
    '<stream|-> [--multifd FILE...] [--preempt FILE] [--return-path FILE] [--format state|desc|summary] [--extract-ram DIR] [--json]',
  description: `
Reads a migration stream written by QEMU 7.2 (a file from \`migrate "exec:cat > FILE"\`, a
captured socket, or stdin with \`-\`; gzip is detected by its magic bytes) without loading it
into memory, and prints one of:

  --format state    what QEMU's scripts/analyze-migration.py -d state prints: every section as
                    "idstr (section_id)" with its fields (same JSON structure). Device sections
                    are decoded with the stream's own vmdesc, or --vmdesc FILE for streams that
                    carry none (postcopy); without any, they are listed with their length (marked
                    as guessed: found by scanning for the section footer) and raw bytes.
  --format desc     the vmdesc JSON (pretty-printed like the script's -d desc).
  --format summary  records with offsets, per-section and per-iteration RAM counts (pages, zero,
                    XBZRLE, bytes), RAM blocks, commands (discards, package contents), multifd
                    channels and epochs, preempt channel, return-path messages, RAM sha256.

Unlike analyze-migration.py it also reads XBZRLE and COMPRESS_PAGE streams, postcopy streams
(commands, discards, packaged device state), multifd (main stream plus channel files, applied by
epoch) and the postcopy-preempt channel. Features of QEMU 8.0+ (MULTIFD_FLUSH, mapped-ram,
SWITCHOVER_START, ...) are reported as a typed unsupported-feature error with their offset.

Examples:
  e2k-migrate analyze vm.mig                                 # like analyze-migration.py -d state
  e2k-migrate analyze vm.mig.gz --format summary
  cat vm.mig | e2k-migrate analyze - --format desc --json
  e2k-migrate analyze conn0.src2dst.bin --multifd conn1.src2dst.bin conn2.src2dst.bin \\
      --format summary --extract-ram out/
  e2k-migrate analyze conn0.src2dst.bin --preempt conn1.src2dst.bin \\
      --return-path conn0.dst2src.bin --vmdesc precopy.mig --format summary

--extract-ram DIR writes each RAM block to DIR/<block idstr> as a sparse file (zero pages are
holes), e.g. out/pc.ram; reconstructed RAM is bounded by --max-ram (default: free memory).
With --json, standard output is exactly one JSON value; progress and logs go to stderr.
`,
  allowPositionals: true,
  options: {
    multifd: {
      type: 'string',
      multiple: true,
      arg: 'FILE',
      help: 'multifd channel stream (repeat, or list files after it)',
    },
    preempt: { type: 'string', arg: 'FILE', help: 'postcopy-preempt channel stream' },
    'return-path': { type: 'string', arg: 'FILE', help: 'destination→source stream of the main connection' },
    format: { type: 'string', arg: 'FORMAT', help: 'state (default), desc or summary' },
    'extract-ram': { type: 'string', arg: 'DIR', help: 'write each RAM block to DIR as a sparse file' },
    vmdesc: { type: 'string', arg: 'FILE', help: 'vmdesc JSON, or a stream whose vmdesc to use for device sections' },
    'max-ram': {
      type: 'string',
      arg: 'SIZE',
      help: 'bound on reconstructed RAM, e.g. 512M, 4G (default: free memory)',
    },
    'page-size': { type: 'string', arg: 'BYTES', help: 'target page size when the stream does not say (default 4096)' },
    json: { type: 'boolean', help: 'print exactly one JSON value on stdout' },
    progress: { type: 'boolean', help: 'show a progress line on stderr (default: only when stderr is a TTY)' },
  },
  async run(ctx: CommandContext): Promise<number> {
    const v = ctx.values;
    const [input, ...extra] = ctx.positionals;
    if (input === undefined) throw new UsageError('missing the stream to analyze (a file, or - for stdin)');
    const multifd = [...((v.multifd as string[] | undefined) ?? [])];
    if (extra.length) {
      if (multifd.length === 0) throw new UsageError(`unexpected argument(s): ${extra.join(' ')}`);
      multifd.push(...extra);
    }
    const format = (v.format ?? 'state') as string;
    if (!FORMATS.includes(format as Format))
      throw new UsageError(`--format must be one of ${FORMATS.join(', ')}, not "${format}"`);
    const maxRam = typeof v['max-ram'] === 'string' ? parseSize(v['max-ram']) : undefined;
    let pageSize: number | undefined;
    if (typeof v['page-size'] === 'string') {
      pageSize = Number(v['page-size']);
      if (!Number.isInteger(pageSize) || pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) {
        throw new UsageError('--page-size must be a power of two between 512 and 65536');
      }
    }
    const extractDir = v['extract-ram'] as string | undefined;
    const vmdesc = typeof v.vmdesc === 'string' ? await loadVmdescFile(v.vmdesc) : undefined;
    const progress = makeProgress(ctx, v.progress === true || (ctx.stderr as { isTTY?: boolean }).isTTY === true);

    const analysis = await analyzeStream({
      input,
      multifd,
      preempt: v.preempt as string | undefined,
      returnPath: v['return-path'] as string | undefined,
      vmdesc,
      maxRam,
      pageSize,
      reconstructRam: extractDir !== undefined || format === 'summary',
      onProgress: progress.update,
    });
    progress.done(analysis.summary.input.bytes);

    let extracted: Awaited<ReturnType<typeof extractRam>> | undefined;
    if (extractDir !== undefined) {
      extracted = await extractRam(analysis.ram, extractDir);
      for (const e of extracted)
        ctx.stderr.write(`extracted ${e.block} → ${e.file} (${e.bytes} bytes, sha256 ${e.sha256})\n`);
    }
    for (const w of analysis.summary.warnings) ctx.stderr.write(`warning: ${w}\n`);

    if (format === 'state') {
      ctx.stdout.write(`${pyJsonDumps(analysis.state)}\n`);
    } else if (format === 'desc') {
      if (analysis.vmdesc === undefined) {
        throw new MigrationStreamError(
          'E_BAD_VMDESC',
          'the stream carries no vmdesc (postcopy streams and suppress-vmdesc machines have none); give one with --vmdesc FILE',
          { offset: analysis.summary.input.bytes },
        );
      }
      const parsed = JSON.parse(new TextDecoder().decode(analysis.vmdesc.json)) as PyJsonValue;
      ctx.stdout.write(`${pyJsonDumps(parsed)}\n`);
    } else if (v.json === true) {
      ctx.stdout.write(
        `${JSON.stringify(extracted ? { ...analysis.summary, extracted } : analysis.summary, null, 2)}\n`,
      );
    } else {
      ctx.stdout.write(formatSummaryText(analysis.summary));
    }
    return 0;
  },
};

function makeProgress(
  ctx: CommandContext,
  enabled: boolean,
): { update: ((n: number) => void) | undefined; done: (n: number) => void } {
  if (!enabled) return { update: undefined, done: () => {} };
  const t0 = performance.now();
  let last = 0;
  const line = (n: number) => {
    const s = (performance.now() - t0) / 1000;
    return `\ranalyze: ${(n / 1e6).toFixed(1)} MB read, ${(n / 1e6 / Math.max(s, 1e-3)).toFixed(0)} MB/s`;
  };
  return {
    update: (n) => {
      const now = performance.now();
      if (now - last < 100) return;
      last = now;
      ctx.stderr.write(line(n));
    },
    done: (n) => {
      ctx.stderr.write(`${line(n)}\n`);
    },
  };
}
