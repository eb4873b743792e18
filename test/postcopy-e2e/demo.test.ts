/**
 * `e2k-migrate demo --mode postcopy [--preempt] [--hugepages]`: the whole postcopy story in one
 * command, checked from its output — the migration switched to postcopy, the destination faulted
 * and requested pages, its statistics are reported, the guest verified; with --hugepages (the
 * tests run as root) the 2 MiB pages both VMs need are reserved and given back, also on Ctrl-C;
 * not root and short of pages, a typed error says how to reserve them.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { needs } from '@e2k-migrate/test-support';
import { beforeAll, describe, expect, it } from 'vitest';
import { E2K_BIN, e2k, runE2k } from '../../tools/src/qemu/index.js';
import { hugetlbAvailable, uffdAvailable } from '../postcopy-dest/support.js';
import { buildCli } from '../precopy/helpers.js';

const uffd = uffdAvailable();
const huge = hugetlbAvailable();
const root = process.getuid?.() === 0;
const NR = '/proc/sys/vm/nr_hugepages';
const nrHugepages = () => Number(readFileSync(NR, 'utf8').trim());

beforeAll(() => buildCli(), 240_000);

interface DemoJson {
  status: string;
  verified: boolean;
  downtime: number;
  ram: Record<string, number>;
  'x-postcopy-time': number;
  'x-postcopy-trigger': string;
  'x-postcopy-preempt-host-pages': number;
  'x-destination': {
    status: string;
    'migration-status': string;
    postcopy: Record<string, unknown>;
  };
  'x-hugepages'?: { needed: number; reserved: number };
}

describe.runIf(needs('uffd', uffd.ok, uffd.reason))('e2k-migrate demo --mode postcopy', () => {
  it('4 KiB pages, --json: switched, pages requested, destination statistics, verified', async () => {
    // The demo switches at the source's next iteration; the increment workload rewrites every
    // page of RAM, so all that is not on the destination yet is missing there: the guest faults
    // at once while the background streams at 16 MiB/s. downtime-limit 1 ms keeps the completion
    // threshold (bandwidth × downtime-limit, as QEMU computes it) below one page, so postcopy
    // cannot end early by sending the rest at once when the precopy bandwidth measured high.
    const r = await e2k([
      ...['demo', '--mode', 'postcopy', '--mem', '32M', '--workload', 'increment'],
      ...['--set', 'max-postcopy-bandwidth=16M', '--set', 'downtime-limit=1', '--json'],
    ]);
    expect(r.code, r.stderr).toBe(0);
    const q = JSON.parse(r.stdout) as DemoJson;
    expect(q.status).toBe('completed');
    expect(q.verified).toBe(true);
    expect(q['x-postcopy-trigger']).toBeUndefined(); // the demo's migrate-start-postcopy
    expect(r.stderr).toMatch(/migrate-start-postcopy: the source switches at its next iteration/);
    expect(q['x-postcopy-time']).toBeGreaterThan(0);
    expect(q.ram['postcopy-bytes']).toBeGreaterThan(0);
    expect(q.ram['postcopy-requests']).toBeGreaterThan(0);
    const d = q['x-destination'];
    expect(d.status).toBe('running');
    expect(d['migration-status']).toBe('completed');
    expect(d.postcopy['x-postcopy-backend']).toBe('uffd');
    expect(d.postcopy['x-postcopy-requests']).toBe(q.ram['postcopy-requests']);
    expect(d.postcopy['x-postcopy-faults'] as number).toBeGreaterThanOrEqual(q.ram['postcopy-requests'] as number);
    expect(typeof d.postcopy['postcopy-blocktime']).toBe('number');
    expect(d.postcopy['postcopy-vcpu-blocktime']).toHaveLength(2);
    expect(d.postcopy['postcopy-latency'] as number).toBeGreaterThan(0);
    // progress on stderr went through postcopy, counting requests
    expect(r.stderr).toMatch(/postcopy-active .*requests \d+/);
  });

  it.runIf(root && needs('hugetlb', huge.ok, huge.reason))(
    '--preempt --hugepages as root: reserves the pages both VMs need, gives them back, text summary',
    async () => {
      const before = nrHugepages();
      // increment rewrites every huge page, so all are discarded at the switch; at 1 MiB/s the
      // background is a huge page per 100 ms window: the vCPUs fault and request theirs first
      const r = await e2k([
        ...['demo', '--mode', 'postcopy', '--preempt', '--hugepages', '--mem', '16M', '--workload', 'increment'],
        ...['--set', 'max-postcopy-bandwidth=1M', '--set', 'downtime-limit=1'],
      ]);
      expect(r.code, r.stderr + r.stdout).toBe(0);
      // 2 VMs × 16 MiB / 2 MiB
      expect(r.stderr).toMatch(new RegExp(`reserved 16 2 MiB huge pages \\(${NR} ${before} → ${before + 16}`));
      expect(r.stderr).toMatch(/on 2 MiB huge pages/);
      expect(r.stderr).toMatch(new RegExp(`gave back 16 huge pages \\(${NR} ${before + 16} → ${before}\\)`));
      expect(nrHugepages()).toBe(before);
      expect(r.stdout).toMatch(/postcopy phase \d+ ms \(switched by migrate-start-postcopy; downtime \d+ ms\)/);
      expect(r.stdout).toMatch(
        /destination \(uffd\): \d+ faults, \d+ requests, average fault latency [\d.]+ ms, blocktime/,
      );
      expect(r.stdout).toMatch(/requested host pages on the preempt channel/);
      expect(r.stdout).toMatch(/destination verified/);
    },
  );

  it.runIf(root && needs('hugetlb', huge.ok, huge.reason))(
    'Ctrl-C during the migration: the VMs stop, the huge pages are given back, exit 130',
    async () => {
      const before = nrHugepages();
      // 1 MiB/s: the migration is still running when the interrupt comes
      const run = runE2k(['demo', '--mode', 'postcopy', '--hugepages', '--mem', '16M', '--set', 'max-bandwidth=1M']);
      await run.waitForStderr(/source and destination VMs up/);
      expect(nrHugepages()).toBe(before + 16);
      process.kill(run.pid, 'SIGINT');
      expect(await run.exit).toBe(130);
      expect(run.stderr()).toMatch(/interrupted: stopping the VMs/);
      expect(run.stderr()).toMatch(/gave back 16 huge pages/);
      expect(nrHugepages()).toBe(before);
    },
  );

  it.runIf(root)('not root and short of huge pages: E_HUGEPAGES saying how to reserve them', async () => {
    // as nobody, asking for far more pages than are free
    const child = spawn(
      'setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        process.execPath,
        E2K_BIN,
        'demo',
        '--hugepages',
        '--mem',
        '4G',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code, err).toBe(1);
    expect(err).toMatch(
      /E_HUGEPAGES: --hugepages needs 4096 free 2 MiB huge pages and HugePages_Free is \d+; not root/,
    );
    expect(err).toMatch(
      /echo \$\(\( \$\(cat \/proc\/sys\/vm\/nr_hugepages\) \+ 4096 \)\) > \/proc\/sys\/vm\/nr_hugepages/,
    );
    expect(out).toBe('');
  });

  it('bad command lines are usage errors', async () => {
    const a = await e2k(['demo', '--preempt']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/--preempt needs --mode postcopy/);
    const b = await e2k(['demo', '--mode', 'postcop']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/--mode: "postcop" is not one of precopy, postcopy/);
    const c = await e2k(['demo', '--hugepages', '--mem', '3M']);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/not a multiple of the 2 MiB huge page/);
    const d = await e2k(['demo', '--caps', 'xbzrle,postcopy-ram']);
    expect(d.code).toBe(2);
    expect(d.stderr).toMatch(/postcopy capabilities go through --mode postcopy/);
  });
});
