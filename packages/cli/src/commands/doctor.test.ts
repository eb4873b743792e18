import { PassThrough } from 'node:stream';
import { backendInfo } from '@e2k-migrate/native';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../command.js';
import { doctorCommand, formatDoctor } from './doctor.js';

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

describe('e2k-migrate doctor', () => {
  it('--json prints exactly one JSON value naming the backend in use', async () => {
    const out = capture();
    const err = capture();
    const code = await doctorCommand.run({
      values: { json: true },
      positionals: [],
      stdout: out.stream,
      stderr: err.stream,
    });
    expect(code).toBe(0);
    const report = JSON.parse(out.text());
    expect(report.backend.name).toBe(backendInfo().name);
    expect(Object.keys(report)).toEqual(
      expect.arrayContaining(['backend', 'kernel', 'userfaultfd', 'wpAsync', 'pagemapScan', 'hugepages', 'hugetlbfs']),
    );
    const text = formatDoctor(report);
    expect(text).toContain(`backend           ${backendInfo().name}`);
    expect(text).toMatch(/^WP_ASYNC /m);
    expect(text).toMatch(/^PAGEMAP_SCAN /m);
  });

  it('rejects positional arguments', async () => {
    const out = capture();
    await expect(
      doctorCommand.run({ values: {}, positionals: ['x'], stdout: out.stream, stderr: out.stream }),
    ).rejects.toBeInstanceOf(UsageError);
  });
});
