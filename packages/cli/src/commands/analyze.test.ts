import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { parseArgs } from 'node:util';
import { MigrationStreamError } from '@e2k-migrate/migration';
import { fixturePath, readFixture, readFixtureJson } from '@e2k-migrate/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CommandContext, UsageError } from '../command.js';
import { analyzeCommand, parseSize } from './analyze.js';

/** Runs `e2k-migrate analyze ARGS` in-process; returns exit status and captured output. */
async function run(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {};
  for (const [k, o] of Object.entries(analyzeCommand.options))
    options[k] = { type: o.type, ...(o.multiple ? { multiple: true } : {}) };
  const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
  const out = new PassThrough();
  const err = new PassThrough();
  const o: Buffer[] = [];
  const e: Buffer[] = [];
  out.on('data', (c: Buffer) => o.push(c));
  err.on('data', (c: Buffer) => e.push(c));
  const ctx: CommandContext = { values: values as CommandContext['values'], positionals, stdout: out, stderr: err };
  const status = await analyzeCommand.run(ctx);
  return { status, stdout: Buffer.concat(o).toString(), stderr: Buffer.concat(e).toString() };
}

describe('e2k-migrate analyze', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'e2k-cli-analyze-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('--format state --json prints exactly what analyze-migration.py prints', async () => {
    const r = await run([fixturePath('none-32M-pattern/none-32M-pattern.mig'), '--format', 'state', '--json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toStrictEqual(readFixtureJson('none-32M-pattern/none-32M-pattern.analyze.json'));
    expect(r.stdout).toBe(new TextDecoder().decode(readFixture('none-32M-pattern/none-32M-pattern.analyze.json')));
  });

  it('--format desc prints the stream vmdesc', async () => {
    const r = await run([fixturePath('none-32M/none-32M.mig'), '--format', 'desc', '--json']);
    const desc = JSON.parse(r.stdout);
    expect(desc.page_size).toBe(4096);
    expect(desc.devices.map((d: { name: string }) => d.name)).toEqual(['timer', 'globalstate']);
    expect(r.stdout.startsWith('{\n    "page_size": 4096,\n    "devices": [')).toBe(true);
  });

  it('--format summary --json with multifd files listed after --multifd, and --extract-ram', async () => {
    const out = join(dir, 'multifd');
    const r = await run([
      fixturePath('multifd/conn0.src2dst.bin'),
      '--multifd',
      fixturePath('multifd/conn1.src2dst.bin'),
      fixturePath('multifd/conn2.src2dst.bin'),
      '--format',
      'summary',
      '--json',
      '--extract-ram',
      out,
    ]);
    expect(r.status).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.multifd.channels.map((c: { id: number }) => c.id)).toEqual([0, 1]);
    const ref = createHash('sha256').update(readFixture('multifd/multifd.ram')).digest('hex');
    expect(
      createHash('sha256')
        .update(await readFile(join(out, 'pc.ram')))
        .digest('hex'),
    ).toBe(ref);
    expect(s.extracted.find((e: { block: string }) => e.block === '/rom@etc/acpi/tables').file).toBe(
      join(out, 'rom@etc/acpi/tables'),
    );
    expect(r.stderr).toMatch(/extracted pc\.ram/);
  });

  it('extracts sparse files: an all-zero guest leaves only holes', async () => {
    const out = join(dir, 'none');
    const r = await run([fixturePath('none-32M/none-32M.mig'), '--extract-ram', out, '--format', 'summary']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/machine {6}none/);
    const st = await stat(join(out, 'ram'));
    expect(st.size).toBe(32 << 20);
    expect(st.blocks * 512).toBeLessThan(1 << 20);
  });

  it('fails typed on bad input and on bad command lines', async () => {
    await expect(run([join(dir, 'missing.mig')])).rejects.toMatchObject({ code: 'E_IO' });
    await expect(run([join(dir, 'missing.mig')])).rejects.toBeInstanceOf(MigrationStreamError);
    await expect(run([fixturePath('none-32M/none-32M.mig'), '--format', 'bogus'])).rejects.toBeInstanceOf(UsageError);
    await expect(run([fixturePath('none-32M/none-32M.mig'), 'extra'])).rejects.toBeInstanceOf(UsageError);
    await expect(run([fixturePath('postcopy/conn0.src2dst.bin'), '--format', 'desc'])).rejects.toMatchObject({
      code: 'E_BAD_VMDESC',
    });
    await expect(
      run([fixturePath('none-32M/none-32M.mig'), '--format', 'summary', '--max-ram', '1M']),
    ).rejects.toMatchObject({ code: 'E_RAM_LIMIT' });
  });

  it('parses --max-ram sizes', () => {
    expect(parseSize('4096')).toBe(4096);
    expect(parseSize('512M')).toBe(512 << 20);
    expect(parseSize('2G')).toBe(2 ** 31);
    expect(parseSize('1.5k')).toBe(1536);
    expect(() => parseSize('12Q')).toThrow(UsageError);
    expect(() => parseSize('0')).toThrow(UsageError);
  });
});
