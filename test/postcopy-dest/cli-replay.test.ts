import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { needs } from '@e2k-migrate/test-support';
import { describe, expect, it } from 'vitest';
import { runE2k } from '../../tools/src/qemu/index.js';
import { liveSuite } from '../qemu/helpers.js';
import { afterPing4, fixtureReference, replayFixture, sha256, uffdAvailable } from './support.js';

const uffd = uffdAvailable();

interface Result {
  status: string;
  machine: string;
  capabilities: string[];
  blocks: { idstr: string; sha256: string; file: string }[];
  returnPath: boolean;
  devices: { sections: number };
  memoryBackend: string;
  postcopy: { backend: string; backendReason?: string; requests: number; faults: number; state: string };
}

/**
 * `e2k-migrate incoming --caps postcopy-ram[,postcopy-preempt]` as a process, fed the recorded
 * QEMU 7.2 postcopy streams over TCP: the store it writes holds the reference RAM, and the JSON
 * result reports the postcopy backend — userfaultfd, or with E2K_NATIVE=0 the cooperative
 * fallback, reported as such.
 */
describe('e2k-migrate incoming --caps postcopy-ram (fixture replay)', () => {
  const work = liveSuite('pc-cli');

  const cases: { name: string; caps: string; env: Record<string, string>; backend: string }[] = [
    { name: 'postcopy-preempt', caps: 'postcopy-ram,postcopy-preempt', env: {}, backend: 'uffd' },
    { name: 'postcopy', caps: 'postcopy-ram,postcopy-blocktime', env: { E2K_NATIVE: '0' }, backend: 'cooperative' },
  ];
  for (const c of cases) {
    const ok = c.backend === 'cooperative' || needs('uffd', uffd.ok, uffd.reason);
    it.runIf(ok)(`${c.name} → store (${c.backend})`, async () => {
      const store = join(work(), `${c.name}-${c.backend}`);
      const inc = withEnv(c.env, () =>
        runE2k(['incoming', 'tcp:127.0.0.1:0', '--store', store, '--caps', c.caps, '--touch', 'descending', '--json']),
      );
      const uri = (await inc.waitForStderr(/listening on (\S+)/))[1] as string;
      const preempt = c.caps.includes('preempt');
      const src = await replayFixture(c.name, uri, { preempt, holdAt: afterPing4(c.name) });
      await src.rp.waitFor((m) => m.type === 'REQ_PAGES_ID');
      src.release();
      await src.sent;
      expect(await inc.exit).toBe(0);
      await src.rp.done;
      const r = JSON.parse(inc.stdout()) as Result;
      const ref = fixtureReference(c.name);
      expect(r.status).toBe('completed');
      expect(r.machine).toBe('pc-i440fx-7.2');
      expect(r.capabilities).toEqual(c.caps.split(','));
      for (const b of r.blocks) expect(b.sha256, b.idstr).toBe(ref.blocks[b.idstr]);
      const pcRam = r.blocks.find((b) => b.idstr === 'pc.ram');
      expect(sha256(await readFile(join(store, pcRam?.file as string)))).toBe(sha256(ref.ram));
      expect(r.returnPath).toBe(true);
      expect(r.devices.sections).toBe(31);
      expect(r.postcopy.backend).toBe(c.backend);
      expect(r.memoryBackend).toBe(c.backend === 'cooperative' ? 'fallback' : 'native');
      if (c.backend === 'cooperative') expect(r.postcopy.backendReason).toMatch(/not native memory/);
      expect(r.postcopy.state).toBe('end');
      expect(r.postcopy.requests).toBeGreaterThan(0);
      expect(src.rp.messages.at(-1)).toEqual({ type: 'SHUT', value: 0 });
    });
  }

  it('refuses the postcopy options without postcopy-ram, and an unknown toucher pattern', async () => {
    const a = runE2k(['incoming', 'tcp:127.0.0.1:0', '--store', join(work(), 'x'), '--touch', 'random']);
    expect(await a.exit).toBe(2);
    expect(a.stderr()).toMatch(/--touch, --userfault and --qmp apply to postcopy only/);
    const b = runE2k([
      'incoming',
      'tcp:127.0.0.1:0',
      '--store',
      join(work(), 'y'),
      '--caps',
      'postcopy-ram',
      '--touch',
      'zigzag',
    ]);
    expect(await b.exit).toBe(2);
    expect(b.stderr()).toMatch(/--touch: "zigzag" is not one of random, ascending, descending, none/);
  });
});

function withEnv<T>(env: Record<string, string>, fn: () => T): T {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    return fn();
  } finally {
    for (const k of Object.keys(env)) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
}
